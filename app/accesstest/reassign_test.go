package accesstest

// Scope changes with devices offline, through the Go reference client
// against the real server (docs/access.md, "Scope changes"):
//
// TestReassignmentOffline: customer c moves from rep A (two phones) to
// rep B (one phone) while both reps have notes on c waiting on their
// phones. After both sync (B first, or A first), B holds c and its whole
// history, A's notes included; A's phones hold none of it; each of A's
// waiting mutations was answered, and the app got each refused one back
// with its text; no note is lost; the manager of A's team stops seeing c.
// Assigning c back to A brings A everything again.
//
// TestRepChangesTeam: rep A moves from team T to team U; the manager of T
// loses A's data (a reset pull) and the manager of U gains it, old
// documents included.

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
)

func TestReassignmentOffline(t *testing.T) {
	t.Parallel()
	testReassignmentOffline(t, onSQLite)
}

func TestReassignmentOfflineMongoDB(t *testing.T) {
	t.Parallel()
	testReassignmentOffline(t, onMongoDB)
}

func TestRepChangesTeam(t *testing.T) {
	t.Parallel()
	testRepChangesTeam(t, onSQLite)
}

func TestRepChangesTeamMongoDB(t *testing.T) {
	t.Parallel()
	testRepChangesTeam(t, onMongoDB)
}

const (
	rsCustomers = fieldsales.CollCustomers
	rsNotes     = fieldsales.CollCustomerNotes
	rsLogs      = fieldsales.CollVisitLogs
	rsOrders    = fieldsales.CollOrders
)

// rsCollections are the collections a device of these scenarios may hold.
var rsCollections = []string{rsCustomers, rsNotes, rsLogs, rsOrders, fieldsales.CollVisitPlans, fieldsales.CollFollowUps}

// holdings is every document a device shows, by "collection/id".
func holdings(d *accDevice) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for _, coll := range rsCollections {
		for id, doc := range d.C.Docs(coll) {
			out[coll+"/"+id] = doc
		}
	}
	return out
}

// wantHolds fails unless d shows exactly want.
func wantHolds(t *testing.T, when string, d *accDevice, want ...string) {
	t.Helper()
	got := accIDs(holdings(d))
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s: %s holds %v, want %v", when, d.ID, got, want)
	}
}

func rsNote(customer, text string) map[string]any {
	return map[string]any{"customer_id": customer, "text": text, "created_at": "2026-12-02T10:00:00Z"}
}

func testReassignmentOffline(t *testing.T, store accStore) {
	w := newAccWorld(t, store)
	// Two organisations on one server play the two orders at once.
	// The first plays the reassignment as an admin's sync push and the
	// assignment back through the admin API; the second the other way round.
	for _, c := range []struct {
		name, org string
		aFirst    bool
	}{{"B syncs first", "org-b-first", false}, {"A syncs first", "org-a-first", true}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runReassignment(t, &accWorld{T: t, Server: w.Server}, c.org, c.aFirst, c.aFirst)
		})
	}
}

