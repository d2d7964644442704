package storetest

import (
	"fmt"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
)

const notes = fieldsales.CollCustomerNotes

// testCreateThenPull: an empty store has an empty feed; a created note comes
// back as a put of version 1 with the document that was sent.
func testCreateThenPull(f *fixture) {
	t := f.t
	res := f.pull(f.eng, rep1, "", 0)
	if len(res.Changes) != 0 || res.HasMore || res.Checkpoint == "" {
		t.Fatalf("empty store: pull = %d changes, has_more %v, checkpoint %q; want none, false, a checkpoint",
			len(res.Changes), res.HasMore, res.Checkpoint)
	}
	empty := res.Checkpoint

	doc := noteDoc("Wants 40 motors in March")
	doc["tags"] = []string{"motors", "q1"}
	outs := f.push(f.eng, rep1, devA, create("m-1", notes, "n-1", doc))
	wantOutcome(t, outs[0], "m-1", engine.StatusApplied, 1)

	res = f.pull(f.eng, rep1, empty, 0)
	if len(res.Changes) != 1 || res.HasMore {
		t.Fatalf("pull after create = %v, has_more %v; want one change", ids(res.Changes), res.HasMore)
	}
	wantPut(t, res.Changes[0], notes, "n-1", 1, doc)
	if res.Changes[0].Seq <= 0 {
		t.Errorf("change seq = %d, want a positive commit position", res.Changes[0].Seq)
	}
	// The checkpoint moved past the note: pulling again brings nothing.
	again := f.pull(f.eng, rep1, res.Checkpoint, 0)
	if len(again.Changes) != 0 || again.HasMore {
		t.Errorf("pull from the latest checkpoint = %v, has_more %v; want nothing", ids(again.Changes), again.HasMore)
	}
}

