package app_test

// Helpers of the access-control system tests (authz_test.go,
// reassign_test.go): the store a scenario runs on, users and teams through
// the admin API, raw pushes and feed drains, and Go client devices that
// record every outcome.

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/client"
	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/internal/apptest"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// accStore opens the store of one scenario: the serveConfig tweak that
// points a test server at it.
type accStore func(t testing.TB) func(*serveConfig)

// onSQLite keeps the server's default store, a SQLite file in its data
// directory.
func onSQLite(testing.TB) func(*serveConfig) { return nil }

// onMongoDB gives the scenario a database of its own on the FerretDB the
// test binary shares.
func onMongoDB(t testing.TB) func(*serveConfig) {
	uri := sharedFerret(t)
	db := freshMongoDatabase()
	// FerretDB answers from an in-process SQLite on a machine the whole
	// suite shares: a command may take as long as a request (the test's
	// patience), so a busy machine slows the test down rather than failing
	// it with 503.
	timeout := apptest.Patience(t)
	return func(c *serveConfig) { c.MongoURI, c.MongoDatabase, c.MongoTimeout = uri, db, timeout }
}

// withoutWorkflows runs a scenario on store with the field-sales workflow
// off (plain sync: no routing of orders or follow-ups).
func withoutWorkflows(store accStore) accStore {
	return func(t testing.TB) func(*serveConfig) {
		tweak := store(t)
		return func(c *serveConfig) {
			c.Workflows = false
			if tweak != nil {
				tweak(c)
			}
		}
	}
}

// accWorld is a running server and the helpers a scenario drives it with.
type accWorld struct {
	t  testing.TB
	ts *testServer
}

func newAccWorld(t testing.TB, store accStore) *accWorld {
	t.Helper()
	tweak := store(t)
	ts := startServer(t, "", func(c *serveConfig) {
		fastSignIn(c)
		if tweak != nil {
			tweak(c)
		}
	})
	return &accWorld{t: t, ts: ts}
}

// operator is an admin token of org minted by the operator (no session, a
// user the directory does not hold).
func (w *accWorld) operator(org string) string {
	return w.ts.token(w.t, org, "operator", "admin")
}

// admin calls the admin API of org as the operator and fails the test
// unless the status is want; it returns the reply body.
func (w *accWorld) admin(org, method, path string, body any, want int) []byte {
	w.t.Helper()
	var b []byte
	if body != nil {
		b = mustJSON(w.t, body)
	}
	st, raw := doRaw(w.t, method, w.ts.URL+"/v1/admin"+path, w.operator(org), b)
	if st != want {
		w.t.Fatalf("%s: %s /v1/admin%s: %d %s, want %d", org, method, path, st, raw, want)
	}
	return raw
}

func (w *accWorld) addTeam(org, id string) {
	w.t.Helper()
	w.admin(org, "POST", "/teams", map[string]any{"id": id, "name": "Team " + id}, 201)
}

// accUser is a user to create through the admin API.
type accUser struct {
	id           string
	roles        []string
	teams, leads []string
	password     bool // give them testPassword, to sign in with
}

func (w *accWorld) addUser(org string, u accUser) {
	w.t.Helper()
	body := map[string]any{"id": u.id, "email": u.id + "@" + org + ".example", "name": u.id, "roles": u.roles,
		"teams": u.teams, "leads": u.leads}
	if u.password {
		body["password"] = testPassword
	}
	w.admin(org, "POST", "/users", body, 201)
}

// token mints an access token for user of org; a user the directory holds
// gets the directory's roles whatever the token says.
func (w *accWorld) token(org, user string, roles ...string) string {
	return w.ts.token(w.t, org, user, roles...)
}

