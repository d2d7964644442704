package server

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldsync/fieldsync/adapters/watermelondb"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// WatermelonDB serves the sync endpoint of @nozbe/watermelondb's
// synchronize() (adapters/watermelondb; docs/integrate.md).
type WatermelonDB interface {
	Pull(ctx context.Context, actor engine.Actor, q watermelondb.PullQuery) (*watermelondb.PullReply, error)
	Push(ctx context.Context, actor engine.Actor, device string, body watermelondb.PushBody) (*watermelondb.PushReply, error)
	// AppSchemaJSON is the app schema (GET .../schema), public like
	// GET /v1/schemas.
	AppSchemaJSON() []byte
}

// adapterRoutes registers the library adapters that are configured. They
// sit behind the same authentication and rate limit as /v1/sync.
func (s *Server) adapterRoutes(v1 fiber.Router, limit fiber.Handler) {
	if s.cfg.WatermelonDB != nil {
		schema := s.cfg.WatermelonDB.AppSchemaJSON()
		v1.Get("/adapters/watermelondb/schema", func(c *fiber.Ctx) error {
			c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
			return c.Send(schema)
		})
		v1.Get("/adapters/watermelondb/sync", s.authenticate, limit, s.watermelonPull)
		v1.Post("/adapters/watermelondb/sync", s.authenticate, limit, s.watermelonPush)
	}
}

func (s *Server) watermelonPull(c *fiber.Ctx) error {
	var q watermelondb.PullQuery
	if v := c.Query("last_pulled_at"); v != "" && v != "null" && v != "undefined" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return engine.Errorf(engine.KindInvalid, engine.CodeBadCheckpoint, "/last_pulled_at", "last_pulled_at must be null or a timestamp this server issued")
		}
		q.LastPulledAt = n
	}
	if v := c.Query("schema_version"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/schema_version", "schema_version must be a non-negative integer")
		}
		q.SchemaVersion = n
	}
	if v := c.Query("migration"); v != "" && v != "null" && v != "undefined" {
		if !json.Valid([]byte(v)) {
			return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/migration", "migration must be null or WatermelonDB's migration object as JSON")
		}
		q.Migration = json.RawMessage(v) // Query returns a copy-safe string
	}
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			return engine.Errorf(engine.KindInvalid, engine.CodeLimitOutOfRange, "/limit", "limit must be a positive integer")
		}
		q.Limit = n
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.CallTimeout)
	defer cancel()
	rep, err := s.cfg.WatermelonDB.Pull(ctx, actorOf(c), q)
	if err != nil {
		return err
	}
	return c.JSON(rep)
}

func (s *Server) watermelonPush(c *fiber.Ctx) error {
	var body watermelondb.PushBody
	if err := json.Unmarshal(c.Body(), &body); err != nil {
		return malformed(err)
	}
	if body.Changes == nil {
		return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/changes", "changes is required (an object of tables)")
	}
	device := c.Query("device_id")
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.CallTimeout)
	defer cancel()
	rep, err := s.cfg.WatermelonDB.Push(ctx, actorOf(c), string([]byte(device)), body)
	if err != nil {
		return err
	}
	return c.JSON(rep)
}