// testExactlyOnce: a batch pushed again (the reply was lost) changes nothing
// and returns the recorded outcomes; ids are per (user, device).
func testExactlyOnce(f *fixture) {
	t := f.t
	batch := []engine.Mutation{
		createNote("m-1", "n-1", "Wants 40 motors"),
		update("m-2", notes, "n-1", 1, map[string]any{"text": "Wants 45 motors"}),
		createNote("m-3", "n-2", "Call back Tuesday"),
	}
	first := f.push(f.eng, rep1, devA, batch...)
	wantOutcome(t, first[0], "m-1", engine.StatusApplied, 1)
	wantOutcome(t, first[1], "m-2", engine.StatusApplied, 2)
	wantOutcome(t, first[2], "m-3", engine.StatusApplied, 1)
	changes, cp := f.pullAll(f.eng, rep1, "", 100)
	got := byID(t, changes)
	if len(got) != 2 || got[notes+"/n-1"].Version != 2 || got[notes+"/n-2"].Version != 1 {
		t.Fatalf("pull after first push = %v, want n-1 v2 and n-2 v1", ids(changes))
	}

	second := f.push(f.eng, rep1, devA, batch...)
	wantSameOutcomes(t, "same batch pushed again", second, first)
	if res := f.pull(f.eng, rep1, cp, 100); len(res.Changes) != 0 {
		t.Errorf("the retried batch wrote something: pull after it = %v", ids(res.Changes))
	}
	changes, _ = f.pullAll(f.eng, rep1, "", 100)
	got = byID(t, changes)
	if len(got) != 2 || got[notes+"/n-1"].Version != 2 || got[notes+"/n-2"].Version != 1 {
		t.Errorf("versions after the retry = %v, want n-1 v2 and n-2 v1", changes)
	}
	wantDoc(t, "n-1 after the retry", got[notes+"/n-1"].Body, noteDoc("Wants 45 motors"))

	// An old id in a later batch gets its recorded answer, even though
	// deciding it again now would say already_exists; the new one applies.
	mixed := f.push(f.eng, rep1, devA,
		createNote("m-1", "n-1", "Wants 40 motors"),
		update("m-4", notes, "n-2", 1, map[string]any{"text": "Call back Wednesday"}))
	wantSameOutcomes(t, "old mutation id in a later batch", mixed[:1], first[:1])
	wantOutcome(t, mixed[1], "m-4", engine.StatusApplied, 2)
	res := f.pull(f.eng, rep1, cp, 100)
	if len(res.Changes) != 1 {
		t.Fatalf("pull after the mixed batch = %v, want only n-2", ids(res.Changes))
	}
	wantPut(t, res.Changes[0], notes, "n-2", 2, noteDoc("Call back Wednesday"))
	cp = res.Checkpoint

	// The first batch again, after the documents moved on: still the
	// answers recorded the first time.
	wantSameOutcomes(t, "first batch after later changes", f.push(f.eng, rep1, devA, batch...), first)

	// Mutation ids belong to (user, device): another device of the same
	// user, and another user on a device with the same id, start afresh.
	wantOutcome(t, f.push(f.eng, rep1, devB, createNote("m-1", "n-3", "From the tablet"))[0], "m-1", engine.StatusApplied, 1)
	wantOutcome(t, f.push(f.eng, rep2, devA, createNoteOn("m-1", "n-4", cust2, "Rep 2's note"))[0], "m-1", engine.StatusApplied, 1)
	res = f.pull(f.eng, rep1, cp, 100)
	if len(res.Changes) != 1 {
		t.Fatalf("pull after device B's push = %v, want n-3", ids(res.Changes))
	}
	wantPut(t, res.Changes[0], notes, "n-3", 1, noteDoc("From the tablet"))
	cp = res.Checkpoint
	rep2Changes, _ := f.pullAll(f.eng, rep2, "", 100)
	if len(rep2Changes) != 1 {
		t.Fatalf("rep2's feed = %v, want n-4", ids(rep2Changes))
	}
	wantPut(t, rep2Changes[0], notes, "n-4", 1, noteDocOn(cust2, "Rep 2's note"))

	// An id repeated inside one batch is one mutation: the second copy gets
	// the first answer and is not applied.
	dup := f.push(f.eng, rep1, devA, createNote("m-5", "n-5", "First copy"), createNote("m-5", "n-6", "Second copy"))
	wantOutcome(t, dup[0], "m-5", engine.StatusApplied, 1)
	wantSameOutcomes(t, "mutation id repeated in one batch", dup[1:], dup[:1])
	res = f.pull(f.eng, rep1, cp, 100)
	if len(res.Changes) != 1 || res.Changes[0].ID != "n-5" {
		t.Errorf("pull after a batch repeating a mutation id = %v, want only n-5", ids(res.Changes))
	}
}

