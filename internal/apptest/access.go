package apptest

// The world of a system test scenario (first written for the access-control
// tests of app/accesstest, now shared by most system test packages): the
// store a scenario runs on, users and teams through the admin API, raw
// pushes and feed drains, and Go client devices that record every outcome.

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

	"github.com/fieldsync/fieldsync/app"
	"github.com/fieldsync/fieldsync/client"
	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/internal/patience"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// Backend opens the store of one scenario: the app.Config tweak that
// points a test server at it.
type Backend func(t testing.TB) func(*app.Config)

// OnSQLite keeps the server's default store, a SQLite file in its data
// directory.
func OnSQLite(testing.TB) func(*app.Config) { return nil }

// OnMongoDB gives the scenario a database of its own on the FerretDB the
// test binary shares (Ferret).
func OnMongoDB(t testing.TB) func(*app.Config) {
	uri := Ferret(t)
	db := FreshMongoDatabase()
	// FerretDB answers from an in-process SQLite on a machine the whole
	// suite shares: a command may take as long as a request (the test's
	// patience), so a busy machine slows the test down rather than failing
	// it with 503.
	timeout := patience.Of(t)
	return func(c *app.Config) { c.MongoURI, c.MongoDatabase, c.MongoTimeout = uri, db, timeout }
}

// WithoutWorkflows runs a scenario on store with the field-sales workflow
// off (plain sync: no routing of orders or follow-ups).
func WithoutWorkflows(store Backend) Backend {
	return func(t testing.TB) func(*app.Config) {
		tweak := store(t)
		return func(c *app.Config) {
			c.Workflows = false
			if tweak != nil {
				tweak(c)
			}
		}
	}
}

// World is a running server and the helpers a scenario drives it with.
type World struct {
	T      testing.TB
	Server *Server
}

// NewWorld starts a server on store (sign-in made cheap, FastSignIn) for
// the scenario of t.
func NewWorld(t testing.TB, store Backend) *World {
	t.Helper()
	tweak := store(t)
	ts := Start(t, "", func(c *app.Config) {
		FastSignIn(c)
		if tweak != nil {
			tweak(c)
		}
	})
	return &World{T: t, Server: ts}
}

// Operator is an admin token of org minted by the operator (no session, a
// user the directory does not hold).
func (w *World) Operator(org string) string {
	return w.Server.Token(w.T, org, "operator", "admin")
}

// Admin calls the admin API of org as the operator and fails the test
// unless the status is want; it returns the reply body.
func (w *World) Admin(org, method, path string, body any, want int) []byte {
	w.T.Helper()
	var b []byte
	if body != nil {
		b = MustJSON(w.T, body)
	}
	st, raw := DoRaw(w.T, method, w.Server.URL+"/v1/admin"+path, w.Operator(org), b)
	if st != want {
		w.T.Fatalf("%s: %s /v1/admin%s: %d %s, want %d", org, method, path, st, raw, want)
	}
	return raw
}

// AddTeam creates team id of org.
func (w *World) AddTeam(org, id string) {
	w.T.Helper()
	w.Admin(org, "POST", "/teams", map[string]any{"id": id, "name": "Team " + id}, 201)
}

// User is a user to create through the admin API.
type User struct {
	ID           string
	Roles        []string
	Teams, Leads []string
	Password     bool // give them Password, to sign in with
}

// AddUser creates u in org.
func (w *World) AddUser(org string, u User) {
	w.T.Helper()
	body := map[string]any{"id": u.ID, "email": u.ID + "@" + org + ".example", "name": u.ID, "roles": u.Roles,
		"teams": u.Teams, "leads": u.Leads}
	if u.Password {
		body["password"] = Password
	}
	w.Admin(org, "POST", "/users", body, 201)
}

// Token mints an access token for user of org; a user the directory holds
// gets the directory's roles whatever the token says.
func (w *World) Token(org, user string, roles ...string) string {
	return w.Server.Token(w.T, org, user, roles...)
}

