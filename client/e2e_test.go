package client_test

// End-to-end tests against the real server: engine, SQLite store in a temp
// dir, JWT keys and the Fiber transport on a loopback port. They live in the
// external test package so that only the test binary imports the adapters;
// package client itself does not.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/client"
	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/internal/patience"
	"github.com/fieldsync/fieldsync/jwtauth"
	"github.com/fieldsync/fieldsync/schemas"
	"github.com/fieldsync/fieldsync/server"
	"github.com/fieldsync/fieldsync/sqlite"
	"github.com/fieldsync/fieldsync/sync/engine"
)

type testServer struct {
	URL  string
	keys *jwtauth.Keys
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	sch, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := jwtauth.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(ctx, filepath.Join(dir, "fieldsync.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(ctx, engine.Config{Rules: fieldsales.New(fieldsales.VisitRules{}), Store: store, Schemas: sch})
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	// The customers the tests' notes hang off, assigned to every rep the
	// tests sign in as (a rep sees a note through its customer).
	var custs []engine.UpsertDoc
	for _, id := range []string{"c-1", "c-42"} {
		custs = append(custs, engine.UpsertDoc{Collection: fieldsales.CollCustomers, ID: id, Fields: map[string]json.RawMessage{
			"name": json.RawMessage(`"Customer ` + id + `"`), "assigned_reps": json.RawMessage(`["u1","u2","u3"]`)}})
	}
	if _, err := eng.Upsert(ctx, engine.Actor{Org: "org-1", User: "u-admin", Roles: []string{"admin"}}, "test", custs); err != nil {
		store.Close()
		t.Fatal(err)
	}
	srv := server.New(server.Config{Sync: eng, Auth: keys, Store: store, Schemas: sch.JSON(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), patience.Of(t))
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		if err := store.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return &testServer{URL: "http://" + ln.Addr().String(), keys: keys}
}

func (ts *testServer) device(t *testing.T, user, device string, tweak func(*client.Config)) *client.Client {
	t.Helper()
	tok, err := ts.keys.Mint("org-1", user, []string{"rep"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cfg := client.Config{
		BaseURL: ts.URL, Token: client.StaticToken(tok), DeviceID: device,
		Store: client.NewFileStore(filepath.Join(t.TempDir(), "state.json")),
		Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
	}
	if tweak != nil {
		tweak(&cfg)
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustSync(t *testing.T, c *client.Client) client.SyncReport {
	t.Helper()
	rep, err := c.Sync(context.Background())
	if err != nil {
		t.Fatalf("%s: sync: %v", c.DeviceID(), err)
	}
	return rep
}

func decode(t *testing.T, raw json.RawMessage) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("decode %q: %v", raw, err)
	}
	return m
}

// sameState fails unless both devices show the same documents and hold the
// same server copies, with nothing pending.
func sameState(t *testing.T, a, b *client.Client, coll string) {
	t.Helper()
	if a.Pending() != 0 || b.Pending() != 0 {
		t.Errorf("pending: %s %d, %s %d", a.DeviceID(), a.Pending(), b.DeviceID(), b.Pending())
	}
	if !reflect.DeepEqual(a.ServerState(), b.ServerState()) {
		t.Errorf("server copies differ:\n%s: %v\n%s: %v", a.DeviceID(), a.ServerState(), b.DeviceID(), b.ServerState())
	}
	da, db := a.Docs(coll), b.Docs(coll)
	if len(da) != len(db) {
		t.Fatalf("%s shows %d %s, %s shows %d", a.DeviceID(), len(da), coll, b.DeviceID(), len(db))
	}
	for id, doc := range da {
		if !reflect.DeepEqual(decode(t, doc), decode(t, db[id])) {
			t.Errorf("%s/%s: %s has %s, %s has %s", coll, id, a.DeviceID(), doc, b.DeviceID(), db[id])
		}
	}
}

func TestEndToEndTwoDevicesConverge(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	var conflicts []engine.Conflict
	phone := ts.device(t, "u1", "phone", nil)
	tablet := ts.device(t, "u1", "tablet", func(c *client.Config) {
		c.OnConflict = func(_ engine.Mutation, o engine.Outcome) { conflicts = append(conflicts, o.Conflicts...) }
	})
	const notes = fieldsales.CollCustomerNotes
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	// Offline on the phone: a create edited before it was ever sent, and a
	// create deleted before it was ever sent.
	n1, n2 := phone.NewID(), phone.NewID()
	must(phone.Create(notes, n1, map[string]any{"customer_id": "c-42", "text": "Wants 40 motors"}))
	must(phone.Update(notes, n1, map[string]any{"text": "Wants 45 motors"}))
	must(phone.Create(notes, n2, map[string]any{"customer_id": "c-42", "text": "typo"}))
	must(phone.Delete(notes, n2))
	rep, err := phone.Push(context.Background())
	must(err)
	if rep.Applied != 4 || rep.Rejected != 0 {
		t.Fatalf("first push: %+v", rep)
	}
	// Before any pull, the acknowledged edits are still what the phone shows,
	// and an edit made now starts from the acknowledged version.
	doc, ok := phone.Get(notes, n1)
	if !ok || decode(t, doc)["text"] != "Wants 45 motors" {
		t.Fatalf("after push, before pull: %s, %v", doc, ok)
	}
	must(phone.Update(notes, n1, map[string]any{"tags": []string{"motors"}}))
	if rep := mustSync(t, phone); rep.Push.Applied != 1 || rep.Push.Rejected != 0 {
		t.Fatalf("edit after push: %+v", rep.Push)
	}

	mustSync(t, tablet)
	sameState(t, phone, tablet, notes)
	if _, ok := tablet.Get(notes, n2); ok {
		t.Error("the deleted note reached the tablet")
	}

	// Both devices edit n1 concurrently: the same field (text) and different
	// ones. The phone's text commits first and wins; the tablet learns the
	// merged document at once, and its tags still apply.
	must(phone.Update(notes, n1, map[string]any{"text": "Wants 50 motors"}))
	must(tablet.Update(notes, n1, map[string]any{"text": "Wants 60 motors", "tags": []string{"motors", "urgent"}}))
	mustSync(t, phone)
	trep := mustSync(t, tablet)
	if trep.Push.Merged != 1 || len(conflicts) != 1 || conflicts[0].Field != "text" {
		t.Fatalf("tablet push: %+v, conflicts %+v", trep.Push, conflicts)
	}
	mustSync(t, phone)
	sameState(t, phone, tablet, notes)
	got := decode(t, must2(tablet.Get(notes, n1)))
	if got["text"] != "Wants 50 motors" || !reflect.DeepEqual(got["tags"], []any{"motors", "urgent"}) {
		t.Errorf("converged note = %v", got)
	}

	// A rejected edit is dropped and the server copy shows again.
	var rejected []string
	bad := ts.device(t, "u1", "bad-phone", func(c *client.Config) {
		c.OnReject = func(_ engine.Mutation, o engine.Outcome) { rejected = append(rejected, o.Error.Code) }
	})
	mustSync(t, bad)
	must(bad.Update(notes, n1, map[string]any{"text": ""}))
	if rep := mustSync(t, bad); rep.Push.Rejected != 1 || !reflect.DeepEqual(rejected, []string{engine.CodeSchemaViolation}) {
		t.Errorf("invalid edit: %+v, rejections %v", rep.Push, rejected)
	}
	sameState(t, bad, phone, notes)
}

// TestEndToEndEditDuringPush edits while a push waits on the network: the
// edit must neither block nor be lost, and goes out in the same Push.
func TestEndToEndEditDuringPush(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	const notes = fieldsales.CollCustomerNotes
	var phone *client.Client
	var once sync.Once
	var editErr error
	late := "late-note"
	hook := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Path == "/v1/sync/push" {
			once.Do(func() {
				editErr = errors.Join(
					phone.Create(notes, late, map[string]any{"customer_id": "c-1", "text": "written meanwhile"}),
					phone.Update(notes, "first", map[string]any{"text": "edited meanwhile"}))
			})
		}
		return http.DefaultTransport.RoundTrip(r)
	})
	phone = ts.device(t, "u3", "phone", func(c *client.Config) { c.HTTPClient = &http.Client{Transport: hook} })
	if err := phone.Create(notes, "first", map[string]any{"customer_id": "c-1", "text": "first"}); err != nil {
		t.Fatal(err)
	}
	rep := mustSync(t, phone)
	if editErr != nil {
		t.Fatal(editErr)
	}
	if rep.Push.Applied != 3 || phone.Pending() != 0 {
		t.Fatalf("push with edits made during it: %+v, %d pending", rep.Push, phone.Pending())
	}
	other := ts.device(t, "u3", "other", nil)
	mustSync(t, other)
	sameState(t, phone, other, notes)
	if doc := decode(t, must2(other.Get(notes, "first"))); doc["text"] != "edited meanwhile" {
		t.Errorf("first = %v", doc)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// byPath sends each request through the transport of its path.
type byPath map[string]http.RoundTripper

func (b byPath) RoundTrip(r *http.Request) (*http.Response, error) { return b[r.URL.Path].RoundTrip(r) }

func must2(doc json.RawMessage, ok bool) json.RawMessage {
	if !ok {
		return json.RawMessage("null")
	}
	return doc
}

// TestEndToEndLossyNetwork pushes through a transport that drops requests
// and loses replies after the server committed: every edit must land exactly
// once, and a clean device must converge with the lossy one.
func TestEndToEndLossyNetwork(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	pushFaults := client.NewFaultTransport(nil, 7, 0.2, 0.4)
	pullFaults := client.NewFaultTransport(nil, 8, 0.2, 0.2)
	lossy := ts.device(t, "u2", "lossy", func(c *client.Config) {
		c.HTTPClient = &http.Client{Timeout: patience.Of(t), Transport: byPath{
			"/v1/sync/push": pushFaults, "/v1/sync/pull": pullFaults}}
		c.BatchSize = 4
		c.PageSize = 5
	})
	clean := ts.device(t, "u2", "clean", nil)
	const notes = fieldsales.CollCustomerNotes

	var total client.PushReport
	var ids []string
	for round := range 5 {
		for i := range 6 {
			id := lossy.NewID()
			ids = append(ids, id)
			if err := lossy.Create(notes, id, map[string]any{"customer_id": "c-1", "text": fmt.Sprintf("note %d.%d", round, i)}); err != nil {
				t.Fatal(err)
			}
		}
		// Edit a note of an earlier round, acknowledged or not yet pulled.
		if err := lossy.Update(notes, ids[round*3], map[string]any{"text": fmt.Sprintf("edited in round %d", round)}); err != nil {
			t.Fatal(err)
		}
		rep := mustSync(t, lossy)
		total.Applied += rep.Push.Applied
		total.Merged += rep.Push.Merged
		total.Rejected += rep.Push.Rejected
		total.Retries += rep.Push.Retries
	}
	if total.Rejected != 0 || total.Merged != 0 || total.Applied != 35 {
		t.Errorf("pushes through a lossy network: %+v; want 35 applied, nothing else", total)
	}
	// The point is pushes committed whose reply never arrived.
	if pc := pushFaults.Counts(); pc.Lost == 0 || pc.Dropped == 0 || pullFaults.Counts().Lost == 0 {
		t.Fatalf("the network lost too little (push %+v, pull %+v): the test proves nothing", pc, pullFaults.Counts())
	}

	mustSync(t, clean)
	if n := len(clean.Docs(notes)); n != 30 {
		t.Errorf("the clean device sees %d notes; want 30", n)
	}
	sameState(t, lossy, clean, notes)

	// A tampered checkpoint is refused and drops nothing; after a reset the
	// full pull converges.
	path := filepath.Join(t.TempDir(), "state.json")
	store := client.NewFileStore(path)
	useStore := func(c *client.Config) { c.Store = store }
	mustSync(t, ts.device(t, "u2", "tampered", useStore))
	st, err := store.Load()
	if err != nil {
		t.Fatal(err)
	}
	st.Checkpoint = "eyJ2IjoxLCJvIjoib3JnLTEiLCJ1IjoidTIiLCJzIjowfQ.AAAA"
	if err := store.Save(st); err != nil {
		t.Fatal(err)
	}
	reopened := ts.device(t, "u2", "tampered", useStore)
	_, err = reopened.Pull(context.Background())
	var re *client.RequestError
	if !errors.As(err, &re) || re.Status != http.StatusBadRequest || re.Body.Code != engine.CodeBadCheckpoint {
		t.Fatalf("pull with a tampered checkpoint = %v; want 400 bad_checkpoint", err)
	}
	if err := reopened.ResetCheckpoint(); err != nil {
		t.Fatal(err)
	}
	mustSync(t, reopened)
	sameState(t, reopened, clean, notes)
}
