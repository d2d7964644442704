package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/jwtauth"
	"github.com/fieldsync/fieldsync/kpi"
	"github.com/fieldsync/fieldsync/schemas"
	"github.com/fieldsync/fieldsync/server"
	"github.com/fieldsync/fieldsync/sqlite"
	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/workflow"
)

// fixture is the server over real parts: a SQLite file in a temp dir, the
// engine, identity, workflow and signing keys, driven through Fiber's
// app.Test (no listener). Organisation "acme" has an admin and a rep with
// passwords; "other" has an admin, to check that another organisation's
// ids look missing.
type fixture struct {
	srv   *server.Server
	keys  *jwtauth.Keys
	store *sqlite.Store
	eng   *engine.Engine
}

const fixturePassword = "a long enough passphrase"

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "fieldsync.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, err := jwtauth.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	sch, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	// Small argon2 parameters: the tests sign in, they do not measure.
	hash := identity.HashParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	ids, err := identity.New(identity.Config{Store: st, Tokens: keys, Hash: hash, RefreshKey: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(ctx, engine.Config{Rules: fieldsales.New(fieldsales.VisitRules{}), Store: st, Schemas: sch, Directory: ids, Limits: engine.Limits{MaxMutations: 10}})
	if err != nil {
		t.Fatal(err)
	}
	wf, err := workflow.New(workflow.Config{Writer: eng, Docs: st, Store: st, Orgs: ids, Directory: ids, Schemas: sch})
	if err != nil {
		t.Fatal(err)
	}
	eng.AddHook(wf)
	srv := server.New(server.Config{
		Sync: eng, Auth: keys, Store: st, Schemas: sch.JSON(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Accounts: ids, Sessions: keys, Admin: ids, Devices: st, Directory: ids, Keys: ids, ServiceAccounts: ids,
		Docs: struct {
			fieldsales.Customers
			engine.Store
		}{fieldsales.Customers{Engine: eng, Directory: ids}, st},
		Workflow: wf, KPIs: kpi.NewService(st, ids, nil),
	})
	for _, u := range []struct{ org, id, email, role string }{
		{"acme", "ann", "ann@acme.example", fieldsales.RoleAdmin},
		{"acme", "rob", "rob@acme.example", fieldsales.RoleRep},
		{"other", "oz", "oz@other.example", fieldsales.RoleAdmin},
	} {
		if _, err := ids.AddUser(ctx, u.org, identity.NewUser{ID: u.id, Email: u.email, Roles: []string{u.role}, Password: fixturePassword}); err != nil {
			t.Fatal(err)
		}
	}
	return &fixture{srv: srv, keys: keys, store: st, eng: eng}
}

// token mints an access token for a user of the fixture.
func (f *fixture) token(t *testing.T, org, user, role string) string {
	t.Helper()
	tok, err := f.keys.Mint(org, user, []string{role}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// errorCase is one request and the refusal the API documents for it
// (docs/protocol.md, "Errors").
type errorCase struct {
	name, method, path, token string
	body                      string
	status                    int
	code, pointer             string
}

// check sends each case and compares status, code and pointer; every
// refusal carries a message and a request id.
func (f *fixture) check(t *testing.T, cases []errorCase) {
	t.Helper()
	for _, c := range cases {
		status, body := f.do(t, c.method, c.path, c.token, c.body)
		var reply struct {
			Error engine.ErrorBody `json:"error"`
		}
		json.Unmarshal(body, &reply)
		e := reply.Error
		if status != c.status || e.Code != c.code || e.Pointer != c.pointer {
			t.Errorf("%s: %d %q at %q (%s), want %d %q at %q", c.name, status, e.Code, e.Pointer, e.Message, c.status, c.code, c.pointer)
			continue
		}
		if c.status >= 400 && (e.Message == "" || e.RequestID == "") {
			t.Errorf("%s: a refusal without message or request id: %s", c.name, body)
		}
	}
}

// do sends one request through the Fiber app and returns the status and
// body.
func (f *fixture) do(t *testing.T, method, path, token, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = bytes.NewReader([]byte(body))
	}
	req := httptest.NewRequest(method, path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := f.srv.App().Test(req, -1)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, raw
}

// head is the organisation's feed position: a refused request must leave
// it where it was.
func (f *fixture) head(t *testing.T, org string) int64 {
	t.Helper()
	h, err := f.store.Head(context.Background(), org)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
