package storetest

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// testHistoryMoves: a customer's history follows the customer. When it is
// reassigned, the new rep's next pull brings every document attached to
// it, old ones included; the old rep's next pull evicts them all, notes the
// old rep wrote included; and the old rep's late mutations get explicit
// answers.
func testHistoryMoves(f *fixture) {
	t := f.t
	x := map[string]any{"name": "Xenon Pumps", "assigned_reps": []string{rep1.User}}
	wantOutcome(t, f.push(f.eng, admin, devA, create("m-x", customers, "cust-x", x))[0], "m-x", engine.StatusApplied, 1)
	_, cp2 := f.pullAll(f.eng, rep2, "", 100)
	outs := f.push(f.eng, rep1, devA,
		createNoteOn("m-1", "n-x1", "cust-x", "Needs pumps"),
		createNoteOn("m-2", "n-x2", "cust-x", "Price sensitive"),
		createNote("m-3", "n-own", "On rep1's other customer"))
	for i, o := range outs {
		wantOutcome(t, o, outs[i].MutationID, engine.StatusApplied, 1)
	}
	changes, cp1 := f.pullAll(f.eng, rep1, "", 100)
	if got := ids(changes); !slices.Equal(got, []string{"customers/cust-x", notes + "/n-x1", notes + "/n-x2", notes + "/n-own"}) {
		t.Fatalf("rep1 before = %v", got)
	}
	// rep2 may not attach to a customer it does not see; a customer id that
	// does not exist gets the same answer.
	outs = f.push(f.eng, rep2, devB, createNoteOn("m-1", "n-x3", "cust-x", "Not mine"),
		createNoteOn("m-2", "n-x4", "cust-nobody", "No such customer"))
	wantRejected(t, outs[0], "m-1", fieldsales.CodeCustomerNotInScope, "/doc/customer_id")
	wantRejected(t, outs[1], "m-2", fieldsales.CodeCustomerNotInScope, "/doc/customer_id")
	if _, err := f.eng.Upsert(f.ctx, admin, "admin", []engine.UpsertDoc{{Collection: customers, ID: "cust-x",
		Fields: map[string]json.RawMessage{"assigned_reps": mustJSON([]string{rep2.User})}}}); err != nil {
		t.Fatalf("reassign: %v", err)
	}
	changes, _ = f.pullAll(f.eng, rep2, cp2, 100)
	got := byID(t, changes)
	for _, id := range []string{"customers/cust-x", notes + "/n-x1", notes + "/n-x2"} {
		if c, ok := got[id]; !ok || c.Op() != engine.ChangePut {
			t.Errorf("rep2 after the reassignment: %s = %+v, want a put", id, c)
		}
	}
	if len(got) != 3 {
		t.Errorf("rep2 after the reassignment = %v, want the customer and its two notes", ids(changes))
	}
	wantPut(t, got[notes+"/n-x1"], notes, "n-x1", 1, noteDocOn("cust-x", "Needs pumps"))
	changes, _ = f.pullAll(f.eng, rep1, cp1, 100)
	got = byID(t, changes)
	for _, id := range []string{"customers/cust-x", notes + "/n-x1", notes + "/n-x2"} {
		if c, ok := got[id]; !ok || c.Op() != engine.ChangeEvict {
			t.Errorf("rep1 after the reassignment: %s = %+v, want an eviction", id, c)
		}
	}
	if len(got) != 3 {
		t.Errorf("rep1 after the reassignment = %v, want three evictions", ids(changes))
	}
	// rep1's mutations queued offline before it heard of the change.
	outs = f.push(f.eng, rep1, devA,
		update("m-4", notes, "n-x1", 1, map[string]any{"text": "Edited offline"}),
		createNoteOn("m-5", "n-x5", "cust-x", "Written offline"),
		update("m-6", notes, "n-own", 1, map[string]any{"text": "Still mine"}))
	wantRejected(t, outs[0], "m-4", engine.CodeForbidden, "/id")
	wantRejected(t, outs[1], "m-5", fieldsales.CodeCustomerNotInScope, "/doc/customer_id")
	wantOutcome(t, outs[2], "m-6", engine.StatusApplied, 2)
	// A note cannot change customers: its readers would keep it.
	outs = f.push(f.eng, rep1, devA, update("m-7", notes, "n-own", 2, map[string]any{"customer_id": "cust-x"}))
	wantRejected(t, outs[0], "m-7", engine.CodeImmutableField, "/fields/customer_id")
	// Repeating the assignment changes nothing.
	before, _ := f.pullAll(f.eng, rep2, cp2, 100)
	if _, err := f.eng.Upsert(f.ctx, admin, "admin", []engine.UpsertDoc{{Collection: customers, ID: "cust-x",
		Fields: map[string]json.RawMessage{"assigned_reps": mustJSON([]string{rep2.User})}}}); err != nil {
		t.Fatalf("reassign again: %v", err)
	}
	if after, _ := f.pullAll(f.eng, rep2, cp2, 100); len(after) != len(before) {
		t.Errorf("a repeated assignment rewrote documents: %d changes, then %d", len(before), len(after))
	}
}