// push sends mutations with tok from device and returns the outcomes,
// failing the test on anything but 200. A 503 (a busy machine's store did
// not answer in time) is sent again while the test's patience lasts, as a
// device would: the mutation ids make the retry answer from what an earlier
// attempt stored, if it stored anything.
func (w *accWorld) push(tok, device string, muts []map[string]any) []engine.Outcome {
	w.t.Helper()
	var r pushReply
	body := mustJSON(w.t, push(device, muts...))
	give := time.Now().Add(apptest.Patience(w.t))
	st, raw := doRaw(w.t, "POST", w.ts.URL+"/v1/sync/push", tok, body)
	for st == http.StatusServiceUnavailable && time.Now().Before(give) {
		w.t.Logf("push from %s: %d %s; again", device, st, raw)
		st, raw = doRaw(w.t, "POST", w.ts.URL+"/v1/sync/push", tok, body)
	}
	if st != 200 {
		w.t.Fatalf("push from %s: %d %s", device, st, raw)
	}
	if err := json.Unmarshal(raw, &r); err != nil || len(r.Results) != len(muts) {
		w.t.Fatalf("push from %s: %d results for %d mutations (%v): %s", device, len(r.Results), len(muts), err, raw)
	}
	return r.Results
}

// mustApply pushes mutations that must all be applied.
func (w *accWorld) mustApply(tok, device string, muts []map[string]any) {
	w.t.Helper()
	// Batches of 100, as devices push: a busy machine's FerretDB answers a
	// smaller batch within a request's budget.
	for start := 0; start < len(muts); start += 100 {
		batch := muts[start:min(start+100, len(muts))]
		for i, o := range w.push(tok, device, batch) {
			if o.Status != engine.StatusApplied {
				w.t.Fatalf("setup mutation %s %s/%v: %+v", batch[i]["op"], batch[i]["collection"], batch[i]["id"], o)
			}
		}
	}
}

// accChange is the last change of one document in a feed.
type accChange struct {
	Op      string          `json:"op"`
	Coll    string          `json:"collection"`
	ID      string          `json:"id"`
	Version int64           `json:"version"`
	Doc     json.RawMessage `json:"doc"`
}

type accPage struct {
	Changes    []accChange `json:"changes"`
	Checkpoint string      `json:"checkpoint"`
	HasMore    bool        `json:"has_more"`
	Reset      bool        `json:"reset"`
}

// drain pulls tok's feed from cp to its end and returns the last change of
// every document ("collection/id"), the new checkpoint, and whether the
// first page was a reset.
func (w *accWorld) drain(tok, cp string) (map[string]accChange, string, bool) {
	w.t.Helper()
	out := map[string]accChange{}
	first, reset := true, false
	for {
		var p accPage
		u := w.ts.URL + "/v1/sync/pull?limit=1000&checkpoint=" + url.QueryEscape(cp)
		if st, raw := doRaw(w.t, "GET", u, tok, nil); st != 200 {
			w.t.Fatalf("pull: %d %s", st, raw)
		} else if err := json.Unmarshal(raw, &p); err != nil {
			w.t.Fatal(err)
		}
		if first {
			reset, first = p.Reset, false
		}
		for _, c := range p.Changes {
			out[c.Coll+"/"+c.ID] = c
		}
		cp = p.Checkpoint
		if !p.HasMore {
			return out, cp, reset
		}
	}
}

// visible is what a first pull of tok delivers: the live documents by
// "collection/id".
func (w *accWorld) visible(tok string) map[string]json.RawMessage {
	w.t.Helper()
	all, _, _ := w.drain(tok, "")
	out := map[string]json.RawMessage{}
	for k, c := range all {
		if c.Op == engine.ChangePut {
			out[k] = c.Doc
		}
	}
	return out
}

// Mutations as a device sends them.

func mCreate(mid, coll, id string, doc map[string]any) map[string]any {
	return map[string]any{"mutation_id": mid, "collection": coll, "id": id, "op": "create", "doc": doc}
}

func mUpdate(mid, coll, id string, base int64, fields map[string]any) map[string]any {
	return map[string]any{"mutation_id": mid, "collection": coll, "id": id, "op": "update", "base_version": base, "fields": fields}
}

func mDelete(mid, coll, id string, base int64) map[string]any {
	return map[string]any{"mutation_id": mid, "collection": coll, "id": id, "op": "delete", "base_version": base}
}