// Push sends mutations with tok from device and returns the outcomes,
// failing the test on anything but 200. A 503 (a busy machine's store did
// not answer in time) is sent again while the test's patience lasts, as a
// device would: the mutation ids make the retry answer from what an earlier
// attempt stored, if it stored anything.
func (w *World) Push(tok, device string, muts []map[string]any) []engine.Outcome {
	w.T.Helper()
	var r PushReply
	body := MustJSON(w.T, Push(device, muts...))
	give := time.Now().Add(patience.Of(w.T))
	st, raw := DoRaw(w.T, "POST", w.Server.URL+"/v1/sync/push", tok, body)
	for st == http.StatusServiceUnavailable && time.Now().Before(give) {
		w.T.Logf("push from %s: %d %s; again", device, st, raw)
		st, raw = DoRaw(w.T, "POST", w.Server.URL+"/v1/sync/push", tok, body)
	}
	if st != 200 {
		w.T.Fatalf("push from %s: %d %s", device, st, raw)
	}
	if err := json.Unmarshal(raw, &r); err != nil || len(r.Results) != len(muts) {
		w.T.Fatalf("push from %s: %d results for %d mutations (%v): %s", device, len(r.Results), len(muts), err, raw)
	}
	return r.Results
}

// MustApply pushes mutations that must all be applied.
func (w *World) MustApply(tok, device string, muts []map[string]any) {
	w.T.Helper()
	// Batches of 100, as devices push: a busy machine's FerretDB answers a
	// smaller batch within a request's budget.
	for start := 0; start < len(muts); start += 100 {
		batch := muts[start:min(start+100, len(muts))]
		for i, o := range w.Push(tok, device, batch) {
			if o.Status != engine.StatusApplied {
				w.T.Fatalf("setup mutation %s %s/%v: %+v", batch[i]["op"], batch[i]["collection"], batch[i]["id"], o)
			}
		}
	}
}

// Change is the last change of one document in a feed.
type Change struct {
	Op      string          `json:"op"`
	Coll    string          `json:"collection"`
	ID      string          `json:"id"`
	Version int64           `json:"version"`
	Doc     json.RawMessage `json:"doc"`
}

type page struct {
	Changes    []Change `json:"changes"`
	Checkpoint string   `json:"checkpoint"`
	HasMore    bool     `json:"has_more"`
	Reset      bool     `json:"reset"`
}

