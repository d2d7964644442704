package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// TestErrorsMapToOneShape: every error a route returns (the engine's kinds,
// Fiber's own, an unclassified one) is answered by handleError with its
// status and the one body shape {error: {code, message, pointer,
// request_id}}; an internal error shows nothing of its cause, and the cause
// is logged with the request id instead.
func TestErrorsMapToOneShape(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	s := &Server{log: slog.New(slog.NewJSONHandler(&logs, nil))}
	app := fiber.New(fiber.Config{ErrorHandler: s.handleError})
	cases := []struct {
		name    string
		err     error
		status  int
		code    string
		pointer string
	}{
		{"invalid", engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/limit", "bad"), 400, engine.CodeInvalidRequest, "/limit"},
		{"unauthorized", engine.Errorf(engine.KindUnauthorized, engine.CodeUnauthenticated, "", "who?"), 401, engine.CodeUnauthenticated, ""},
		{"forbidden", engine.Errorf(engine.KindForbidden, engine.CodeForbidden, "/id", "no"), 403, engine.CodeForbidden, "/id"},
		{"not found", engine.Errorf(engine.KindNotFound, engine.CodeNotFound, "", "none"), 404, engine.CodeNotFound, ""},
		{"conflict", engine.Errorf(engine.KindConflict, "version_mismatch", "", "moved"), 409, "version_mismatch", ""},
		{"too large", engine.Errorf(engine.KindTooLarge, engine.CodeTooManyMutations, "/mutations", "many"), 413, engine.CodeTooManyMutations, "/mutations"},
		{"rate limited", engine.Errorf(engine.KindRateLimited, "rate_limited", "", "slow down"), 429, "rate_limited", ""},
		{"unavailable", engine.Errorf(engine.KindUnavailable, engine.CodeUnavailable, "", "store down"), 503, engine.CodeUnavailable, ""},
		{"fiber 404", fiber.ErrNotFound, 404, engine.CodeNotFound, ""},
		{"fiber 413", fiber.ErrRequestEntityTooLarge, 413, engine.CodeBodyTooLarge, ""},
		{"fiber 405", fiber.ErrMethodNotAllowed, 405, engine.CodeInvalidRequest, ""},
		{"internal", errors.New("sqlite: disk I/O error at page 4711"), 500, engine.CodeInternal, ""},
	}
	for i, c := range cases {
		app.Get("/"+strings.ReplaceAll(c.name, " ", "-"), func(*fiber.Ctx) error { return cases[i].err })
	}
	for _, c := range cases {
		resp, err := app.Test(httptest.NewRequest("GET", "/"+strings.ReplaceAll(c.name, " ", "-"), nil))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		var body struct {
			Error struct {
				Code, Message, Pointer string
				RequestID              string `json:"request_id"`
			} `json:"error"`
		}
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Fatalf("%s: body %q: %v", c.name, raw, err)
		}
		e := body.Error
		if resp.StatusCode != c.status || e.Code != c.code || e.Pointer != c.pointer || e.RequestID == "" || e.Message == "" {
			t.Errorf("%s: %d %s; want %d with code %s at %q and a request id", c.name, resp.StatusCode, raw, c.status, c.code, c.pointer)
		}
		if got := resp.Header.Get(fiber.HeaderWWWAuthenticate); (c.status == 401) != (got != "") {
			t.Errorf("%s: WWW-Authenticate %q", c.name, got)
		}
		if c.name == "internal" {
			if strings.Contains(string(raw), "4711") || e.Message != "internal error" {
				t.Errorf("the internal error's cause reached the client: %s", raw)
			}
			if !strings.Contains(logs.String(), "4711") || !strings.Contains(logs.String(), e.RequestID) {
				t.Errorf("the internal error was not logged with its request id: %s", logs.String())
			}
		}
	}
}