// testRejectedMutations: rejected mutations do not stop the rest of the
// batch, store nothing, and carry the documented code and pointer.
func testRejectedMutations(f *fixture) {
	t := f.t
	order := map[string]any{"customer_id": "c-1", "status": "draft", "currency": "EUR",
		"lines": []any{map[string]any{"product_id": "p-motor-4kw", "quantity": 40, "unit_price": "310.50"}}}
	badQty := map[string]any{"customer_id": "c-1",
		"lines": []any{map[string]any{"product_id": "p-motor-4kw", "quantity": 0}}}
	confirmed := map[string]any{"customer_id": "c-1", "status": "confirmed"}
	reviewed := map[string]any{"customer_id": "c-1", "check_in": map[string]any{"at": "2026-11-29T09:00:00Z"},
		"review": map[string]any{"status": "approved"}}
	noText := map[string]any{"customer_id": "c-1", "created_at": "2026-11-29T09:00:00Z"}
	batch := []engine.Mutation{
		createNote("", "n-0", "no mutation id"),
		create("m-1", notes, "n-bad", noText),
		create("m-2", "invoices", "i-1", map[string]any{"total": 10}),
		create("m-3", fieldsales.CollOrders, "o-1", confirmed),
		create("m-4", fieldsales.CollVisitLogs, "v-1", reviewed),
		create("m-5", fieldsales.CollOrders, "o-bad", badQty),
		createNote("m-6", "n-1", "Wants 40 motors"),
		update("m-7", notes, "n-1", 1, map[string]any{"text": ""}),
		update("m-8", notes, "n-1", 1, map[string]any{"text": "Wants 50 motors", "mood": "happy"}),
		update("m-9", notes, "n-1", 1, map[string]any{"tags": []string{"motors"}}),
		create("m-10", fieldsales.CollOrders, "o-2", order),
		update("m-11", fieldsales.CollOrders, "o-2", 1, map[string]any{"status": "confirmed"}),
		update("m-12", fieldsales.CollCustomers, "n-1", 1, map[string]any{"name": "wrong collection"}),
		update("m-13", notes, "n-later", 1, map[string]any{"text": "edited before it exists"}),
	}
	outs := f.push(f.eng, rep1, devA, batch...)
	wantRejected(t, outs[0], "", engine.CodeInvalidMutation, "/mutation_id")
	wantRejected(t, outs[1], "m-1", engine.CodeSchemaViolation, "/doc/text")
	wantRejected(t, outs[2], "m-2", engine.CodeUnknownCollection, "/collection")
	wantRejected(t, outs[3], "m-3", engine.CodeServerField, "/doc/status")
	wantRejected(t, outs[4], "m-4", engine.CodeFieldNotWritable, "/doc/review") // managers only
	wantRejected(t, outs[5], "m-5", engine.CodeSchemaViolation, "/doc/lines/0/quantity")
	wantOutcome(t, outs[6], "m-6", engine.StatusApplied, 1)
	wantRejected(t, outs[7], "m-7", engine.CodeSchemaViolation, "/fields/text")
	wantRejected(t, outs[8], "m-8", engine.CodeSchemaViolation, "/fields/mood")
	wantOutcome(t, outs[9], "m-9", engine.StatusApplied, 2)
	wantOutcome(t, outs[10], "m-10", engine.StatusApplied, 1)
	wantRejected(t, outs[11], "m-11", engine.CodeServerField, "/fields/status")
	wantRejected(t, outs[12], "m-12", engine.CodeNotFound, "/id")
	wantRejected(t, outs[13], "m-13", engine.CodeNotFound, "/id")

	// Nothing of a rejected mutation is stored: not the documents that
	// failed, and not the valid half of a half-valid update.
	changes, _ := f.pullAll(f.eng, rep1, "", 100)
	got := byID(t, changes)
	if len(got) != 2 {
		t.Fatalf("feed after the batch = %v, want only n-1 and o-2", ids(changes))
	}
	want := noteDoc("Wants 40 motors")
	want["tags"] = []string{"motors"}
	wantPut(t, got[notes+"/n-1"], notes, "n-1", 2, want)
	wantPut(t, got[fieldsales.CollOrders+"/o-2"], fieldsales.CollOrders, "o-2", 1, order)

	// Rejections are recorded answers too: retried after the document it
	// needed appeared, the batch gets the same ones and applies nothing.
	wantOutcome(t, f.push(f.eng, rep1, devB, createNote("m-1", "n-later", "Created later"))[0], "m-1", engine.StatusApplied, 1)
	wantSameOutcomes(t, "batch with rejections pushed again", f.push(f.eng, rep1, devA, batch...), outs)
	changes, _ = f.pullAll(f.eng, rep1, "", 100)
	if got := byID(t, changes); got[notes+"/n-later"].Version != 1 || got[notes+"/n-1"].Version != 2 {
		t.Errorf("the retried batch changed documents: %+v", changes)
	}
}

