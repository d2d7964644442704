package app_test

import (
	"encoding/json"
	"github.com/fieldsync/fieldsync/app"
	"slices"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// TestAwayLongerThanRetention: a rep's phone syncs, goes offline with
// changes of its own queued, and stays away while a colleague deletes a
// note and the server compacts the history past the phone's checkpoint
// (docs/operations.md, "Retention"). Back online, the phone's queued
// changes are pushed and applied, its pull starts over, and it ends with
// exactly the server's view of its read set: its own changes in, the
// deleted note out, although its tombstone is gone. On both stores.
func TestAwayLongerThanRetention(t *testing.T) {
	t.Parallel()
	for _, st := range wfStores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			testAwayLongerThanRetention(t, st.store)
		})
	}
}

func testAwayLongerThanRetention(t *testing.T, store accStore) {
	w := newAccWorld(t, withoutWorkflows(store))
	const org = "acme"
	w.AddUser(org, accUser{ID: "rep-a", Roles: []string{"rep"}})
	w.Admin(org, "POST", "/documents/customers", map[string]any{"docs": []map[string]any{
		{"id": "c-1", "fields": map[string]any{"name": "Acme Motors", "assigned_reps": []string{"rep-a"}}}}}, 200)
	tok := w.Token(org, "rep-a", "rep")
	rec := newAccOutcomes()
	away, other := w.Device("phone", tok, true, rec), w.Device("tablet", tok, false, rec)
	must(t, "create n-1", other.C.Create("customer_notes", "n-1", map[string]any{"customer_id": "c-1", "text": "first"}))
	must(t, "create n-2", other.C.Create("customer_notes", "n-2", map[string]any{"customer_id": "c-1", "text": "second"}))
	other.Sync(t)
	away.Sync(t)
	if _, ok := away.C.Get("customer_notes", "n-2"); !ok {
		t.Fatal("the phone did not get n-2 before going away")
	}

	// Offline: the phone edits and creates; the tablet deletes n-2.
	must(t, "update n-1", away.C.Update("customer_notes", "n-1", map[string]any{"text": "first, edited offline"}))
	must(t, "create n-3", away.C.Create("customer_notes", "n-3", map[string]any{"customer_id": "c-1", "text": "written offline"}))
	other.Sync(t)
	must(t, "delete n-2", other.C.Delete("customer_notes", "n-2"))
	other.Sync(t)

	// The server compacts: mark, announce the floor past the phone's
	// checkpoint, then delete below it (the engine's retention.go).
	c, ok := w.Server.Store.(app.Compactor)
	if !ok {
		t.Fatalf("%T does not compact", w.Server.Store)
	}
	r := engine.Retention{History: 24 * time.Hour, Wait: 5 * time.Minute}
	t0 := time.Now().Add(time.Hour)
	var total engine.Compaction
	for _, at := range []time.Time{t0, t0.Add(25 * time.Hour), t0.Add(26 * time.Hour)} {
		res, err := c.Compact(t.Context(), at, r)
		if err != nil {
			t.Fatalf("compact at %v: %v", at, err)
		}
		total.Docs += res.Docs
		total.Feed += res.Feed
	}
	if total.Docs != 1 || total.Feed == 0 {
		t.Fatalf("compaction deleted %+v; want n-2's tombstone and its feed rows", total)
	}

	// Back online.
	if got := away.C.Pending(); got != 2 {
		t.Fatalf("the phone has %d changes queued, want 2", got)
	}
	rep := away.Sync(t)
	if !rep.Pull.Reset {
		t.Errorf("the phone's pull was not a reset: %+v", rep.Pull)
	}
	if away.C.Pending() != 0 {
		t.Errorf("the phone still has %d changes queued", away.C.Pending())
	}
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range rec.Reject {
			if !yield(k) {
				return
			}
		}
	}) {
		t.Errorf("refused: %s %+v", k, rec.Reject[k].O)
	}
	server := w.Visible(tok)
	local := map[string]json.RawMessage{}
	for coll, docs := range away.C.ServerState() {
		for id, d := range docs {
			local[coll+"/"+id] = d.Doc
		}
	}
	if !slices.Equal(accIDs(local), accIDs(server)) {
		t.Fatalf("the phone holds %v, the server's view of its read set is %v", accIDs(local), accIDs(server))
	}
	for k, doc := range server {
		if string(local[k]) != string(doc) {
			t.Errorf("%s: phone %s, server %s", k, local[k], doc)
		}
	}
	want := []string{"customer_notes/n-1", "customer_notes/n-3", "customers/c-1"}
	if got := accIDs(server); !slices.Equal(got, want) {
		t.Errorf("server view %v, want %v", got, want)
	}
	var n1 struct{ Text string }
	if json.Unmarshal(server["customer_notes/n-1"], &n1); n1.Text != "first, edited offline" {
		t.Errorf("n-1 = %s, want the offline edit", server["customer_notes/n-1"])
	}
}
