package server

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// pushReply is the body of a push reply.
type pushReply struct {
	Results []engine.Outcome `json:"results"`
}

func (s *Server) push(c *fiber.Ctx) error {
	var req engine.PushRequest
	// UnmarshalJSON copies what it keeps (RawMessage included), so nothing
	// refers to Fiber's reused body buffer once the handler returns. Called
	// directly: json.Unmarshal would scan the whole body twice (validation,
	// then finding the value's end) before handing it over unchanged.
	if err := req.UnmarshalJSON(c.Body()); err != nil {
		return malformed(err)
	}
	if req.Mutations == nil {
		return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/mutations", "mutations is required (an array)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.CallTimeout)
	defer cancel()
	outs, err := s.cfg.Sync.Push(ctx, actorOf(c), req)
	if err != nil {
		return err
	}
	for _, o := range outs {
		s.metrics.mutations.WithLabelValues(o.Status).Inc()
	}
	return c.JSON(pushReply{Results: outs})
}

// malformed describes a JSON decoding error without echoing the body.
func malformed(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var ee *engine.Error
	switch {
	case errors.As(err, &ee):
		return ee
	case errors.As(err, &se):
		return engine.Errorf(engine.KindInvalid, engine.CodeMalformedJSON, "", "the body is not valid JSON (at byte %d)", se.Offset)
	case errors.As(err, &te):
		ptr := "/" + strings.ReplaceAll(te.Field, ".", "/")
		return engine.Errorf(engine.KindInvalid, engine.CodeMalformedJSON, ptr, "%s must be %s, not %s", te.Field, te.Type, te.Value)
	}
	return engine.Errorf(engine.KindInvalid, engine.CodeMalformedJSON, "", "the body is not valid JSON")
}

func (s *Server) pull(c *fiber.Ctx) error {
	req := engine.PullRequest{Checkpoint: c.Query("checkpoint")}
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			return engine.Errorf(engine.KindInvalid, engine.CodeLimitOutOfRange, "/limit", "limit must be a positive integer")
		}
		req.Limit = n
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.CallTimeout)
	defer cancel()
	res, err := s.cfg.Sync.Pull(ctx, actorOf(c), req)
	if err != nil {
		return err
	}
	s.metrics.pulled.Add(float64(len(res.Changes)))
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(encodePull(res))
}

// encodePull writes the pull reply by hand: document bodies are stored as
// JSON already and are copied verbatim instead of being decoded and encoded
// again, which is most of the cost of a pull.
func encodePull(res engine.PullResult) []byte {
	b := make([]byte, 0, res.Bytes+len(res.Changes)*96+256)
	b = append(b, `{"changes":[`...)
	for i, ch := range res.Changes {
		if i > 0 {
			b = append(b, ',')
		}
		op := ch.Op()
		b = append(b, `{"op":"`...)
		b = append(b, op...)
		b = append(b, `","collection":`...)
		b = strconv.AppendQuote(b, ch.Collection)
		b = append(b, `,"id":`...)
		b = strconv.AppendQuote(b, ch.ID)
		if op != engine.ChangeEvict {
			b = append(b, `,"version":`...)
			b = strconv.AppendInt(b, ch.Version, 10)
		}
		if op == engine.ChangePut {
			b = append(b, `,"doc":`...)
			b = append(b, ch.Body...)
		}
		b = append(b, '}')
	}
	b = append(b, `],"checkpoint":`...)
	b = strconv.AppendQuote(b, res.Checkpoint)
	b = append(b, `,"has_more":`...)
	b = strconv.AppendBool(b, res.HasMore)
	if res.Reset {
		b = append(b, `,"reset":true`...)
	}
	return append(b, '}')
}