// testFieldMerge: concurrent edits of different fields both survive; a
// same-field conflict keeps the value committed first and reports it; a
// device's own queued edits never conflict with each other.
func testFieldMerge(f *fixture) {
	t := f.t
	seed := f.push(f.eng, rep1, devA,
		createNote("m-1", "n-diff", "Wants 40 motors"),
		createNote("m-2", "n-same", "Wants 40 motors"),
		createNote("m-3", "n-own", "Draft"),
		createNote("m-4", "n-mixed", "Wants 40 motors"))
	for i, o := range seed {
		wantOutcome(t, o, fmt.Sprintf("m-%d", i+1), engine.StatusApplied, 1)
	}

	// Different fields: both survive, and B learns the result at once.
	wantOutcome(t, f.push(f.eng, rep1, devA, update("a-1", notes, "n-diff", 1, map[string]any{"text": "Wants 45 motors"}))[0],
		"a-1", engine.StatusApplied, 2)
	b := f.push(f.eng, rep1, devB, update("b-1", notes, "n-diff", 1, map[string]any{"tags": []string{"urgent"}}))[0]
	both := noteDoc("Wants 45 motors")
	both["tags"] = []string{"urgent"}
	if b.Status != engine.StatusMerged || b.Version != 3 || len(b.Conflicts) != 0 {
		t.Errorf("B's edit of another field = %s, want merged v3 without conflicts", mustJSON(b))
	}
	wantDoc(t, "B's merged doc", b.Doc, both)

	// Same field: A committed first and wins; B is told what it lost.
	wantOutcome(t, f.push(f.eng, rep1, devA, update("a-2", notes, "n-same", 1, map[string]any{"text": "A: 45 motors"}))[0],
		"a-2", engine.StatusApplied, 2)
	b = f.push(f.eng, rep1, devB, update("b-2", notes, "n-same", 1, map[string]any{"text": "B: 50 motors"}))[0]
	if b.Status != engine.StatusMerged || b.Version != 2 || len(b.Conflicts) != 1 {
		t.Fatalf("B's edit of the same field = %s, want merged at v2 with one conflict", mustJSON(b))
	}
	c := b.Conflicts[0]
	if c.Field != "text" || !sameJSON(c.Yours, "B: 50 motors") || !sameJSON(c.Kept, "A: 45 motors") || c.KeptVersion != 2 {
		t.Errorf("conflict = %s, want text yours %q kept %q at v2", mustJSON(c), "B: 50 motors", "A: 45 motors")
	}
	wantDoc(t, "B's merged doc after a lost conflict", b.Doc, noteDoc("A: 45 motors"))
	// Offered again from the version it now holds, B's value applies.
	wantOutcome(t, f.push(f.eng, rep1, devB, update("b-3", notes, "n-same", 2, map[string]any{"text": "B: 50 motors"}))[0],
		"b-3", engine.StatusApplied, 3)

	// One conflicting and one free field: the free one applies.
	wantOutcome(t, f.push(f.eng, rep1, devA, update("a-3", notes, "n-mixed", 1, map[string]any{"text": "A's text"}))[0],
		"a-3", engine.StatusApplied, 2)
	b = f.push(f.eng, rep1, devB, update("b-4", notes, "n-mixed", 1,
		map[string]any{"text": "B's text", "tags": []string{"from-b"}}))[0]
	mixed := noteDoc("A's text")
	mixed["tags"] = []string{"from-b"}
	if b.Status != engine.StatusMerged || b.Version != 3 || len(b.Conflicts) != 1 || b.Conflicts[0].Field != "text" {
		t.Errorf("B's half-conflicting edit = %s, want merged v3 with a conflict on text", mustJSON(b))
	}
	wantDoc(t, "B's half-conflicting merge", b.Doc, mixed)

	// A device's own queue: successive edits from the same stale base, in
	// separate pushes and in one batch, all apply in order.
	wantOutcome(t, f.push(f.eng, rep1, devA, update("a-4", notes, "n-own", 1, map[string]any{"text": "Draft 2"}))[0],
		"a-4", engine.StatusApplied, 2)
	own := f.push(f.eng, rep1, devA,
		update("a-5", notes, "n-own", 1, map[string]any{"text": "Draft 3"}),
		update("a-6", notes, "n-own", 1, map[string]any{"text": "Final", "tags": []string{"done"}}))
	wantOutcome(t, own[0], "a-5", engine.StatusApplied, 3)
	wantOutcome(t, own[1], "a-6", engine.StatusApplied, 4)

	changes, _ := f.pullAll(f.eng, rep1, "", 100)
	got := byID(t, changes)
	wantPut(t, got[notes+"/n-diff"], notes, "n-diff", 3, both)
	wantPut(t, got[notes+"/n-same"], notes, "n-same", 3, noteDoc("B: 50 motors"))
	wantPut(t, got[notes+"/n-mixed"], notes, "n-mixed", 3, mixed)
	final := noteDoc("Final")
	final["tags"] = []string{"done"}
	wantPut(t, got[notes+"/n-own"], notes, "n-own", 4, final)
}

