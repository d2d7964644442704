package app_test

// The RxDB adapter with the real rxdb and rxdb-server's replicateServer
// (memory storage, under Node; adapters/js/rxdb): two devices of one rep,
// each behind a proxy that can take it offline or lose replies, and one of
// another rep, replicating live against the real server.

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestRxDBScenario(t *testing.T) {
	t.Parallel()
	needNode(t)
	testRxDBScenario(t, onBinary) // the real binary on SQLite
}

func TestRxDBScenarioMongoDB(t *testing.T) {
	t.Parallel()
	needNode(t)
	testRxDBScenario(t, onMongoDB)
}

type rxDevice struct {
	*jsDevice
	proxy *faultProxy // nil: direct
}

type rxConflict struct {
	ID     string         `json:"id"`
	Master map[string]any `json:"master"`
}

type rxDump struct {
	Collections map[string]map[string]map[string]any `json:"collections"`
	Conflicts   []rxConflict                         `json:"conflicts"`
	Errors      []string                             `json:"errors"`
	Restarts    int                                  `json:"restarts"`
}

func (d *rxDevice) sync() {
	d.t.Helper()
	if d.proxy != nil {
		d.proxy.SetOffline(false)
	}
	d.must(map[string]any{"cmd": "sync"}, nil)
}

func (d *rxDevice) upsert(coll, id string, fields map[string]any) {
	d.t.Helper()
	d.must(map[string]any{"cmd": "upsert", "collection": coll, "id": id, "fields": fields}, nil)
}

func (d *rxDevice) dump() rxDump {
	d.t.Helper()
	var r rxDump
	d.must(map[string]any{"cmd": "dump"}, &r)
	return r
}

func (d *rxDevice) holds(key string) bool {
	coll, id, _ := strings.Cut(key, "/")
	_, ok := d.dump().Collections[coll][id]
	return ok
}

// rxServerView is the server's view of tok's scope as RxDB documents.
func rxServerView(t *testing.T, w *accWorld, tok string) map[string]map[string]any {
	t.Helper()
	all, _, _ := w.Drain(tok, "")
	out := map[string]map[string]any{}
	for k, c := range all {
		if c.Op != "put" {
			continue
		}
		var doc map[string]any
		json.Unmarshal(c.Doc, &doc)
		doc["id"], doc["fs_version"] = c.ID, float64(c.Version)
		out[k] = doc
	}
	return out
}

func rxWantEqualServer(t *testing.T, w *accWorld, d *rxDevice, tok string) {
	t.Helper()
	got := map[string]map[string]any{}
	for coll, docs := range d.dump().Collections {
		for id, doc := range docs {
			got[coll+"/"+id] = doc
		}
	}
	wantSameAsServer(t, d.name, got, rxServerView(t, w, tok))
}

// rxConflictOn reports whether the device resolved a conflict on id to a
// server state with field == value.
func rxConflictOn(d rxDump, id, field string, value any) bool {
	for _, c := range d.Conflicts {
		if c.ID == id && reflect.DeepEqual(c.Master[field], value) {
			return true
		}
	}
	return false
}

