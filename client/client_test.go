package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// sleeps records the backoff waits of a client instead of waiting.
type sleeps struct {
	mu sync.Mutex
	ds []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.ds = append(s.ds, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) got() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.ds...)
}

func newTestClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	if cfg.BaseURL == "" {
		cfg.BaseURL = "http://127.0.0.1:1" // nothing listens; local tests never reach it
	}
	if cfg.DeviceID == "" {
		cfg.DeviceID = "dev-1"
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// seeded returns a memory store holding server copies, as if pulled.
func seeded(t *testing.T, docs map[string]map[string]Doc) *MemoryStore {
	t.Helper()
	s := NewMemoryStore()
	if err := s.Save(State{Docs: docs, Checkpoint: "cp0"}); err != nil {
		t.Fatal(err)
	}
	return s
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

func assertJSON(t *testing.T, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got %q: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("got %s, want %s", got, want)
	}
}

func (c *Client) queued() []engine.Mutation {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []engine.Mutation
	for _, p := range c.state.Queue {
		out = append(out, p.Mutation)
	}
	return out
}

func TestFileStoreRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	fs := NewFileStore(path)

	empty, err := fs.Load()
	if err != nil || !reflect.DeepEqual(empty, State{}) {
		t.Fatalf("load of a missing file = %+v, %v; want an empty state", empty, err)
	}
	want := State{
		DeviceID: "dev-1", MutationPrefix: "mX", MutationSeq: 7, Checkpoint: "cp-9",
		Docs: map[string]map[string]Doc{"customers": {"c1": {Version: 3, Doc: raw(`{"name":"Acme"}`)}}},
		Queue: []Pending{{Attempts: 2, Mutation: engine.Mutation{ID: "mX-7", Collection: "customers", DocID: "c1",
			Op: engine.OpUpdate, BaseVersion: 3, Fields: map[string]json.RawMessage{"name": raw(`"Acme AG"`)}}}},
		Acked: []Acked{{Version: 1, Mutation: engine.Mutation{ID: "mX-6", Collection: "customer_notes", DocID: "n1",
			Op: engine.OpCreate, Doc: raw(`{"text":"hi"}`)}}},
	}
	if err := fs.Save(State{Checkpoint: "older"}); err != nil {
		t.Fatal(err)
	}
	if err := fs.Save(want); err != nil {
		t.Fatal(err)
	}
	// A new store on the same path is what an app restart sees.
	got, err := NewFileStore(path).Load()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("reloaded state:\n got %+v\nwant %+v", got, want)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "state.json" {
		t.Errorf("directory holds %v; want only state.json (no temporary files left)", entries)
	}

	if err := os.WriteFile(path, []byte(`{"format":99,"state":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Load(); err == nil {
		t.Error("load of an unknown format succeeded")
	}
}

func TestVisibleStateWithPendingEdits(t *testing.T) {
	t.Parallel()
	store := seeded(t, map[string]map[string]Doc{"customers": {
		"c1": {Version: 3, Doc: raw(`{"name":"Acme","city":"Bern"}`)},
		"c2": {Version: 1, Doc: raw(`{"name":"Beta"}`)},
	}})
	c := newTestClient(t, Config{Store: store})

	if err := c.Update("customers", "c1", map[string]any{"city": "Basel", "name": nil}); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete("customers", "c2"); err != nil {
		t.Fatal(err)
	}
	if err := c.Create("customers", "c3", map[string]any{"name": "Gamma", "tier": 1}); err != nil {
		t.Fatal(err)
	}
	if err := c.Update("customers", "c3", map[string]any{"tier": 2}); err != nil {
		t.Fatal(err)
	}

	doc, ok := c.Get("customers", "c1")
	if !ok {
		t.Fatal("c1 not visible")
	}
	assertJSON(t, doc, `{"city":"Basel"}`)
	if _, ok := c.Get("customers", "c2"); ok {
		t.Error("deleted c2 still visible")
	}
	docs := c.Docs("customers")
	if len(docs) != 2 {
		t.Fatalf("Docs = %v; want c1 and c3", docs)
	}
	assertJSON(t, docs["c3"], `{"name":"Gamma","tier":2}`)
	assertJSON(t, docs["c1"], `{"city":"Basel"}`)

	// The server copies are untouched until the server answers.
	srv := c.ServerState()
	assertJSON(t, srv["customers"]["c1"].Doc, `{"name":"Acme","city":"Bern"}`)
	if _, ok := srv["customers"]["c2"]; !ok {
		t.Error("the server copy of c2 was removed by a local delete")
	}

	q := c.queued()
	bases := map[string]int64{}
	for _, m := range q {
		bases[string(m.Op)+" "+m.DocID] = m.BaseVersion
	}
	want := map[string]int64{"update c1": 3, "delete c2": 1, "create c3": 0, "update c3": 1}
	if !reflect.DeepEqual(bases, want) {
		t.Errorf("base versions = %v; want %v", bases, want)
	}
	if c.Pending() != 4 {
		t.Errorf("Pending = %d; want 4", c.Pending())
	}

	if err := c.Update("customers", "c2", map[string]any{"name": "x"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("update of a deleted document: %v; want ErrNotFound", err)
	}
	if err := c.Create("customers", "c1", map[string]any{"name": "x"}); !errors.Is(err, ErrExists) {
		t.Errorf("create of an existing id: %v; want ErrExists", err)
	}
	if err := c.Create("customers", "c2", map[string]any{"name": "x"}); !errors.Is(err, ErrExists) {
		t.Errorf("create of a deleted id: %v; want ErrExists", err)
	}
	if err := c.Create("customers", "c4", []int{1}); !errors.Is(err, ErrInvalid) {
		t.Errorf("create of a non-object: %v; want ErrInvalid", err)
	}
	if c.Pending() != 4 {
		t.Errorf("failed edits were queued: Pending = %d", c.Pending())
	}
}

func TestMutationIDsNeverReused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	seen := map[string]bool{}
	collect := func(c *Client) {
		for _, m := range c.queued() {
			seen[m.ID] = true
		}
	}

	a := newTestClient(t, Config{Store: NewFileStore(path)})
	for range 3 {
		if err := a.Create("customer_notes", a.NewID(), map[string]any{"text": "x"}); err != nil {
			t.Fatal(err)
		}
	}
	collect(a)

	// Reopen: the counter continues where the saved one left off.
	b := newTestClient(t, Config{Store: NewFileStore(path)})
	for range 2 {
		if err := b.Create("customer_notes", b.NewID(), map[string]any{"text": "y"}); err != nil {
			t.Fatal(err)
		}
	}
	if b.Pending() != 5 {
		t.Fatalf("reopened client has %d pending; want 5", b.Pending())
	}
	collect(b)
	if len(seen) != 5 {
		t.Errorf("mutation ids after reopen: %v; want 5 distinct", seen)
	}

	// A fresh store for the same device (an app reinstall) gets a new prefix.
	fresh := newTestClient(t, Config{Store: NewFileStore(filepath.Join(dir, "other.json"))})
	if err := fresh.Create("customer_notes", fresh.NewID(), map[string]any{"text": "z"}); err != nil {
		t.Fatal(err)
	}
	for _, m := range fresh.queued() {
		if seen[m.ID] {
			t.Errorf("fresh store reused mutation id %q", m.ID)
		}
	}

	if _, err := New(Config{BaseURL: "http://x", DeviceID: "dev-2", Store: NewFileStore(path)}); err == nil {
		t.Error("a store of dev-1 opened as dev-2")
	}
}

// failingStore is a MemoryStore whose saves can be made to fail.
type failingStore struct {
	MemoryStore
	fail, failLoad atomic.Bool
}

func (f *failingStore) Load() (State, error) {
	if f.failLoad.Load() {
		return State{}, errors.New("disk gone")
	}
	return f.MemoryStore.Load()
}

func (f *failingStore) Save(s State) error {
	if f.fail.Load() {
		return errors.New("disk full")
	}
	return f.MemoryStore.Save(s)
}

func TestFailedSaveLeavesNoTrace(t *testing.T) {
	t.Parallel()
	store := &failingStore{}
	c := newTestClient(t, Config{Store: store, MutationIDPrefix: "p"})
	if err := c.Create("customer_notes", "n1", map[string]any{"text": "a"}); err != nil {
		t.Fatal(err)
	}
	store.fail.Store(true)
	if err := c.Create("customer_notes", "n2", map[string]any{"text": "b"}); err == nil {
		t.Fatal("create succeeded although the save failed")
	}
	if _, ok := c.Get("customer_notes", "n2"); ok || c.Pending() != 1 {
		t.Errorf("an unsaved edit is visible (pending %d)", c.Pending())
	}
	store.fail.Store(false)
	if err := c.Create("customer_notes", "n2", map[string]any{"text": "b"}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range c.queued() {
		ids = append(ids, m.ID)
	}
	// p-2 was never saved, so it was never sent: issuing it now is safe.
	if !reflect.DeepEqual(ids, []string{"p-1", "p-2"}) {
		t.Errorf("mutation ids = %v", ids)
	}

	// If the last saved state cannot even be reloaded, memory may be ahead
	// of the store: the client refuses all further work.
	store.fail.Store(true)
	store.failLoad.Store(true)
	if err := c.Create("customer_notes", "n3", map[string]any{"text": "c"}); err == nil {
		t.Fatal("create succeeded although the save failed")
	}
	store.fail.Store(false)
	store.failLoad.Store(false)
	if err := c.Create("customer_notes", "n4", map[string]any{"text": "d"}); err == nil {
		t.Error("a client whose state could not be saved nor reloaded kept working")
	}
	if _, err := c.Push(context.Background()); err == nil {
		t.Error("push on a broken client succeeded")
	}
}

// TestOutcomesAndPulls drives the state transitions of push outcomes and
// pull pages without a network: what the device shows and which
// base_version its next edit carries.
func TestOutcomesAndPulls(t *testing.T) {
	t.Parallel()
	store := seeded(t, map[string]map[string]Doc{"customers": {
		"c1": {Version: 3, Doc: raw(`{"name":"Acme","city":"Bern"}`)},
		"c2": {Version: 2, Doc: raw(`{"name":"Beta"}`)},
	}})
	var conflicts, rejects []string
	c := newTestClient(t, Config{Store: store,
		OnConflict: func(m engine.Mutation, o engine.Outcome) { conflicts = append(conflicts, m.DocID) },
		OnReject:   func(m engine.Mutation, o engine.Outcome) { rejects = append(rejects, o.Error.Code) },
	})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Create("customer_notes", "n1", map[string]any{"text": "hello"}))
	must(c.Update("customers", "c1", map[string]any{"city": "Basel"}))
	must(c.Update("customers", "c2", map[string]any{"name": "Bad"}))
	must(c.Update("customers", "c1", map[string]any{"phone": "123"}))

	batch, err := c.nextBatch()
	must(err)
	results := []engine.Outcome{
		{MutationID: batch[0].ID, Status: engine.StatusApplied, Version: 1},
		{MutationID: batch[1].ID, Status: engine.StatusMerged, Version: 5, Doc: raw(`{"name":"Acme","city":"Zug"}`),
			Conflicts: []engine.Conflict{{Field: "city", Yours: raw(`"Basel"`), Kept: raw(`"Zug"`), KeptVersion: 4}}},
		{MutationID: batch[2].ID, Status: engine.StatusRejected, Error: &engine.ErrorBody{Code: "schema_violation"}},
		{MutationID: batch[3].ID, Status: engine.StatusApplied, Version: 6},
	}
	var rep PushReport
	notify, err := c.acknowledge(batch, results, &rep)
	must(err)
	for _, f := range notify {
		f()
	}
	if rep.Sent != 4 || rep.Applied != 2 || rep.Merged != 1 || rep.Rejected != 1 || len(rep.Conflicts) != 1 {
		t.Errorf("report = %+v", rep)
	}
	if !reflect.DeepEqual(conflicts, []string{"c1"}) || !reflect.DeepEqual(rejects, []string{"schema_violation"}) {
		t.Errorf("callbacks: conflicts %v, rejects %v", conflicts, rejects)
	}
	if c.Pending() != 0 {
		t.Errorf("Pending = %d after every mutation was answered", c.Pending())
	}

	// Applied changes stay visible before the pull brings them; the merged
	// document replaced the server copy; the rejected edit is gone.
	n1, ok := c.Get("customer_notes", "n1")
	if !ok {
		t.Fatal("an applied create vanished before the pull")
	}
	assertJSON(t, n1, `{"text":"hello"}`)
	c1, _ := c.Get("customers", "c1")
	assertJSON(t, c1, `{"name":"Acme","city":"Zug","phone":"123"}`)
	c2, _ := c.Get("customers", "c2")
	assertJSON(t, c2, `{"name":"Beta"}`)
	if v := c.ServerState()["customers"]["c1"].Version; v != 5 {
		t.Errorf("server copy of c1 is version %d; want the merged 5", v)
	}

	// The next edits start from the acknowledged versions.
	must(c.Update("customer_notes", "n1", map[string]any{"text": "hello again"}))
	must(c.Update("customers", "c1", map[string]any{"city": "Zürich"}))
	must(c.Delete("customers", "c2"))
	var bases []int64
	for _, m := range c.queued() {
		bases = append(bases, m.BaseVersion)
	}
	if !reflect.DeepEqual(bases, []int64{1, 6, 2}) {
		t.Errorf("base versions = %v; want [1 6 2]", bases)
	}

	// A pull page that brings n1 retires its acknowledged create; the
	// pending update still shows on top. An evict removes c2 (its pending
	// delete will be answered by the server).
	must(c.applyPage(&pullReply{Checkpoint: "cp1", HasMore: true, Changes: []pullChange{
		{Op: "put", Collection: "customer_notes", ID: "n1", Version: 1, Doc: raw(`{"text":"hello","status":"x"}`)},
		{Op: "evict", Collection: "customers", ID: "c2"},
	}}))
	n1, _ = c.Get("customer_notes", "n1")
	assertJSON(t, n1, `{"text":"hello again","status":"x"}`)
	if _, ok := c.Get("customers", "c2"); ok {
		t.Error("evicted c2 still visible")
	}
	c.mu.Lock()
	acked := len(c.state.Acked)
	c.mu.Unlock()
	if acked != 1 {
		t.Errorf("%d acknowledged mutations kept; want 1 (c1 at version 6)", acked)
	}
	// The last page ends the overlay: everything acknowledged is pulled.
	must(c.applyPage(&pullReply{Checkpoint: "cp2", Changes: []pullChange{
		{Op: "put", Collection: "customers", ID: "c1", Version: 6, Doc: raw(`{"name":"Acme","city":"Zug","phone":"123"}`)},
	}}))
	if c.Checkpoint() != "cp2" {
		t.Errorf("checkpoint = %q", c.Checkpoint())
	}
	c1, _ = c.Get("customers", "c1")
	assertJSON(t, c1, `{"name":"Acme","city":"Zürich","phone":"123"}`)

	// A page with an op this client does not know is not applied at all.
	if err := c.applyPage(&pullReply{Checkpoint: "cp3", Changes: []pullChange{{Op: "move", Collection: "x", ID: "y"}}}); err == nil {
		t.Error("unknown op accepted")
	}
	if c.Checkpoint() != "cp2" {
		t.Errorf("checkpoint moved past a page that was not applied: %q", c.Checkpoint())
	}
}

// flakyServer answers with the given statuses in turn, then with ok.
func flakyServer(t *testing.T, statuses []int, retryAfter map[int]string, ok string) (*httptest.Server, *[]*http.Request) {
	t.Helper()
	var mu sync.Mutex
	var reqs []*http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n := len(reqs)
		reqs = append(reqs, r.Clone(context.Background()))
		mu.Unlock()
		if n < len(statuses) {
			if ra := retryAfter[n]; ra != "" {
				w.Header().Set("Retry-After", ra)
			}
			w.WriteHeader(statuses[n])
			fmt.Fprintf(w, `{"error":{"code":"unavailable","message":"try later"}}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, ok)
	}))
	t.Cleanup(srv.Close)
	return srv, &reqs
}

func TestBackoffGrowsAndHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	srv, reqs := flakyServer(t, []int{503, 500, 503, 429}, map[int]string{3: "7"},
		`{"changes":[{"op":"put","collection":"customers","id":"c1","version":2,"doc":{"name":"A"}}],"checkpoint":"cp1","has_more":false,"new_field":1}`)
	var s sleeps
	c := newTestClient(t, Config{BaseURL: srv.URL + "/", Token: StaticToken("tok"), Sleep: s.sleep, Jitter: -1, PageSize: 50})

	rep, err := c.Pull(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 7 * time.Second}
	if got := s.got(); !reflect.DeepEqual(got, want) {
		t.Errorf("waits = %v; want %v", got, want)
	}
	if rep.Retries != 4 || rep.Pages != 1 || rep.Changes != 1 || c.Checkpoint() != "cp1" {
		t.Errorf("report %+v, checkpoint %q", rep, c.Checkpoint())
	}
	last := (*reqs)[len(*reqs)-1]
	if last.URL.Path != "/v1/sync/pull" || last.URL.Query().Get("limit") != "50" || last.Header.Get("Authorization") != "Bearer tok" {
		t.Errorf("request %s %s, auth %q", last.Method, last.URL, last.Header.Get("Authorization"))
	}

	// Jitter shortens each wait by at most its fraction; the cap holds
	// however many retries came before.
	j := newTestClient(t, Config{Jitter: 0.5})
	for n := range 100 {
		d := j.backoff(n, 0)
		full := min(100*time.Millisecond<<min(n, 20), 10*time.Second)
		if d > full || d < full/2 {
			t.Fatalf("retry %d waits %v; want within [%v, %v]", n, d, full/2, full)
		}
	}
	if d := j.backoff(0, time.Minute); d != time.Minute {
		t.Errorf("Retry-After of a minute gave a wait of %v", d)
	}
}

