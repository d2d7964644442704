package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldsync/fieldsync/adapters/rxdb"
	"github.com/fieldsync/fieldsync/adapters/watermelondb"
	"github.com/fieldsync/fieldsync/stream"
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
	if s.cfg.RxDB != nil {
		s.rxdbRoutes(v1, limit)
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

// RxDB serves replicateServer of rxdb-server (adapters/rxdb;
// docs/integrate.md).
type RxDB interface {
	Has(collection string) bool
	Schemas() map[string]json.RawMessage
	Pull(ctx context.Context, actor engine.Actor, collection, checkpoint string, limit int) (*rxdb.PullReply, error)
	Push(ctx context.Context, actor engine.Actor, device, collection string, rows []rxdb.Row) ([]json.RawMessage, error)
	OpenStream(ctx context.Context, actor engine.Actor, collection string, watch rxdb.Watch) (*rxdb.PullStream, error)
}

// rxdbPrefix is where the RxDB endpoints live: replicateServer's url is
// rxdbPrefix + "/{collection}/{version}".
const rxdbPrefix = "/v1/adapters/rxdb"

func (s *Server) rxdbRoutes(v1 fiber.Router, limit fiber.Handler) {
	schemas, _ := json.Marshal(s.cfg.RxDB.Schemas())
	v1.Get("/adapters/rxdb/schemas", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		// The version in the endpoints' path: an app told it is outdated
		// compares it with its own to tell an update from a start over.
		c.Set(headerRxDBVersion, strconv.Itoa(rxdb.SchemaVersion))
		return c.Send(schemas)
	})
	g := v1.Group("/adapters/rxdb/:collection/:version", s.authenticate, limit, s.rxdbCheck)
	g.Get("/pull", s.rxdbPull)
	g.Post("/push", s.rxdbPush)
	// The pull stream waits on the live stream's hub (Hub.Watch): without
	// one, replicateServer finds no stream and syncs when the app asks.
	if s.cfg.Stream.Hub != nil {
		g.Get("/pullStream", s.rxdbStream)
	}
}

// rxdbCheck answers an unknown collection 404 and another schema version
// 426 Upgrade Required, the status replicateServer reads as an outdated
// client (it then stops and emits outdatedClient$). 426 is the RxDB
// protocol's signal rather than an error kind, so it is written here.
func (s *Server) rxdbCheck(c *fiber.Ctx) error {
	if !s.cfg.RxDB.Has(c.Params("collection")) {
		return engine.Errorf(engine.KindNotFound, engine.CodeUnknownCollection, "/collection", "no synced collection %q", c.Params("collection"))
	}
	if c.Params("version") != strconv.Itoa(rxdb.SchemaVersion) {
		return upgradeRequired(c, CodeOutdatedClient, fmt.Sprintf("this server speaks schema version %d; update the app", rxdb.SchemaVersion), "/version")
	}
	return c.Next()
}

// headerRxDBVersion names the RxDB endpoints' schema version on the schemas
// endpoint.
const headerRxDBVersion = "X-Fieldsync-Rxdb-Version"

// upgradeRequired answers 426, replicateServer's outdated client: the
// error body says why (another schema version, or a read set that changed).
func upgradeRequired(c *fiber.Ctx, code, message, pointer string) error {
	c.Set(headerRxDBVersion, strconv.Itoa(rxdb.SchemaVersion))
	return c.Status(fiber.StatusUpgradeRequired).JSON(fiber.Map{"error": engine.ErrorBody{Code: code,
		Message: message, Pointer: pointer, RequestID: requestID(c)}})
}

// CodeOutdatedClient answers an RxDB client of another schema version (426).
const CodeOutdatedClient = "outdated_client"

func (s *Server) rxdbPull(c *fiber.Ctx) error {
	limit := 100
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			return engine.Errorf(engine.KindInvalid, engine.CodeLimitOutOfRange, "/limit", "limit must be a positive integer")
		}
		limit = n
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.CallTimeout)
	defer cancel()
	rep, err := s.cfg.RxDB.Pull(ctx, actorOf(c), strings.Clone(c.Params("collection")), strings.Clone(c.Query("id")), limit)
	if errors.Is(err, rxdb.ErrStartOver) {
		return upgradeRequired(c, rxdb.CodeStartOver, rxdb.ErrStartOver.Message, "/id")
	}
	if err != nil {
		return err
	}
	return c.JSON(rep)
}

func (s *Server) rxdbPush(c *fiber.Ctx) error {
	var rows []rxdb.Row
	if err := json.Unmarshal(c.Body(), &rows); err != nil {
		return malformed(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.CallTimeout)
	defer cancel()
	conflicts, err := s.cfg.RxDB.Push(ctx, actorOf(c), strings.Clone(c.Get("X-Device-Id")), strings.Clone(c.Params("collection")), rows)
	if err != nil {
		return err
	}
	return c.JSON(conflicts)
}

// rxdbStream serves the pull stream as server-sent events: one default
// ("message") event per batch of changes, a comment as heartbeat. It is a
// watch of the live stream's hub, re-checked like a live stream: an expired
// or revoked token, or a user the directory no longer lets in, ends it (the
// client reconnects with a fresh token), and a changed read set ends it
// before anything is sent under the new one.
func (s *Server) rxdbStream(c *fiber.Ctx) error {
	actor := actorOf(c)
	coll := strings.Clone(c.Params("collection"))
	base := s.streams.base
	token, _ := bearerToken(c.Get(fiber.HeaderAuthorization))
	check := s.streamCheck(strings.Clone(token))
	hub := s.cfg.Stream.Hub
	watch := func(ctx context.Context, keys []string) (rxdb.Changes, error) {
		st, err := hub.Watch(ctx, stream.Sub{Org: actor.Org, User: actor.User, Keys: keys, Check: check})
		if err != nil {
			return nil, err
		}
		return watchChanges{st}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.CallTimeout)
	defer cancel()
	ps, err := s.cfg.RxDB.OpenStream(ctx, actor, coll, watch)
	if err != nil {
		return err // a disabled user, too many streams: before any event
	}
	c.Set(fiber.HeaderContentType, "text/event-stream")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set("X-Accel-Buffering", "no")
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		ctx, cancel := context.WithCancel(base)
		defer cancel()
		send := func(m *rxdb.PullReply) error {
			if m == nil {
				w.WriteString(":\n\n")
			} else {
				b, _ := json.Marshal(m)
				w.WriteString("data: ")
				w.Write(b)
				w.WriteString("\n\n")
			}
			return w.Flush()
		}
		// A comment first, so the client's open event fires at once.
		if _, err := w.WriteString("retry: 1000\n:\n\n"); err != nil || w.Flush() != nil {
			ps.Close()
			return
		}
		if err := ps.Serve(ctx, send); err != nil {
			s.log.Info("rxdb pull stream ended", "err", err)
		}
	})
	return nil
}

// watchChanges is a hub watch as an RxDB pull stream's Changes.
type watchChanges struct{ st *stream.Stream }

func (w watchChanges) Ready() int64 { return w.st.Ready() }
func (w watchChanges) Close()       { w.st.Close() }

func (w watchChanges) Next(ctx context.Context) (changed, ok bool) {
	ev, ok := w.st.Next(ctx)
	if !ok || ev.Kind == stream.End {
		return false, false
	}
	return ev.Kind == stream.Poke, true
}