// testDelete: tombstones, and the rejections around missing, deleted and
// existing documents and impossible base versions.
func testDelete(f *fixture) {
	t := f.t
	outs := f.push(f.eng, rep1, devA, createNote("m-1", "n-1", "To be deleted"), createNote("m-2", "n-2", "Stays"))
	wantOutcome(t, outs[0], "m-1", engine.StatusApplied, 1)
	_, cp := f.pullAll(f.eng, rep1, "", 100)

	wantOutcome(t, f.push(f.eng, rep1, devA, del("m-3", notes, "n-1", 1))[0], "m-3", engine.StatusApplied, 2)
	res := f.pull(f.eng, rep1, cp, 100)
	if len(res.Changes) != 1 {
		t.Fatalf("pull after delete = %v, want the tombstone of n-1", ids(res.Changes))
	}
	if c := res.Changes[0]; c.ID != "n-1" || !c.Deleted || c.Evicted || c.Version != 2 || len(c.Body) != 0 {
		t.Errorf("tombstone = %s/%s v%d deleted=%v evicted=%v body=%s; want delete v2 without doc",
			c.Collection, c.ID, c.Version, c.Deleted, c.Evicted, c.Body)
	}
	cp = res.Checkpoint

	outs = f.push(f.eng, rep1, devB,
		update("m-4", notes, "n-1", 2, map[string]any{"text": "edited offline"}),
		del("m-5", notes, "n-1", 1),
		update("m-6", notes, "n-missing", 1, map[string]any{"text": "x"}),
		del("m-7", notes, "n-missing", 1),
		createNote("m-8", "n-2", "Same id again"),
		createNote("m-9", "n-1", "Reusing a deleted id"),
		update("m-10", notes, "n-2", 5, map[string]any{"text": "from the future"}),
		del("m-11", notes, "n-2", 2),
	)
	wantRejected(t, outs[0], "m-4", engine.CodeDocumentDeleted, "/id")
	wantOutcome(t, outs[1], "m-5", engine.StatusApplied, 2)
	wantRejected(t, outs[2], "m-6", engine.CodeNotFound, "/id")
	wantRejected(t, outs[3], "m-7", engine.CodeNotFound, "/id")
	wantRejected(t, outs[4], "m-8", engine.CodeAlreadyExists, "/id")
	wantRejected(t, outs[5], "m-9", engine.CodeAlreadyExists, "/id")
	wantRejected(t, outs[6], "m-10", engine.CodeBadBaseVersion, "/base_version")
	wantRejected(t, outs[7], "m-11", engine.CodeBadBaseVersion, "/base_version")

	// None of that wrote anything: no new version, no resurrection.
	if res := f.pull(f.eng, rep1, cp, 100); len(res.Changes) != 0 {
		t.Errorf("rejections and a repeated delete wrote changes: %v", ids(res.Changes))
	}
	changes, _ := f.pullAll(f.eng, rep1, "", 100)
	got := byID(t, changes)
	if c := got[notes+"/n-1"]; !c.Deleted || c.Version != 2 {
		t.Errorf("n-1 after everything: v%d deleted=%v, want the v2 tombstone", c.Version, c.Deleted)
	}
	wantPut(t, got[notes+"/n-2"], notes, "n-2", 1, noteDoc("Stays"))
}