func runReassignment(t *testing.T, w *accWorld, org string, aFirst, viaAPI bool) {
	w.AddTeam(org, "T")
	w.AddTeam(org, "U")
	w.AddUser(org, accUser{ID: "rep-a", Roles: []string{"rep"}, Teams: []string{"T"}})
	w.AddUser(org, accUser{ID: "rep-b", Roles: []string{"rep"}, Teams: []string{"U"}})
	w.AddUser(org, accUser{ID: "m1", Roles: []string{"manager"}, Leads: []string{"T"}})
	rec := newAccOutcomes()
	adminTok := w.Token(org, "u-admin", "admin")
	admin := w.Device("console", adminTok, false, rec)
	tokA := w.Token(org, "rep-a", "rep")
	a1 := w.Device("a1", tokA, false, rec)
	a2 := w.Device("a2", tokA, true, rec) // keeps its state in a file
	b1 := w.Device("b1", w.Token(org, "rep-b", "rep"), true, rec)
	m1 := w.Device("m1", w.Token(org, "m1", "manager"), false, rec)

	// c has a history with A: a visit, two notes, a submitted order. A also
	// keeps another customer, c-keep, throughout.
	must(t, "create c", admin.C.Create(rsCustomers, "c", map[string]any{"name": "Kessler Pumps", "assigned_reps": []string{"rep-a"}}))
	must(t, "create c-keep", admin.C.Create(rsCustomers, "c-keep", map[string]any{"name": "Lindner Motors", "assigned_reps": []string{"rep-a"}}))
	admin.Sync(t)
	a1.Sync(t)
	must(t, "visit", a1.C.Create(rsLogs, "vl-1", accDoc(rsLogs, "c", "first visit: wants a quote")))
	must(t, "note 1", a1.C.Create(rsNotes, "n-1", rsNote("c", "Needs 40 motors in March")))
	must(t, "note 2", a1.C.Create(rsNotes, "n-2", rsNote("c", "Price sensitive, compares with Brandt")))
	must(t, "order", a1.C.Create(rsOrders, "o-1", accDoc(rsOrders, "c", "first order")))
	must(t, "note on c-keep", a1.C.Create(rsNotes, "n-keep", rsNote("c-keep", "Happy with the last delivery")))
	a1.Sync(t)
	must(t, "submit", a1.C.Update(rsOrders, "o-1", map[string]any{"status": "submitted"}))
	for _, d := range []*accDevice{a1, a2, b1, m1} {
		d.Sync(t)
	}
	history := []string{"customers/c", "visit_logs/vl-1", "customer_notes/n-1", "customer_notes/n-2", "orders/o-1"}
	kept := []string{"customers/c-keep", "customer_notes/n-keep"}
	wantHolds(t, "before", a1, append(slices.Clone(history), kept...)...)
	wantHolds(t, "before", a2, append(slices.Clone(history), kept...)...)
	wantHolds(t, "before", m1, append(slices.Clone(history), kept...)...)
	wantHolds(t, "before", b1)
	if t.Failed() {
		t.FailNow()
	}

	// Both reps go offline and write on c. A's phones: new notes, an edit
	// of an old one, and a note on c-keep. B's phone: notes on c, which B
	// was told is becoming theirs.
	pendingA := map[string]string{ // document id -> text the app must get back
		"pa1-1": "a1: asked for a visit in April",
		"pa1-2": "a1: new purchasing manager, Ms Vogel",
		"pa2-1": "a2: complaint about delivery times",
	}
	must(t, "a1 note", a1.C.Create(rsNotes, "pa1-1", rsNote("c", pendingA["pa1-1"])))
	must(t, "a1 note", a1.C.Create(rsNotes, "pa1-2", rsNote("c", pendingA["pa1-2"])))
	must(t, "a2 note", a2.C.Create(rsNotes, "pa2-1", rsNote("c", pendingA["pa2-1"])))
	const editText = "a2: 45 motors, not 40"
	must(t, "a2 edit", a2.C.Update(rsNotes, "n-1", map[string]any{"text": editText}))
	must(t, "a2 note on c-keep", a2.C.Create(rsNotes, "pa2-keep", rsNote("c-keep", "a2: still happy")))
	must(t, "b1 note", b1.C.Create(rsNotes, "pb1-1", rsNote("c", "b1: introduced myself")))
	must(t, "b1 note", b1.C.Create(rsNotes, "pb1-2", rsNote("c", "b1: will visit next week")))

	// The admin reassigns c to B: through the admin API, or as an edit of
	// assigned_reps on the admin's console.
	assign := func(rep string, api bool) {
		t.Helper()
		if api {
			w.Admin(org, "POST", "/customers/c/assign", map[string]any{"reps": []string{rep}}, 200)
			return
		}
		admin.Sync(t) // edit the current version
		must(t, "assign", admin.C.Update(rsCustomers, "c", map[string]any{"assigned_reps": []string{rep}}))
		if r := admin.Sync(t); r.Push.Applied != 1 {
			t.Fatalf("assign c to %s: %+v", rep, r.Push)
		}
	}
	assign("rep-b", viaAPI)

	order := []*accDevice{b1, a1, a2}
	if aFirst {
		order = []*accDevice{a1, a2, b1}
	}
	for _, d := range order {
		d.Sync(t)
	}

	// B holds c and its whole history, A's old notes included, and its own
	// notes.
	bNotes := []string{"customer_notes/pb1-1", "customer_notes/pb1-2"}
	wantHolds(t, "after the reassignment", b1, append(slices.Clone(history), bNotes...)...)
	// A holds none of it, and keeps c-keep (a1 synced before a2 wrote on
	// it).
	keptNow := append(slices.Clone(kept), "customer_notes/pa2-keep")
	wantHolds(t, "after the reassignment", a1, kept...)
	wantHolds(t, "after the reassignment", a2, keptNow...)
	for _, d := range order {
		if n := d.C.Pending(); n != 0 {
			t.Errorf("%s: %d mutations still pending", d.ID, n)
		}
	}

	// Every mutation of A's phones got an explicit outcome, once; each
	// refused one reached the app with what the user wrote.
	rec.Mu.Lock()
	if len(rec.Dups) > 0 {
		t.Errorf("outcomes reported twice: %v", rec.Dups)
	}
	byDoc := func(m map[string]accOutcome, device, doc string, op engine.Op) []accOutcome {
		var out []accOutcome
		for _, o := range m {
			if o.Device == device && o.M.DocID == doc && o.M.Op == op {
				out = append(out, o)
			}
		}
		return out
	}
	for doc, text := range pendingA {
		dev := doc[1:3]
		for _, from := range []map[string]accOutcome{rec.Outcome, rec.Reject} {
			got := byDoc(from, dev, doc, engine.OpCreate)
			if len(got) != 1 {
				t.Errorf("%s's note %s: %d outcomes reported, want 1", dev, doc, len(got))
				continue
			}
			o := got[0]
			if o.O.Status != engine.StatusRejected || o.O.Error == nil || o.O.Error.Code != fieldsales.CodeCustomerNotInScope ||
				o.O.Error.Pointer != "/doc/customer_id" {
				t.Errorf("%s's note %s: %+v, want rejected customer_not_in_scope at /doc/customer_id", dev, doc, o.O)
			}
			var body struct {
				Text       string `json:"text"`
				CustomerID string `json:"customer_id"`
			}
			if json.Unmarshal(o.M.Doc, &body) != nil || body.Text != text || body.CustomerID != "c" {
				t.Errorf("%s's note %s: the app got back %s, want the note as written", dev, doc, o.M.Doc)
			}
		}
	}
	for _, from := range []map[string]accOutcome{rec.Outcome, rec.Reject} {
		got := byDoc(from, "a2", "n-1", engine.OpUpdate)
		if len(got) != 1 || got[0].O.Error == nil || got[0].O.Error.Code != engine.CodeForbidden || got[0].O.Error.Pointer != "/id" ||
			!strings.Contains(string(got[0].M.Fields["text"]), editText) {
			t.Errorf("a2's edit of n-1: %+v, want one rejected forbidden at /id carrying the edit", got)
		}
	}
	var aOutcomes, aRejects int
	for _, o := range rec.Outcome {
		if o.Device == "a1" || o.Device == "a2" {
			aOutcomes++
		}
	}
	for _, o := range rec.Reject {
		if o.Device == "a1" || o.Device == "a2" {
			aRejects++
		}
	}
	// Before the reassignment: 5 creates and the order's submission; after:
	// 3 notes and an edit refused, the note on c-keep applied.
	if aOutcomes != 6+5 || aRejects != 4 {
		t.Errorf("A's phones heard %d outcomes and %d rejections, want 11 and 4", aOutcomes, aRejects)
	}
	for _, o := range rec.Outcome {
		if o.Device == "b1" && o.O.Status != engine.StatusApplied {
			t.Errorf("b1's %s %s/%s: %+v, want applied", o.M.Op, o.M.Collection, o.M.DocID, o.O)
		}
	}
	rec.Mu.Unlock()

	// No note is lost: the server holds A's notes from before the
	// reassignment and B's, as written, and B's copies are the server's.
	server := w.Visible(adminTok)
	notesOn := func(docs map[string]json.RawMessage, customer string) []string {
		var out []string
		for k, doc := range docs {
			var n struct {
				CustomerID string `json:"customer_id"`
			}
			if strings.HasPrefix(k, rsNotes+"/") && json.Unmarshal(doc, &n) == nil && n.CustomerID == customer {
				out = append(out, k)
			}
		}
		slices.Sort(out)
		return out
	}
	if got, want := notesOn(server, "c"), []string{"customer_notes/n-1", "customer_notes/n-2", "customer_notes/pb1-1", "customer_notes/pb1-2"}; !slices.Equal(got, want) {
		t.Errorf("the server's notes on c: %v, want %v", got, want)
	}
	if !strings.Contains(string(server["customer_notes/n-1"]), "Needs 40 motors in March") {
		t.Errorf("n-1 on the server: %s, want the text before the refused edit", server["customer_notes/n-1"])
	}
	for k, doc := range holdings(b1) {
		if string(server[k]) != string(doc) {
			t.Errorf("b1's %s = %s, the server's %s", k, doc, server[k])
		}
	}

	// The manager of A's team saw c; the next pull takes it away.
	m1.Sync(t)
	wantHolds(t, "after the reassignment", m1, keptNow...)

	// Assigned back, A's phones get everything again, B's notes included;
	// B's phone drops it; the manager sees it again. The app offers a
	// refused note again, and this time it is applied.
	assign("rep-a", !viaAPI)
	rec.Mu.Lock()
	var again json.RawMessage
	for _, o := range rec.Reject {
		if o.Device == "a1" && o.M.DocID == "pa1-1" {
			again = o.M.Doc
		}
	}
	rec.Mu.Unlock()
	a1.Sync(t)
	must(t, "offer again", a1.C.Create(rsNotes, "pa1-1-again", again))
	for _, d := range []*accDevice{a1, a2, b1, m1} {
		d.Sync(t)
	}
	all := append(append(slices.Clone(history), bNotes...), keptNow...)
	wantHolds(t, "assigned back", a1, append(slices.Clone(all), "customer_notes/pa1-1-again")...)
	wantHolds(t, "assigned back", a2, append(slices.Clone(all), "customer_notes/pa1-1-again")...)
	wantHolds(t, "assigned back", m1, append(slices.Clone(all), "customer_notes/pa1-1-again")...)
	wantHolds(t, "assigned back", b1)
	if doc := a2.C.Docs(rsNotes)["pa1-1-again"]; !strings.Contains(string(doc), pendingA["pa1-1"]) {
		t.Errorf("the note offered again: %s", doc)
	}
}

