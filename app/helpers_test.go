package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/app"
	"github.com/fieldsync/fieldsync/internal/ferrettest"
	"github.com/fieldsync/fieldsync/jwtauth"
	"github.com/fieldsync/fieldsync/sync/engine"
)

func TestMain(m *testing.M) {
	// Every response the API tests receive is validated against the
	// OpenAPI description (openapi_test.go).
	if err := validateResponses(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	stopBrowser()       // console_browser_test.go
	removeConsoleDemo() // console_browser_test.go
	if v := responseViolations(); len(v) > 0 {
		fmt.Fprintf(os.Stderr, "%d responses do not match openapi/openapi.json:\n%s\n", len(v), strings.Join(v, "\n"))
		code = 1
	}
	if stopFerret != nil {
		stopFerret()
	}
	os.Exit(code)
}

// ferret starts, on first use, the FerretDB that every MongoDB test of this
// test binary shares (with atomic single-document writes, as on MongoDB:
// the scenarios race writers on the same documents); TestMain stops it.
// Each test takes a database of its own (freshMongoDatabase).
var (
	stopFerret func()
	ferret     = sync.OnceValues(func() (string, error) {
		uri, stop, err := ferrettest.StartAtomic()
		stopFerret = stop
		return uri, err
	})
	mongoDatabases atomic.Int64
)

// sharedFerret returns the MongoDB URI of the shared FerretDB.
func sharedFerret(t testing.TB) string {
	t.Helper()
	uri, err := ferret()
	if err != nil {
		t.Fatalf("start FerretDB: %v", err)
	}
	return uri
}

// freshMongoDatabase names a database no other test of this process uses.
func freshMongoDatabase() string {
	return fmt.Sprintf("fieldsync_test_%d_%d", os.Getpid(), mongoDatabases.Add(1))
}

// testServer is a full fieldsync server (real SQLite file, real HTTP on a
// loopback port) running inside the test process.
type testServer struct {
	URL  string
	Data string
	Keys *jwtauth.Keys
	// Eng is the server's engine: the server's own (trusted) writes, for
	// fixtures no device may create.
	Eng *engine.Engine
	// Store is the server's store: the retention tests run its compaction
	// with a clock of their own.
	Store engine.Store
	stop  func()
	in    *app.Instance // the running server, for tests that look inside
}

// startServer starts a server on data (a fresh temp dir when ""), with cfg
// adjusted by tweak, and stops it when the test ends.
func startServer(t testing.TB, data string, tweak func(*serveConfig)) *testServer {
	t.Helper()
	return startServerWith(t, data, tweak, io.Discard)
}

// startServerLog starts a server that writes JSON logs to w.
func startServerLog(t testing.TB, w io.Writer) *testServer {
	t.Helper()
	return startServerWith(t, "", func(c *serveConfig) { c.LogFormat = "json" }, w)
}

func startServerWith(t testing.TB, data string, tweak func(*serveConfig), logw io.Writer) *testServer {
	t.Helper()
	if data == "" {
		data = t.TempDir()
	}
	c, err := parseServe([]string{"--addr", "127.0.0.1:0", "--data", data}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if tweak != nil {
		tweak(&c)
	}
	log, err := newLogger(c.LogFormat, c.LogLevel, logw)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in, err := app.Start(ctx, c.Config, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	// The production shutdown timeout: fasthttp treats a connection that
	// never sent a request as active for 5 s, so a shorter one can expire.
	go func() { done <- in.ServeUntil(ctx, c.ShutdownTimeout) }()
	ts := &testServer{URL: in.URL(), Data: data, Keys: in.Keys, Eng: in.Engine, Store: in.Store, in: in}
	stopped := false
	ts.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server stopped with error: %v", err)
		}
	}
	t.Cleanup(ts.stop)
	return ts
}

func (ts *testServer) token(t testing.TB, org, user string, roles ...string) string {
	t.Helper()
	if len(roles) == 0 {
		roles = []string{"rep"}
	}
	tok, err := ts.Keys.Mint(org, user, roles, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// do sends a request and decodes a JSON reply into out (when not nil).
func do(t testing.TB, method, url, token string, body []byte, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, url, raw, err)
		}
	}
	return resp.StatusCode
}

type pushReply struct {
	Results []engine.Outcome `json:"results"`
}

type pullReply struct {
	Changes []struct {
		Op         string          `json:"op"`
		Collection string          `json:"collection"`
		ID         string          `json:"id"`
		Version    int64           `json:"version"`
		Doc        json.RawMessage `json:"doc"`
	} `json:"changes"`
	Checkpoint string `json:"checkpoint"`
	HasMore    bool   `json:"has_more"`
}

type errorReply struct {
	Error engine.ErrorBody `json:"error"`
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pullAll pulls every page for token from checkpoint cp.
func pullAll(t testing.TB, base, token, cp string, limit int) (map[string]json.RawMessage, string) {
	t.Helper()
	docs := map[string]json.RawMessage{}
	for {
		var r pullReply
		u := base + "/v1/sync/pull?limit=" + strconv.Itoa(limit) + "&checkpoint=" + url.QueryEscape(cp)
		if st := do(t, "GET", u, token, nil, &r); st != 200 {
			t.Fatalf("pull: status %d", st)
		}
		for _, c := range r.Changes {
			key := c.Collection + "/" + c.ID
			if c.Op == "put" {
				docs[key] = c.Doc
			} else {
				delete(docs, key)
			}
		}
		cp = r.Checkpoint
		if !r.HasMore {
			return docs, cp
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the server's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// customer creates customer id in org, assigned to reps, as an admin of
// the organisation would: notes and orders hang off a customer, and a rep
// sees them because the customer is theirs.
func (ts *testServer) customer(t testing.TB, org, id string, reps ...string) {
	t.Helper()
	createCustomer(t, ts.URL, ts.token(t, org, "u-admin", "admin"), id, reps...)
}

// createCustomer creates customer id through base with an admin's token.
// The reps are made users of the organisation first: assigned_reps must name
// active reps (docs/access.md).
func createCustomer(t testing.TB, base, admin, id string, reps ...string) {
	t.Helper()
	ensureReps(t, base, admin, reps...)
	body := mustJSON(t, map[string]any{"device_id": "admin-console", "mutations": []map[string]any{{
		"mutation_id": "customer-" + id, "collection": "customers", "id": id, "op": "create",
		"doc": map[string]any{"name": "Customer " + id, "assigned_reps": reps}}}})
	var r struct {
		Results []struct {
			Status string `json:"status"`
		} `json:"results"`
	}
	if st := do(t, "POST", base+"/v1/sync/push", admin, body, &r); st != 200 || len(r.Results) != 1 || r.Results[0].Status != "applied" {
		t.Fatalf("create customer %s: status %d, %+v", id, st, r)
	}
}

// ensureReps makes each of reps a rep of the admin token's organisation
// through the admin API, unless it is a user already.
func ensureReps(t testing.TB, base, admin string, reps ...string) {
	t.Helper()
	for _, r := range reps {
		body := mustJSON(t, map[string]any{"id": r, "email": fmt.Sprintf("%s.%d@reps.example", r, repSerial.Add(1)), "name": r, "roles": []string{"rep"}})
		var e errorReply
		switch st := do(t, "POST", base+"/v1/admin/users", admin, body, &e); {
		case st == 201:
		case st == 409 && e.Error.Code == "user_exists":
		default:
			t.Fatalf("make %s a rep: %d %+v", r, st, e.Error)
		}
	}
}

// repSerial keeps the emails ensureReps invents unique: emails are unique
// across organisations.
var repSerial atomic.Int64