func TestRetriesEnd(t *testing.T) {
	t.Parallel()
	srv, _ := flakyServer(t, []int{503, 503, 503, 503, 503, 503}, nil, `{"results":[]}`)
	var s sleeps
	c := newTestClient(t, Config{BaseURL: srv.URL, Sleep: s.sleep, MaxRetries: 2})
	if err := c.Create("customer_notes", "n1", map[string]any{"text": "a"}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Push(context.Background())
	var re *RequestError
	if !errors.As(err, &re) || re.Status != 503 || re.Body.Code != "unavailable" {
		t.Fatalf("push = %v; want the last 503 as a *RequestError", err)
	}
	if len(s.got()) != 2 || c.Pending() != 1 {
		t.Errorf("%d waits, %d pending; want 2 and 1", len(s.got()), c.Pending())
	}

	// A cancelled context ends the retries at the next wait.
	ctx, cancel := context.WithCancel(context.Background())
	c2 := newTestClient(t, Config{BaseURL: srv.URL, Sleep: func(context.Context, time.Duration) error {
		cancel()
		return ctx.Err()
	}})
	if _, err := c2.Pull(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("pull with a cancelled context = %v", err)
	}
}

func TestRequestErrorDropsNothing(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		fmt.Fprint(w, `{"error":{"code":"too_many_mutations","message":"a push may carry at most 1 mutations, got 2","pointer":"/mutations","request_id":"r1"}}`)
	}))
	t.Cleanup(srv.Close)
	var s sleeps
	c := newTestClient(t, Config{BaseURL: srv.URL, Sleep: s.sleep})
	for _, id := range []string{"n1", "n2"} {
		if err := c.Create("customer_notes", id, map[string]any{"text": id}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.Push(context.Background())
	var re *RequestError
	if !errors.As(err, &re) {
		t.Fatalf("push = %v; want a *RequestError", err)
	}
	if re.Status != 413 || re.Body.Code != engine.CodeTooManyMutations || re.Body.Pointer != "/mutations" {
		t.Errorf("error = %+v", re)
	}
	if c.Pending() != 2 || len(s.got()) != 0 {
		t.Errorf("after a 413: %d pending, %d retries; want 2 and none", c.Pending(), len(s.got()))
	}
	if _, ok := c.Get("customer_notes", "n2"); !ok {
		t.Error("a refused push hid a pending create")
	}
}

func TestFaultTransport(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(srv.Close)
	get := func(rt http.RoundTripper) error {
		resp, err := (&http.Client{Transport: rt}).Get(srv.URL)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}

	drop := NewFaultTransport(nil, 1, 1, 0)
	if err := get(drop); !errors.Is(err, ErrDropped) {
		t.Errorf("dropped request: %v", err)
	}
	if hits.Load() != 0 || drop.Counts() != (FaultCounts{Requests: 1, Dropped: 1}) {
		t.Errorf("dropped request reached the server (%d hits) or miscounted: %+v", hits.Load(), drop.Counts())
	}

	lose := NewFaultTransport(nil, 1, 0, 1)
	if err := get(lose); !errors.Is(err, ErrReplyLost) {
		t.Errorf("lost reply: %v", err)
	}
	if hits.Load() != 1 || lose.Counts() != (FaultCounts{Requests: 1, Lost: 1}) {
		t.Errorf("lost reply: %d hits, %+v; want the server served it", hits.Load(), lose.Counts())
	}

	// Same seed, same faults: a failing run can be replayed.
	pattern := func(seed uint64) string {
		ft := NewFaultTransport(nil, seed, 0.3, 0.3)
		var b []byte
		for range 40 {
			switch err := get(ft); {
			case errors.Is(err, ErrDropped):
				b = append(b, 'd')
			case errors.Is(err, ErrReplyLost):
				b = append(b, 'l')
			case err == nil:
				b = append(b, '.')
			default:
				t.Fatal(err)
			}
		}
		return string(b)
	}
	p1, p2 := pattern(42), pattern(42)
	if p1 != p2 {
		t.Errorf("seed 42 gave %s then %s", p1, p2)
	}
	for _, r := range "dl." {
		if !strings.ContainsRune(p1, r) {
			t.Errorf("40 requests at 30%%/30%% never gave %q: %s", r, p1)
		}
	}
}

// TestPullReset: a page marked reset replaces every server copy with what
// the pull that starts there delivers, keeps the queue, and is saved
// atomically with its page.
func TestPullReset(t *testing.T) {
	t.Parallel()
	pages := []string{
		`{"changes":[{"op":"put","collection":"customer_notes","id":"n-new","version":1,"doc":{"customer_id":"c-2","text":"new"}}],"checkpoint":"cp1","has_more":true,"reset":true}`,
		`{"changes":[{"op":"put","collection":"customers","id":"c-2","version":3,"doc":{"name":"Beta"}}],"checkpoint":"cp2","has_more":false}`,
	}
	var n atomic.Int32
	var seen []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.Query().Get("checkpoint"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(pages[min(int(n.Add(1))-1, len(pages)-1)]))
	}))
	t.Cleanup(srv.Close)
	store := seeded(t, map[string]map[string]Doc{
		"customer_notes": {"n-old": {Version: 2, Doc: raw(`{"customer_id":"c-1","text":"old"}`)}},
		"customers":      {"c-1": {Version: 1, Doc: raw(`{"name":"Alpha"}`)}},
	})
	c := newTestClient(t, Config{BaseURL: srv.URL, Store: store, Token: StaticToken("t")})
	if err := c.Create("customer_notes", "n-mine", map[string]any{"customer_id": "c-2", "text": "queued"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Pull(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(seen, []string{"cp0", "cp1"}) {
		t.Errorf("checkpoints sent = %v, want cp0 then cp1", seen)
	}
	st := c.ServerState()
	if _, ok := st["customer_notes"]["n-old"]; ok {
		t.Error("a copy the reset pull did not deliver survived")
	}
	if _, ok := st["customers"]["c-1"]; ok {
		t.Error("a customer the reset pull did not deliver survived")
	}
	if st["customer_notes"]["n-new"].Version != 1 || st["customers"]["c-2"].Version != 3 {
		t.Errorf("server copies after the reset = %v", st)
	}
	if c.Pending() != 1 {
		t.Errorf("pending = %d, want the queued create kept", c.Pending())
	}
	if _, ok := c.Docs("customer_notes")["n-mine"]; !ok {
		t.Error("the queued create is no longer visible")
	}
}