// staticDirectory is the engine's view of a directory for the suite (the
// directory's own storage has its own contract suite in identity).
type staticDirectory map[string]engine.Member

func (d staticDirectory) Member(_ context.Context, org, user string) (engine.Member, bool, error) {
	m, ok := d[org+"/"+user]
	return m, ok, nil
}

// testRoles: managers read their reps, admins the organisation, back-office
// roles their follow-ups and what they concern; a disabled user reads
// nothing; and a changed read set makes the next pull start over.
func testRoles(f *fixture) {
	t := f.t
	dir := staticDirectory{
		org + "/u-mgr":   {Roles: []string{"manager"}, Reports: []string{rep1.User}},
		org + "/u-desk":  {Roles: []string{"order_desk"}},
		org + "/u-gone":  {Roles: []string{"rep"}, Disabled: true},
		org + "/u-admin": {Roles: []string{"admin"}},
	}
	e, err := engine.New(f.ctx, engine.Config{Rules: fieldsales.New(fieldsales.VisitRules{}), Store: f.store, Schemas: f.schemas, Directory: dir, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	mgr := engine.Actor{Org: org, User: "u-mgr", Roles: []string{"rep"}} // the directory's roles win
	desk := engine.Actor{Org: org, User: "u-desk"}
	gone := engine.Actor{Org: org, User: "u-gone", Roles: []string{"rep"}}

	f.push(e, rep1, devA, createNote("m-1", "n-1", "rep1's note"))
	f.push(e, rep2, devA, createNoteOn("m-1", "n-2", cust2, "rep2's note"))
	if _, err := e.Upsert(f.ctx, admin, "desk", []engine.UpsertDoc{{Collection: fieldsales.CollFollowUps, ID: "f-1",
		Fields: map[string]json.RawMessage{"activity": mustJSON("enter_order_in_erp"), "customer_id": mustJSON(cust2),
			"order_id": mustJSON("o-9"), "responsible_role": mustJSON("order_desk"), "status": mustJSON("open")}}}); err != nil {
		t.Fatal(err)
	}
	all := func(a engine.Actor) map[string]engine.Change {
		changes, _ := f.pullAll(e, a, "", 100)
		return byID(t, changes)
	}
	wantIDs := func(who string, got map[string]engine.Change, want ...string) {
		t.Helper()
		var have []string
		for id := range got {
			have = append(have, id)
		}
		slices.Sort(have)
		slices.Sort(want)
		if !slices.Equal(have, want) {
			t.Errorf("%s pulls %v, want %v", who, have, want)
		}
	}
	// The manager sees rep1's customer and note (rep1 reports to them), not rep2's.
	res, err := e.Pull(f.ctx, mgr, engine.PullRequest{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	wantIDs("the manager", byID(t, res.Changes), "customers/"+cust1, notes+"/n-1")
	// The order desk sees its follow-up and the customer it concerns.
	wantIDs("the order desk", all(desk), "follow_ups/f-1", "customers/"+cust2)
	// A disabled user reads and writes nothing.
	if _, err := e.Pull(f.ctx, gone, engine.PullRequest{}); engine.ErrorCode(err) != engine.CodeUserDisabled {
		t.Errorf("disabled user's pull: %v, want %s", err, engine.CodeUserDisabled)
	}
	if _, err := e.Push(f.ctx, gone, engine.PushRequest{DeviceID: devA, Mutations: []engine.Mutation{createNote("m-1", "n-3", "x")}}); engine.ErrorCode(err) != engine.CodeUserDisabled {
		t.Errorf("disabled user's push: %v, want %s", err, engine.CodeUserDisabled)
	}
	// rep2 joins the manager's team: the manager's next pull starts over and
	// brings rep2's documents, old ones included.
	dir[org+"/u-mgr"] = engine.Member{Roles: []string{"manager"}, Reports: []string{rep1.User, rep2.User}}
	next, err := e.Pull(f.ctx, mgr, engine.PullRequest{Checkpoint: res.Checkpoint, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if !next.Reset {
		t.Errorf("a pull after the read set changed is not marked reset")
	}
	wantIDs("the manager after rep2 joined", byID(t, next.Changes), "customers/"+cust1, notes+"/n-1",
		"customers/"+cust2, notes+"/n-2", "follow_ups/f-1")
	if again, err := e.Pull(f.ctx, mgr, engine.PullRequest{Checkpoint: next.Checkpoint, Limit: 100}); err != nil || again.Reset || len(again.Changes) != 0 {
		t.Errorf("the pull after the reset: %d changes, reset %v, err %v; want nothing new", len(again.Changes), again.Reset, err)
	}
	// Only a manager writes a visit log's review.
	visit := map[string]any{"customer_id": cust1, "check_in": map[string]any{"at": "2026-11-29T09:00:00Z"}}
	f.push(e, rep1, devA, create("m-v", fieldsales.CollVisitLogs, "v-1", visit))
	review := map[string]any{"review": map[string]any{"status": "approved", "comment": "Good"}}
	wantRejected(t, f.push(e, rep1, devA, update("m-r", fieldsales.CollVisitLogs, "v-1", 1, review))[0], "m-r", engine.CodeFieldNotWritable, "/fields/review")
	wantOutcome(t, f.push(e, mgr, devA, update("m-r", fieldsales.CollVisitLogs, "v-1", 1, review))[0], "m-r", engine.StatusApplied, 2)
}

// testGet: Get returns stored documents, tombstones included, only from the
// organisation asked.
func testGet(f *fixture) {
	t := f.t
	f.push(f.eng, rep1, devA, createNote("m-1", "n-1", "kept"), createNote("m-2", "n-2", "deleted"))
	f.push(f.eng, rep1, devA, del("m-3", notes, "n-2", 1))
	refs := []engine.DocRef{{Collection: notes, ID: "n-1"}, {Collection: notes, ID: "n-2"}, {Collection: notes, ID: "n-none"},
		{Collection: customers, ID: cust1}}
	got, err := f.store.Get(f.ctx, org, refs)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("Get = %d documents, want 3", len(got))
	}
	if d := got[refs[0]]; d.Version != 1 || d.Deleted || !sameJSON(d.Body, noteDoc("kept")) || d.Owner != rep1.User ||
		!slices.Contains(d.Scopes, fieldsales.UserScope(rep1.User)) || d.Seq == 0 {
		t.Errorf("n-1 = %+v", d)
	}
	if d := got[refs[1]]; !d.Deleted || d.Version != 2 {
		t.Errorf("n-2 = %+v, want a tombstone at version 2", d)
	}
	if other, err := f.store.Get(f.ctx, otherOrg, refs[:2]); err != nil || len(other) != 0 {
		t.Errorf("Get in the other org = %v, %v; want nothing", other, err)
	}
}
