package app_test

// The WatermelonDB adapter with the real @nozbe/watermelondb (LokiJS in
// memory, under Node; adapters/js/watermelondb): two devices of one rep and
// one of another sync through the stock synchronize() against the real
// server, with a proxy that loses replies in front of one of them.

import (
	"encoding/json"
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/adapters/watermelondb"
	"github.com/fieldsync/fieldsync/schemas"
)

func TestWatermelonDBScenario(t *testing.T) {
	t.Parallel()
	needNode(t)
	testWatermelonDBScenario(t, onBinary) // the real binary on SQLite
}

func TestWatermelonDBScenarioMongoDB(t *testing.T) {
	t.Parallel()
	needNode(t)
	testWatermelonDBScenario(t, onMongoDB)
}

// wmDevice is a WatermelonDB device of the scenario.
type wmDevice struct {
	*jsDevice
	user string
}

type wmRejection struct {
	Table, ID, Code, Pointer string
	Record                   json.RawMessage
}

func (d *wmDevice) sync(t *testing.T) []wmRejection {
	t.Helper()
	var r struct {
		Rejected []wmRejection `json:"rejected"`
	}
	d.must(map[string]any{"cmd": "sync"}, &r)
	return r.Rejected
}

func (d *wmDevice) write(op, table, id string, fields map[string]any) {
	d.t.Helper()
	d.must(map[string]any{"cmd": op, "table": table, "id": id, "fields": fields}, nil)
}

// dump is the device's records by "table/id", without nulls, and how many
// local changes are pending.
func (d *wmDevice) dump() (map[string]map[string]any, int) {
	d.t.Helper()
	var r struct {
		Tables  map[string]map[string]map[string]any `json:"tables"`
		Pending int                                  `json:"pending"`
	}
	d.must(map[string]any{"cmd": "dump"}, &r)
	out := map[string]map[string]any{}
	for table, rows := range r.Tables {
		for id, row := range rows {
			maps.DeleteFunc(row, func(_ string, v any) bool { return v == nil })
			out[table+"/"+id] = row
		}
	}
	return out, r.Pending
}

// wmServerView is the server's view of tok's scope as WatermelonDB rows.
func wmServerView(t *testing.T, w *accWorld, ad *watermelondb.Adapter, tok string) map[string]map[string]any {
	t.Helper()
	all, _, _ := w.Drain(tok, "")
	out := map[string]map[string]any{}
	for k, c := range all {
		if c.Op != "put" {
			continue
		}
		raw, err := ad.Row(c.Coll, c.ID, c.Version, c.Doc)
		if err != nil {
			t.Fatal(err)
		}
		var row map[string]any
		json.Unmarshal(raw, &row)
		maps.DeleteFunc(row, func(_ string, v any) bool { return v == nil })
		out[k] = row
	}
	return out
}

// wantEqualServer fails unless the device holds exactly the server's view
// of its user's scope, with nothing pending.
func wantEqualServer(t *testing.T, w *accWorld, ad *watermelondb.Adapter, d *wmDevice, tok string) {
	t.Helper()
	got, pending := d.dump()
	if pending != 0 {
		t.Errorf("%s: %d local changes pending", d.name, pending)
	}
	wantSameAsServer(t, d.name, got, wmServerView(t, w, ad, tok))
}

func holdsKey(d *wmDevice, key string) bool {
	got, _ := d.dump()
	_, ok := got[key]
	return ok
}

// wmRows is the adapter on the served schemas, without an engine: the
// tests use it to turn the server's documents into WatermelonDB rows.
func wmRows(t *testing.T) *watermelondb.Adapter {
	t.Helper()
	sch, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	ad, err := watermelondb.New(nil, sch.JSON())
	if err != nil {
		t.Fatal(err)
	}
	return ad
}

