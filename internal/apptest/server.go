// Package apptest is the fixture the system tests share: a whole fieldsync
// server (package app) started inside the test process on a real SQLite file
// and a loopback port, the HTTP helpers the tests speak to it with, the
// OpenAPI response check, and the real binary for the tests that kill it.
//
// The system tests themselves live beside the wiring, in app/ (package
// app_test); the command tests of cmd/fieldsync use the same fixture to run
// their CLIs against a live server. It is a package of its own, not a
// _test.go file, because test files cannot be imported across packages.
package apptest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/app"
	"github.com/fieldsync/fieldsync/internal/patience"
	"github.com/fieldsync/fieldsync/jwtauth"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// Server is a full fieldsync server (real SQLite file, real HTTP on a
// loopback port) running inside the test process.
type Server struct {
	URL  string
	Data string
	Keys *jwtauth.Keys
	// Eng is the server's engine: the server's own (trusted) writes, for
	// fixtures no device may create.
	Eng *engine.Engine
	// Store is the server's store: the retention tests run its compaction
	// with a clock of their own.
	Store engine.Store
	// In is the running server, for tests that look inside.
	In   *app.Instance
	stop func()
}

// config is the configuration a test server of t starts from: serve's
// defaults, on port 0 of the loopback and over data, with the store work of
// one request bounded by the test's patience (internal/patience) rather
// than a fixed 30 s.
func config(t testing.TB, data string) app.Config {
	c := app.Defaults()
	c.Version = "test"
	c.Addr, c.Data = "127.0.0.1:0", data
	c.CallTimeout = patience.Of(t)
	c.Hash = Hash
	return c
}

// Start starts a server on data (a fresh temp dir when ""), with its
// configuration adjusted by tweak, and stops it when the test ends.
func Start(t testing.TB, data string, tweak func(*app.Config)) *Server {
	t.Helper()
	return StartWith(t, data, tweak, io.Discard)
}

// StartLog starts a server that writes JSON logs to w.
func StartLog(t testing.TB, w io.Writer) *Server {
	t.Helper()
	return StartWith(t, "", func(c *app.Config) { c.LogFormat = "json" }, w)
}

// StartWith is Start with the server's log written to logw.
func StartWith(t testing.TB, data string, tweak func(*app.Config), logw io.Writer) *Server {
	t.Helper()
	if data == "" {
		data = t.TempDir()
	}
	c := config(t, data)
	if tweak != nil {
		tweak(&c)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		t.Fatal(err)
	}
	opts := &slog.HandlerOptions{Level: level}
	log := slog.New(slog.NewTextHandler(logw, opts))
	if c.LogFormat == "json" {
		log = slog.New(slog.NewJSONHandler(logw, opts))
	}
	ctx, cancel := context.WithCancel(context.Background())
	in, err := app.Start(ctx, c, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	// The production shutdown timeout: fasthttp treats a connection that
	// never sent a request as active for 5 s, so a shorter one can expire.
	go func() { done <- in.ServeUntil(ctx, c.ShutdownTimeout) }()
	s := &Server{URL: in.URL(), Data: data, Keys: in.Keys, Eng: in.Engine, Store: in.Store, In: in}
	stopped := false
	s.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		// ServeUntil waits for requests up to the shutdown timeout, then
		// stops the runners and closes the store. A store that stopped
		// answering must fail the test, not hang it until go test kills
		// the binary without running the other cleanups.
		wait := c.ShutdownTimeout + patience.Of(t)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server stopped with error: %v", err)
			}
		case <-time.After(wait):
			t.Errorf("the server did not stop within %v", wait)
		}
	}
	t.Cleanup(s.stop)
	return s
}

// Stop stops the server now (it is stopped at the end of the test anyway).
func (s *Server) Stop() { s.stop() }

// Token mints an access token of org's user with roles (rep when none).
func (s *Server) Token(t testing.TB, org, user string, roles ...string) string {
	t.Helper()
	return Mint(t, s.Keys, org, user, roles...)
}

// Mint mints an access token with keys for org's user with roles (rep when
// none), valid for an hour.
func Mint(t testing.TB, keys *jwtauth.Keys, org, user string, roles ...string) string {
	t.Helper()
	if len(roles) == 0 {
		roles = []string{"rep"}
	}
	tok, err := keys.Mint(org, user, roles, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Customer creates customer id in org, assigned to reps, as an admin of
// the organisation would: notes and orders hang off a customer, and a rep
// sees them because the customer is theirs.
func (s *Server) Customer(t testing.TB, org, id string, reps ...string) {
	t.Helper()
	CreateCustomer(t, s.URL, s.Token(t, org, "u-admin", "admin"), id, reps...)
}

// CreateCustomer creates customer id through base with an admin's token.
// The reps are made users of the organisation first: assigned_reps must name
// active reps (docs/access.md).
func CreateCustomer(t testing.TB, base, admin, id string, reps ...string) {
	t.Helper()
	EnsureReps(t, base, admin, reps...)
	body := MustJSON(t, map[string]any{"device_id": "admin-console", "mutations": []map[string]any{{
		"mutation_id": "customer-" + id, "collection": "customers", "id": id, "op": "create",
		"doc": map[string]any{"name": "Customer " + id, "assigned_reps": reps}}}})
	var r struct {
		Results []struct {
			Status string `json:"status"`
		} `json:"results"`
	}
	if st := Do(t, "POST", base+"/v1/sync/push", admin, body, &r); st != 200 || len(r.Results) != 1 || r.Results[0].Status != "applied" {
		t.Fatalf("create customer %s: status %d, %+v", id, st, r)
	}
}

// EnsureReps makes each of reps a rep of the admin token's organisation
// through the admin API, unless it is a user already.
func EnsureReps(t testing.TB, base, admin string, reps ...string) {
	t.Helper()
	for _, r := range reps {
		body := MustJSON(t, map[string]any{"id": r, "email": fmt.Sprintf("%s.%d@reps.example", r, repSerial.Add(1)), "name": r, "roles": []string{"rep"}})
		var e ErrorReply
		switch st := Do(t, "POST", base+"/v1/admin/users", admin, body, &e); {
		case st == 201:
		case st == 409 && e.Error.Code == "user_exists":
		default:
			t.Fatalf("make %s a rep: %d %+v", r, st, e.Error)
		}
	}
}

// repSerial keeps the emails EnsureReps invents unique: emails are unique
// across organisations.
var repSerial atomic.Int64

// SyncBuffer is a bytes.Buffer safe for the server's concurrent writes.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