func testRxDBScenario(t *testing.T, store accStore) {
	w := newAdapterWorld(t, store)
	tok1, tok2 := w.as("rep-1"), w.Token("acme", "rep-2", "rep")
	dev := func(name, tok string, proxied bool) *rxDevice {
		d := &rxDevice{}
		base := w.Server.URL
		if proxied {
			d.proxy = newFaultProxy(t, w.Server.URL)
			d.proxy.match = func(r *http.Request) bool { return r.Method == http.MethodPost }
			base = d.proxy.URL
		}
		d.jsDevice = startJSDevice(t, name, "rxdb/device.js", base, tok, name)
		return d
	}
	a1, a2, b1 := dev("a1", tok1, true), dev("a2", tok1, true), dev("b1", tok2, false)
	for _, d := range []*rxDevice{a1, a2, b1} {
		d.sync()
	}
	if !a1.holds("customers/c-1") || !a2.holds("customers/c-2") || !b1.holds("customers/c-3") || b1.holds("customers/c-1") {
		t.Fatal("the first sync did not bring each rep's customers (and only theirs)")
	}

	// Offline: notes on every phone, edits of different fields of c-1 on
	// rep-1's two phones.
	a1.proxy.SetOffline(true)
	a2.proxy.SetOffline(true)
	a1.upsert("customer_notes", "n-1", map[string]any{"customer_id": "c-1", "text": "Needs 40 motors in March", "created_at": "2026-12-02T10:00:00Z"})
	a2.upsert("customer_notes", "n-2", map[string]any{"customer_id": "c-1", "text": "Compares with Brandt", "created_at": "2026-12-02T11:00:00Z", "tags": []string{"price"}})
	b1.upsert("customer_notes", "n-3", map[string]any{"customer_id": "c-3", "text": "New hall in spring", "created_at": "2026-12-02T12:00:00Z"})
	a1.upsert("customers", "c-1", map[string]any{"segment": "OEM"})
	a2.upsert("customers", "c-1", map[string]any{"notes": "Gate code 4711"})

	// a1 comes back, and the replies of its first two pushes are lost:
	// replicateServer retries them, and they are recognised.
	a1.proxy.lose.Store(2)
	a1.sync()
	if a1.proxy.lost.Load() != 2 {
		t.Fatalf("replies lost: %d, want 2", a1.proxy.lost.Load())
	}
	for _, d := range []*rxDevice{a2, b1, a1, a2} {
		d.sync()
	}
	wantOfflineWorkLanded(t, w, tok1)

	// A delete reaches the other phone.
	a2.must(map[string]any{"cmd": "delete", "collection": "customer_notes", "id": "n-1"}, nil)
	a2.sync()
	a1.sync()
	if a1.holds("customer_notes/n-1") {
		t.Fatal("a1 still holds n-1 after a2 deleted it")
	}

	// A same-field conflict: both phones change c-1's notes offline; the
	// first to sync wins, and the second's stock conflict handler takes the
	// server's state.
	a1.dump()
	a2.dump() // clear the conflict logs
	a1.proxy.SetOffline(true)
	a2.proxy.SetOffline(true)
	a1.upsert("customers", "c-1", map[string]any{"notes": "Ring at gate 2"})
	a2.upsert("customers", "c-1", map[string]any{"notes": "Ask for Ms Weber"})
	a1.sync()
	a2.sync()
	if d := a2.dump(); !rxConflictOn(d, "c-1", "notes", "Ring at gate 2") || d.Collections["customers"]["c-1"]["notes"] != "Ring at gate 2" {
		t.Fatalf("a2's conflicts: %+v and c-1 %v, want c-1 resolved to the server's notes", d.Conflicts, d.Collections["customers"]["c-1"])
	}
	a1.sync()

	// A refusal: a rep may not write credit_status. The app's conflict
	// handler sees the server's state, which the stock handler restores.
	a2.upsert("customers", "c-1", map[string]any{"credit_status": "ok"})
	a2.sync()
	d := a2.dump()
	if !rxConflictOn(d, "c-1", "credit_status", nil) {
		t.Fatalf("the refusal surfaced as %+v, want c-1's server state without credit_status", d.Conflicts)
	}
	if d.Collections["customers"]["c-1"]["credit_status"] != nil {
		t.Fatal("a2 kept the refused credit_status")
	}

	// A live update: a2 does not sync, its pull stream brings a1's edit.
	// The wait is the device call's patience: arrival is what is asserted
	// here; how fast is BenchmarkRxDBLiveUpdate's (docs/benchmarks.md).
	a1.upsert("customers", "c-1", map[string]any{"notes": "Live from a1"})
	var live struct {
		MS int `json:"ms"`
	}
	a2.must(map[string]any{"cmd": "waitFor", "collection": "customers", "id": "c-1", "field": "notes", "value": "Live from a1"}, &live)
	t.Logf("a1's edit reached a2 over the pull stream in %d ms (on a busy machine, and with RxDB's own work on both phones)", live.MS)

	// A submitted order: its follow-ups reach the rep's other phone.
	a1.upsert("orders", "o-1", map[string]any{"customer_id": "c-1", "currency": "EUR", "status": "draft",
		"lines": []map[string]any{{"product_id": "p-1", "quantity": 2, "discount_pct": 0}}})
	a1.sync()
	a1.upsert("orders", "o-1", map[string]any{"status": "submitted"})
	a1.sync()
	fus := w.followUpsOf("o-1")
	if len(fus) == 0 {
		t.Fatal("the submitted order has no follow-ups")
	}
	a2.sync()
	for id := range fus {
		if !a2.holds("follow_ups/" + id) {
			t.Errorf("a2 lacks follow-up %s of o-1", id)
		}
	}

	// c-2 moves to rep-2.
	w.Admin("acme", "POST", "/customers/c-2/assign", map[string]any{"reps": []string{"rep-2"}}, 200)
	for _, d := range []*rxDevice{a1, a2, b1} {
		d.sync()
	}
	if a1.holds("customers/c-2") || a2.holds("customers/c-2") || !b1.holds("customers/c-2") {
		t.Fatal("c-2 did not move from rep-1's phones to rep-2's")
	}
	for _, d := range []*rxDevice{a1, a2, b1} {
		d.sync()
	}
	rxWantEqualServer(t, w.accWorld, a1, tok1)
	rxWantEqualServer(t, w.accWorld, a2, tok1)
	rxWantEqualServer(t, w.accWorld, b1, tok2)
}