// accDoc is a valid document of coll hanging off customer (for the
// collections that do), with marker in a text field, so that a document
// seen anywhere tells where it came from.
func accDoc(coll, customer, marker string) map[string]any {
	switch coll {
	case fieldsales.CollCustomers:
		return map[string]any{"name": marker}
	case fieldsales.CollVisitPlans:
		return map[string]any{"customer_id": customer, "planned_start": "2026-12-01T09:00:00Z", "purpose": marker, "status": "planned"}
	case fieldsales.CollVisitLogs:
		// Checked out: a rep has one visit in progress at a time.
		return map[string]any{"customer_id": customer, "check_in": map[string]any{"at": "2026-12-01T09:05:00Z", "lat": 48.1, "lng": 11.6},
			"check_out": map[string]any{"at": "2026-12-01T09:50:00Z"}, "notes": marker}
	case fieldsales.CollOrders:
		return map[string]any{"customer_id": customer, "status": "draft", "notes": marker,
			"lines": []map[string]any{{"product_id": "p-1", "quantity": 2}}}
	case fieldsales.CollCustomerNotes:
		return map[string]any{"customer_id": customer, "text": marker, "created_at": "2026-12-01T09:10:00Z"}
	case fieldsales.CollFollowUps:
		doc := map[string]any{"activity": "delivery_status_query", "description": marker}
		if customer != "" {
			doc["customer_id"] = customer
		}
		return doc
	case fieldsales.CollProducts:
		return map[string]any{"sku": "SKU-" + marker, "name": marker}
	case fieldsales.CollPriceLists:
		return map[string]any{"name": marker, "currency": "EUR", "prices": map[string]any{"p-1": "10"}}
	}
	panic("accDoc: unknown collection " + coll)
}

// accTextField is a field of coll any writer may change (for the
// reference collections: any admin).
var accTextField = map[string]string{
	fieldsales.CollCustomers: "notes", fieldsales.CollVisitPlans: "purpose", fieldsales.CollVisitLogs: "notes",
	fieldsales.CollOrders: "notes", fieldsales.CollCustomerNotes: "text", fieldsales.CollFollowUps: "description",
	fieldsales.CollProducts: "name", fieldsales.CollPriceLists: "name",
}

// Devices: the Go reference client.

// accOutcomes records what every device's callbacks reported, by mutation
// id.
type accOutcomes struct {
	mu      sync.Mutex
	outcome map[string]accOutcome // OnOutcome
	reject  map[string]accOutcome // OnReject
	dups    []string
}

type accOutcome struct {
	device string
	m      engine.Mutation
	o      engine.Outcome
}

func newAccOutcomes() *accOutcomes {
	return &accOutcomes{outcome: map[string]accOutcome{}, reject: map[string]accOutcome{}}
}

func (r *accOutcomes) add(into map[string]accOutcome, device string, m engine.Mutation, o engine.Outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := into[m.ID]; dup {
		r.dups = append(r.dups, m.ID)
	}
	into[m.ID] = accOutcome{device: device, m: m, o: o}
}

// accDevice is a phone (or an admin console) running the Go client.
type accDevice struct {
	id string
	c  *client.Client
}

// device opens a client for user's token; file keeps its state in a file
// instead of memory. Every outcome and rejection goes to rec.
func (w *accWorld) device(id, tok string, file bool, rec *accOutcomes) *accDevice {
	w.t.Helper()
	var store client.LocalStore = client.NewMemoryStore()
	if file {
		store = client.NewFileStore(filepath.Join(w.t.TempDir(), "state.json"))
	}
	c, err := client.New(client.Config{
		BaseURL:          w.ts.URL,
		Token:            client.StaticToken(tok),
		DeviceID:         id,
		Store:            store,
		HTTPClient:       &http.Client{Timeout: 30 * time.Second},
		Sleep:            func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
		MaxRetries:       2,
		MutationIDPrefix: id,
		OnOutcome:        func(m engine.Mutation, o engine.Outcome) { rec.add(rec.outcome, id, m, o) },
		OnReject:         func(m engine.Mutation, o engine.Outcome) { rec.add(rec.reject, id, m, o) },
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return &accDevice{id: id, c: c}
}

// sync pushes and pulls, failing the test on any error.
func (d *accDevice) sync(t testing.TB) client.SyncReport {
	t.Helper()
	rep, err := d.c.Sync(t.Context())
	if err != nil {
		t.Fatalf("%s: sync: %v", d.id, err)
	}
	return rep
}

// must fails the test on a local edit's error.
func must(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// accIDs lists the keys of a map, sorted, for messages.
func accIDs[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