// Drain pulls tok's feed from cp to its end and returns the last change of
// every document ("collection/id"), the new checkpoint, and whether the
// first page was a reset.
func (w *World) Drain(tok, cp string) (map[string]Change, string, bool) {
	w.T.Helper()
	out := map[string]Change{}
	first, reset := true, false
	for {
		var p page
		u := w.Server.URL + "/v1/sync/pull?limit=1000&checkpoint=" + url.QueryEscape(cp)
		if st, raw := DoRaw(w.T, "GET", u, tok, nil); st != 200 {
			w.T.Fatalf("pull: %d %s", st, raw)
		} else if err := json.Unmarshal(raw, &p); err != nil {
			w.T.Fatal(err)
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

// Visible is what a first pull of tok delivers: the live documents by
// "collection/id".
func (w *World) Visible(tok string) map[string]json.RawMessage {
	w.T.Helper()
	all, _, _ := w.Drain(tok, "")
	out := map[string]json.RawMessage{}
	for k, c := range all {
		if c.Op == engine.ChangePut {
			out[k] = c.Doc
		}
	}
	return out
}

// Mutations as a device sends them.

// Create is the create mutation mid of coll/id.
func Create(mid, coll, id string, doc map[string]any) map[string]any {
	return map[string]any{"mutation_id": mid, "collection": coll, "id": id, "op": "create", "doc": doc}
}

// Update is the update mutation mid of coll/id from version base.
func Update(mid, coll, id string, base int64, fields map[string]any) map[string]any {
	return map[string]any{"mutation_id": mid, "collection": coll, "id": id, "op": "update", "base_version": base, "fields": fields}
}

// Delete is the delete mutation mid of coll/id at version base.
func Delete(mid, coll, id string, base int64) map[string]any {
	return map[string]any{"mutation_id": mid, "collection": coll, "id": id, "op": "delete", "base_version": base}
}

// Doc is a valid document of coll hanging off customer (for the
// collections that do), with marker in a text field, so that a document
// seen anywhere tells where it came from.
func Doc(coll, customer, marker string) map[string]any {
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
	panic("Doc: unknown collection " + coll)
}

// TextField is a field of coll any writer may change (for the
// reference collections: any admin).
var TextField = map[string]string{
	fieldsales.CollCustomers: "notes", fieldsales.CollVisitPlans: "purpose", fieldsales.CollVisitLogs: "notes",
	fieldsales.CollOrders: "notes", fieldsales.CollCustomerNotes: "text", fieldsales.CollFollowUps: "description",
	fieldsales.CollProducts: "name", fieldsales.CollPriceLists: "name",
}

// Devices: the Go reference client.

// Outcomes records what every device's callbacks reported, by mutation
// id. Hold Mu to read it.
type Outcomes struct {
	Mu      sync.Mutex
	Outcome map[string]Recorded // OnOutcome
	Reject  map[string]Recorded // OnReject
	Dups    []string            // mutation ids reported twice
}

// Recorded is one outcome a device was told of.
type Recorded struct {
	Device string
	M      engine.Mutation
	O      engine.Outcome
}

// NewOutcomes is an empty record.
func NewOutcomes() *Outcomes {
	return &Outcomes{Outcome: map[string]Recorded{}, Reject: map[string]Recorded{}}
}

func (r *Outcomes) add(into map[string]Recorded, device string, m engine.Mutation, o engine.Outcome) {
	r.Mu.Lock()
	defer r.Mu.Unlock()
	if _, dup := into[m.ID]; dup {
		r.Dups = append(r.Dups, m.ID)
	}
	into[m.ID] = Recorded{Device: device, M: m, O: o}
}

// Device is a phone (or an admin console) running the Go client.
type Device struct {
	ID string
	C  *client.Client
}

// Device opens a client for user's token; file keeps its state in a file
// instead of memory. Every outcome and rejection goes to rec.
func (w *World) Device(id, tok string, file bool, rec *Outcomes) *Device {
	w.T.Helper()
	var store client.LocalStore = client.NewMemoryStore()
	if file {
		store = client.NewFileStore(filepath.Join(w.T.TempDir(), "state.json"))
	}
	c, err := client.New(client.Config{
		BaseURL:          w.Server.URL,
		Token:            client.StaticToken(tok),
		DeviceID:         id,
		Store:            store,
		HTTPClient:       &http.Client{Timeout: patience.Of(w.T)},
		Sleep:            func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
		MaxRetries:       2,
		MutationIDPrefix: id,
		OnOutcome:        func(m engine.Mutation, o engine.Outcome) { rec.add(rec.Outcome, id, m, o) },
		OnReject:         func(m engine.Mutation, o engine.Outcome) { rec.add(rec.Reject, id, m, o) },
	})
	if err != nil {
		w.T.Fatal(err)
	}
	return &Device{ID: id, C: c}
}

// Sync pushes and pulls, failing the test on any error.
func (d *Device) Sync(t testing.TB) client.SyncReport {
	t.Helper()
	rep, err := d.C.Sync(t.Context())
	if err != nil {
		t.Fatalf("%s: sync: %v", d.ID, err)
	}
	return rep
}

// Must fails the test on a local edit's error.
func Must(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// SortedKeys lists the keys of a map, sorted, for messages.
func SortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