func testWatermelonDBScenario(t *testing.T, store accStore) {
	w := newAdapterWorld(t, store)
	ad := wmRows(t)
	// a1 talks through a proxy that can lose the replies of pushes.
	proxy := newFaultProxy(t, w.Server.URL)
	proxy.match = func(r *http.Request) bool { return r.Method == http.MethodPost }
	tok1, tok2 := w.as("rep-1"), w.Token("acme", "rep-2", "rep")
	dev := func(name, base, tok, user string) *wmDevice {
		return &wmDevice{startJSDevice(t, name, "watermelondb/device.js", base, tok, name), user}
	}
	a1 := dev("a1", proxy.URL, tok1, "rep-1")
	a2 := dev("a2", w.Server.URL, tok1, "rep-1")
	b1 := dev("b1", w.Server.URL, tok2, "rep-2")
	for _, d := range []*wmDevice{a1, a2, b1} {
		if r := d.sync(t); len(r) != 0 {
			t.Fatalf("%s: first sync refused %+v", d.name, r)
		}
	}
	if !holdsKey(a1, "customers/c-1") || !holdsKey(a2, "customers/c-2") || !holdsKey(b1, "customers/c-3") || holdsKey(b1, "customers/c-1") {
		t.Fatal("the first sync did not bring each rep's customers (and only theirs)")
	}

	// Offline: notes on both of rep-1's phones and on rep-2's, and edits
	// of different fields of c-1 on the two phones.
	a1.write("create", "customer_notes", "n-1", map[string]any{"customer_id": "c-1", "text": "Needs 40 motors in March", "fs_created_at": "2026-12-02T10:00:00Z"})
	a2.write("create", "customer_notes", "n-2", map[string]any{"customer_id": "c-1", "text": "Compares with Brandt", "fs_created_at": "2026-12-02T11:00:00Z",
		"tags": `["price"]`})
	b1.write("create", "customer_notes", "n-3", map[string]any{"customer_id": "c-3", "text": "New hall in spring", "fs_created_at": "2026-12-02T12:00:00Z"})
	a1.write("update", "customers", "c-1", map[string]any{"segment": "OEM"})
	a2.write("update", "customers", "c-1", map[string]any{"notes": "Gate code 4711"})

	// a1's push is applied but its reply is lost twice: the retried
	// synchronize() pushes the same changes, which are recognised.
	proxy.lose.Store(2)
	for range 2 {
		if err := a1.call(map[string]any{"cmd": "sync"}, nil); err == nil {
			t.Fatal("a sync whose reply was lost succeeded")
		}
	}
	if proxy.lost.Load() != 2 {
		t.Fatalf("replies lost: %d, want 2", proxy.lost.Load())
	}
	for _, d := range []*wmDevice{a1, a2, b1, a1, a2} {
		if r := d.sync(t); len(r) != 0 {
			t.Fatalf("%s: refused %+v", d.name, r)
		}
	}
	wantOfflineWorkLanded(t, w, tok1)

	// A delete on one phone reaches the other.
	a2.write("delete", "customer_notes", "n-1", nil)
	a2.sync(t)
	a1.sync(t)
	if holdsKey(a1, "customer_notes/n-1") {
		t.Fatal("a1 still holds n-1 after a2 deleted it")
	}

	// A same-field conflict: both phones change c-1's notes; the first to
	// sync wins, the second is told (code conflict, the server's row) and
	// takes the server's row.
	a1.write("update", "customers", "c-1", map[string]any{"notes": "Ring at gate 2"})
	a2.write("update", "customers", "c-1", map[string]any{"notes": "Ask for Ms Weber"})
	if r := a1.sync(t); len(r) != 0 {
		t.Fatalf("a1's edit refused: %+v", r)
	}
	rej := a2.sync(t)
	if len(rej) != 1 || rej[0].ID != "c-1" || rej[0].Code != "conflict" || !strings.Contains(string(rej[0].Record), "Ring at gate 2") {
		t.Fatalf("a2's conflict surfaced as %+v", rej)
	}
	if got, _ := a2.dump(); got["customers/c-1"]["notes"] != "Ring at gate 2" {
		t.Fatalf("a2 holds notes %v after taking the server's row", got["customers/c-1"]["notes"])
	}

	// A refusal: a rep may not write credit_status. The app is told why and
	// takes the server's row.
	a2.write("update", "customers", "c-1", map[string]any{"credit_status": "ok"})
	rej = a2.sync(t)
	if len(rej) != 1 || rej[0].Table != "customers" || rej[0].ID != "c-1" || rej[0].Code != "server_field" || rej[0].Pointer != "/fields/credit_status" {
		t.Fatalf("refusal surfaced as %+v, want server_field at /fields/credit_status for customers/c-1", rej)
	}
	if len(rej[0].Record) == 0 || string(rej[0].Record) == "null" {
		t.Fatal("the refusal carries no server row")
	}

	// A submitted order: its follow-ups reach the rep's phones.
	a1.write("create", "orders", "o-1", map[string]any{"customer_id": "c-1", "currency": "EUR", "status": "draft",
		"lines": `[{"product_id":"p-1","quantity":2,"discount_pct":0}]`})
	a1.sync(t)
	a1.write("update", "orders", "o-1", map[string]any{"status": "submitted"})
	if r := a1.sync(t); len(r) != 0 {
		t.Fatalf("submit refused: %+v", r)
	}
	fus := w.followUpsOf("o-1")
	if len(fus) == 0 {
		t.Fatal("the submitted order has no follow-ups")
	}
	a2.sync(t)
	for id := range fus {
		if !holdsKey(a2, "follow_ups/"+id) {
			t.Errorf("a2 lacks follow-up %s of o-1", id)
		}
	}

	// c-2 moves to rep-2: it leaves rep-1's phones and reaches rep-2's.
	w.Admin("acme", "POST", "/customers/c-2/assign", map[string]any{"reps": []string{"rep-2"}}, 200)
	for _, d := range []*wmDevice{a1, a2, b1} {
		d.sync(t)
	}
	if holdsKey(a1, "customers/c-2") || holdsKey(a2, "customers/c-2") || !holdsKey(b1, "customers/c-2") {
		t.Fatal("c-2 did not move from rep-1's phones to rep-2's")
	}

	// Every device holds exactly the server's view of its scope.
	for _, d := range []*wmDevice{a1, a2, b1} {
		d.sync(t)
	}
	wantEqualServer(t, w.accWorld, ad, a1, tok1)
	wantEqualServer(t, w.accWorld, ad, a2, tok1)
	wantEqualServer(t, w.accWorld, ad, b1, tok2)
}