// TestRxDBReadSetChange: a manager's phone holds their team's customers;
// the manager stops leading the team. RxDB cannot be told which documents to
// drop, so the server answers the phone's next pull 426 (read_set_changed),
// and the documented app (adapters/js/rxdb/app.js, syncDatabase) sees that
// its schema version is the server's, drops its collections and replicates
// again: it ends with exactly what the manager may still see.
func TestRxDBReadSetChange(t *testing.T) {
	t.Parallel()
	needNode(t)
	w := newAdapterWorld(t, onSQLite)
	// mgr-9 leads north (rep-9, c-9) and south (rep-8, c-8 and c-7).
	w.AddTeam("acme", "north")
	w.AddTeam("acme", "south")
	w.AddUser("acme", accUser{ID: "rep-9", Roles: []string{"rep"}, Teams: []string{"north"}})
	w.AddUser("acme", accUser{ID: "rep-8", Roles: []string{"rep"}, Teams: []string{"south"}})
	w.AddUser("acme", accUser{ID: "mgr-9", Roles: []string{"manager"}, Leads: []string{"north", "south"}})
	w.docs("customers", map[string]any{"c-9": map[string]any{"name": "Nordwerk", "assigned_reps": []string{"rep-9"}},
		"c-8": map[string]any{"name": "Südlicht", "assigned_reps": []string{"rep-8"}},
		"c-7": map[string]any{"name": "Bergbau Süd", "assigned_reps": []string{"rep-8"}}})
	tok := w.Token("acme", "mgr-9", "manager")
	m := &rxDevice{jsDevice: startJSDevice(t, "m9", "rxdb/device.js", w.Server.URL, tok, "m9")}
	m.sync()
	if !m.holds("customers/c-9") || !m.holds("customers/c-8") {
		t.Fatal("the manager's phone lacks the teams' customers")
	}
	w.Admin("acme", "PATCH", "/users/mgr-9", map[string]any{"leads": []string{"south"}}, 200)
	m.sync()
	d := m.dump()
	if d.Restarts != 1 {
		t.Errorf("the phone started over %d times, want once", d.Restarts)
	}
	if _, ok := d.Collections["customers"]["c-9"]; ok {
		t.Fatal("the phone still holds north's customer after the manager stopped leading north")
	}
	if _, ok := d.Collections["customers"]["c-8"]; !ok {
		t.Fatal("the phone lost south's customer, which the manager still leads")
	}
	if len(d.Errors) > 0 {
		t.Errorf("replication errors: %v", d.Errors)
	}
	rxWantEqualServer(t, w.accWorld, m, tok)
}