func testRepChangesTeam(t *testing.T, store accStore) {
	w := newAccWorld(t, store)
	const org = "org-1"
	w.AddTeam(org, "T")
	w.AddTeam(org, "U")
	w.AddUser(org, accUser{ID: "rep-a", Roles: []string{"rep"}, Teams: []string{"T"}})
	w.AddUser(org, accUser{ID: "rep-u", Roles: []string{"rep"}, Teams: []string{"U"}})
	w.AddUser(org, accUser{ID: "m1", Roles: []string{"manager"}, Leads: []string{"T"}})
	w.AddUser(org, accUser{ID: "m2", Roles: []string{"manager"}, Leads: []string{"U"}})
	rec := newAccOutcomes()
	admin := w.Device("console", w.Token(org, "u-admin", "admin"), false, rec)
	m1Tok, m2Tok, aTok := w.Token(org, "m1", "manager"), w.Token(org, "m2", "manager"), w.Token(org, "rep-a", "rep")
	a1 := w.Device("a1", aTok, false, rec)
	u1 := w.Device("u1", w.Token(org, "rep-u", "rep"), false, rec)
	m1 := w.Device("m1", m1Tok, false, rec)
	m2 := w.Device("m2", m2Tok, true, rec)

	must(t, "create c", admin.C.Create(rsCustomers, "c", map[string]any{"name": "Kessler Pumps", "assigned_reps": []string{"rep-a"}}))
	must(t, "create cu", admin.C.Create(rsCustomers, "cu", map[string]any{"name": "Ullmann AG", "assigned_reps": []string{"rep-u"}}))
	admin.Sync(t)
	a1.Sync(t)
	u1.Sync(t)
	// A's history, old by the time A moves.
	must(t, "note", a1.C.Create(rsNotes, "n-1", rsNote("c", "Needs 40 motors in March")))
	must(t, "visit", a1.C.Create(rsLogs, "vl-1", accDoc(rsLogs, "c", "first visit")))
	must(t, "own follow-up", a1.C.Create(fieldsales.CollFollowUps, "q-a", accDoc(fieldsales.CollFollowUps, "", "where is my sample case?")))
	must(t, "note", u1.C.Create(rsNotes, "nu-1", rsNote("cu", "Ullmann's note")))
	a1.Sync(t)
	u1.Sync(t)
	aData := []string{"customers/c", "customer_notes/n-1", "visit_logs/vl-1", "follow_ups/q-a"}
	uData := []string{"customers/cu", "customer_notes/nu-1"}
	m1.Sync(t)
	m2.Sync(t)
	wantHolds(t, "before", m1, aData...)
	wantHolds(t, "before", m2, uData...)
	if t.Failed() {
		t.FailNow()
	}
	// M1 reviews A's visit offline, too late.
	must(t, "review", m1.C.Update(rsLogs, "vl-1", map[string]any{"review": map[string]any{"status": "approved"}}))

	w.Admin(org, "PATCH", "/users/rep-a", map[string]any{"teams": []string{"U"}}, 200)

	// Both managers' next pulls start over; A's does not.
	for _, c := range []struct {
		who, tok, cp string
		reset        bool
	}{{"m1", m1Tok, m1.C.Checkpoint(), true}, {"m2", m2Tok, m2.C.Checkpoint(), true}, {"rep-a", aTok, a1.C.Checkpoint(), false}} {
		if _, _, reset := w.Drain(c.tok, c.cp); reset != c.reset {
			t.Errorf("%s's pull after the team change: reset %v, want %v", c.who, reset, c.reset)
		}
	}
	m1.Sync(t)
	wantHolds(t, "after the team change", m1)
	rec.Mu.Lock()
	var review []accOutcome
	for _, o := range rec.Reject {
		if o.Device == "m1" {
			review = append(review, o)
		}
	}
	if len(review) != 1 || review[0].M.DocID != "vl-1" || review[0].O.Error.Code != engine.CodeForbidden || review[0].O.Error.Pointer != "/id" {
		t.Errorf("m1's review after the team change: %+v, want one rejection forbidden at /id", review)
	}
	rec.Mu.Unlock()
	m2.Sync(t)
	wantHolds(t, "after the team change", m2, append(slices.Clone(aData), uData...)...)
	a1.Sync(t)
	wantHolds(t, "after the team change", a1, aData...)

	// From now on M2 follows A incrementally, and may review A's visit.
	must(t, "note", a1.C.Create(rsNotes, "n-2", rsNote("c", "Written in team U")))
	a1.Sync(t)
	must(t, "review", m2.C.Update(rsLogs, "vl-1", map[string]any{"review": map[string]any{"status": "approved", "comment": "ok"}}))
	if rep := m2.Sync(t); rep.Push.Applied != 1 {
		t.Errorf("m2's review: %+v", rep.Push)
	}
	wantHolds(t, "after A's next note", m2, append(slices.Clone(aData), append(uData, "customer_notes/n-2")...)...)
	m1.Sync(t)
	wantHolds(t, "after A's next note", m1)
}