// A migration sync with the real synchronize() and migrationsEnabledAtVersion:
// the app's version 1 was built before the server served price_lists and
// customers.price_list_id (adapters/js/watermelondb/migrating.js), so it
// holds neither; version 2 adds both with WatermelonDB migrations, and a
// table of its own. Its next sync carries the migration, and the server
// sends what the migration added (every price list, every customer again
// with its price list) while the device keeps its local records: an
// unpushed note is pushed, a local draft stays.
func TestWatermelonDBMigrationSync(t *testing.T) {
	t.Parallel()
	needNode(t)
	for _, s := range wfStores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			testWatermelonDBMigrationSync(t, s.store)
		})
	}
}

type wmMigrationDump struct {
	Tables     map[string]map[string]map[string]any `json:"tables"`
	Pending    int                                  `json:"pending"`
	Version    int                                  `json:"version"`
	Migrations []watermelondb.Migration             `json:"migrations"`
}

func testWatermelonDBMigrationSync(t *testing.T, store accStore) {
	w := newAdapterWorld(t, store)
	ad := wmRows(t)
	tok := w.as("rep-1")
	d := &wmDevice{startJSDevice(t, "mig", "watermelondb/migrating.js", w.Server.URL, tok, "mig"), "rep-1"}
	dump := func() wmMigrationDump {
		t.Helper()
		var r wmMigrationDump
		d.must(map[string]any{"cmd": "dump"}, &r)
		return r
	}
	if r := d.sync(t); len(r) != 0 {
		t.Fatalf("first sync refused %+v", r)
	}
	v1 := dump()
	if v1.Version != 1 || v1.Tables["customers"]["c-1"] == nil || v1.Tables["price_lists"] != nil || len(v1.Migrations) != 0 {
		t.Fatalf("version 1 after its first sync: %+v", v1)
	}
	if _, ok := v1.Tables["customers"]["c-1"]["price_list_id"]; ok {
		t.Fatal("version 1 has a price_list_id column")
	}
	// Offline, then the app is updated.
	d.write("create", "customer_notes", "n-1", map[string]any{"customer_id": "c-1", "text": "Written before the update", "fs_created_at": "2026-12-02T10:00:00Z"})
	d.must(map[string]any{"cmd": "upgrade"}, nil)
	d.write("create", "drafts", "dr-1", map[string]any{"text": "the app's own"})
	if v2 := dump(); v2.Version != 2 || v2.Pending != 2 || len(v2.Tables["price_lists"]) != 0 || v2.Tables["customers"]["c-1"]["price_list_id"] != nil {
		t.Fatalf("version 2 before its sync: %+v", v2)
	}
	if r := d.sync(t); len(r) != 0 {
		t.Fatalf("migration sync refused %+v", r)
	}
	got := dump()
	if len(got.Migrations) != 1 || got.Migrations[0].From != 1 || ad.Resent(&got.Migrations[0]) == nil ||
		strings.Join(ad.Resent(&got.Migrations[0]), ",") != "customers,price_lists" {
		t.Fatalf("the pulls carried migrations %+v, want one from 1 resending customers and price_lists", got.Migrations)
	}
	if got.Tables["customers"]["c-1"]["price_list_id"] != "pl-1" || got.Tables["price_lists"]["pl-1"] == nil {
		t.Fatalf("after the migration sync: c-1 %v, price lists %v", got.Tables["customers"]["c-1"], got.Tables["price_lists"])
	}
	// The draft is the app's: left out of the push, and then marked synced
	// by WatermelonDB like the rest.
	if got.Tables["drafts"]["dr-1"] == nil || got.Pending != 0 {
		t.Fatalf("the local draft: %v, %d pending", got.Tables["drafts"], got.Pending)
	}
	if _, ok := w.Visible(tok)["customer_notes/n-1"]; !ok {
		t.Fatal("the note written before the update did not reach the server")
	}
	// Later syncs are ordinary: no migration again.
	d.sync(t)
	if again := dump(); len(again.Migrations) != 0 || again.Tables["drafts"]["dr-1"] == nil {
		t.Fatalf("a sync after the migration sync carried %+v", again.Migrations)
	}
	// The device holds the server's view of the rep's scope, and its draft.
	final := dump()
	rows := map[string]map[string]any{}
	for table, byID := range final.Tables {
		if table == "drafts" {
			continue
		}
		for id, row := range byID {
			maps.DeleteFunc(row, func(_ string, v any) bool { return v == nil })
			rows[table+"/"+id] = row
		}
	}
	wantSameAsServer(t, d.name, rows, wmServerView(t, w.accWorld, ad, tok))
}
