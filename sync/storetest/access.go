package storetest

import (
	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
)

const customers = fieldsales.CollCustomers

// testIsolation: a user pulls and changes only their own scope, and an
// organisation is a separate world even for the same user id, document id,
// device id and mutation id.
func testIsolation(f *fixture) {
	t := f.t
	note := noteDoc("Acme wants 40 motors")
	wantOutcome(t, f.push(f.eng, rep1, devA, create("m-1", notes, "n-1", note))[0], "m-1", engine.StatusApplied, 1)

	// Same organisation, another rep: sees nothing, may change nothing.
	if changes, _ := f.pullAll(f.eng, rep2, "", 100); len(changes) != 0 {
		t.Errorf("rep2 pulled rep1's notes: %v", ids(changes))
	}
	outs := f.push(f.eng, rep2, devB,
		update("m-1", notes, "n-1", 1, map[string]any{"text": "overwritten by rep2"}),
		del("m-2", notes, "n-1", 1),
		createNote("m-3", "n-1", "rep2 takes the id"))
	wantRejected(t, outs[0], "m-1", engine.CodeForbidden, "/id")
	wantRejected(t, outs[1], "m-2", engine.CodeForbidden, "/id")
	wantRejected(t, outs[2], "m-3", engine.CodeAlreadyExists, "/id")

	// Another organisation, a user with the same id: nothing of org one.
	twin := engine.Actor{Org: otherOrg, User: rep1.User, Roles: rep1.Roles}
	if changes, _ := f.pullAll(f.eng, twin, "", 100); len(changes) != 0 {
		t.Errorf("a user of another org pulled %v", ids(changes))
	}
	outs = f.push(f.eng, twin, devA,
		update("m-2", notes, "n-1", 1, map[string]any{"text": "cross-tenant write"}),
		del("m-3", notes, "n-1", 1))
	wantRejected(t, outs[0], "m-2", engine.CodeNotFound, "/id")
	wantRejected(t, outs[1], "m-3", engine.CodeNotFound, "/id")
	// The same device and mutation id as rep1's create in org one is a new
	// mutation there, and the same document id is a new document.
	twinNote := noteDoc("Globex note")
	wantOutcome(t, f.push(f.eng, twin, devA, create("m-1", notes, "n-1", twinNote))[0], "m-1", engine.StatusApplied, 1)

	changes, _ := f.pullAll(f.eng, rep1, "", 100)
	if len(changes) != 1 {
		t.Fatalf("rep1's feed = %v, want n-1", ids(changes))
	}
	wantPut(t, changes[0], notes, "n-1", 1, note)
	changes, _ = f.pullAll(f.eng, twin, "", 100)
	if len(changes) != 1 {
		t.Fatalf("the other org's feed = %v, want its own n-1", ids(changes))
	}
	wantPut(t, changes[0], notes, "n-1", 1, twinNote)
}

// testAssignment: customers follow their assigned reps. Gaining a customer
// backfills it, losing it evicts it, and getting it back brings it again.
func testAssignment(f *fixture) {
	t := f.t
	_, cp1 := f.pullAll(f.eng, rep1, "", 100)
	_, cp2 := f.pullAll(f.eng, rep2, "", 100)
	acme := map[string]any{"name": "Acme Motors", "segment": "OEM", "assigned_reps": []string{"u-rep1"}}
	wantOutcome(t, f.push(f.eng, admin, devA, create("m-1", customers, "cust-1", acme))[0], "m-1", engine.StatusApplied, 1)
	// Only admins and managers assign.
	wantRejected(t, f.push(f.eng, rep1, devA, update("r-1", customers, "cust-1", 1,
		map[string]any{"assigned_reps": []string{"u-rep1", "u-rep9"}}))[0], "r-1", engine.CodeFieldNotWritable, "/fields/assigned_reps")

	changes, cp1 := f.pullAll(f.eng, rep1, cp1, 100)
	if len(changes) != 1 {
		t.Fatalf("rep1 after assignment = %v, want cust-1", ids(changes))
	}
	wantPut(t, changes[0], customers, "cust-1", 1, acme)
	if changes, _ := f.pullAll(f.eng, rep2, cp2, 100); len(changes) != 0 {
		t.Errorf("rep2 pulled a customer assigned to rep1: %v", ids(changes))
	}

	// Reassigned to rep2: rep2 gets it (created before rep2's checkpoint),
	// rep1 is told to drop it.
	wantOutcome(t, f.push(f.eng, admin, devA, update("m-2", customers, "cust-1", 1,
		map[string]any{"assigned_reps": []string{"u-rep2"}}))[0], "m-2", engine.StatusApplied, 2)
	toRep2 := map[string]any{"name": "Acme Motors", "segment": "OEM", "assigned_reps": []string{"u-rep2"}}
	changes, cp2 = f.pullAll(f.eng, rep2, cp2, 100)
	if len(changes) != 1 {
		t.Fatalf("rep2 after reassignment = %v, want cust-1", ids(changes))
	}
	wantPut(t, changes[0], customers, "cust-1", 2, toRep2)
	changes, cp1 = f.pullAll(f.eng, rep1, cp1, 100)
	if len(changes) != 1 {
		t.Fatalf("rep1 after losing the customer = %v, want an eviction of cust-1", ids(changes))
	}
	if c := changes[0]; c.Collection != customers || c.ID != "cust-1" || !c.Evicted || c.Deleted || len(c.Body) != 0 {
		t.Errorf("rep1's change = %s/%s evicted=%v deleted=%v body=%s, want an eviction without doc",
			c.Collection, c.ID, c.Evicted, c.Deleted, c.Body)
	}
	// A write queued on rep1's phone before it learned is refused, not lost.
	wantRejected(t, f.push(f.eng, rep1, devA, update("r-2", customers, "cust-1", 1,
		map[string]any{"notes": "visited Monday"}))[0], "r-2", engine.CodeForbidden, "/id")
	// The eviction is delivered once: rep1's next pull is empty.
	if changes, _ := f.pullAll(f.eng, rep1, cp1, 100); len(changes) != 0 {
		t.Errorf("rep1 pulled again after the eviction: %v", ids(changes))
	}

	// Back to rep1: rep1 gets it again, rep2 loses it.
	wantOutcome(t, f.push(f.eng, admin, devA, update("m-3", customers, "cust-1", 2,
		map[string]any{"assigned_reps": []string{"u-rep1"}}))[0], "m-3", engine.StatusApplied, 3)
	back := map[string]any{"name": "Acme Motors", "segment": "OEM", "assigned_reps": []string{"u-rep1"}}
	changes, _ = f.pullAll(f.eng, rep1, cp1, 100)
	if len(changes) != 1 {
		t.Fatalf("rep1 after getting the customer back = %v, want cust-1", ids(changes))
	}
	wantPut(t, changes[0], customers, "cust-1", 3, back)
	changes, _ = f.pullAll(f.eng, rep2, cp2, 100)
	if len(changes) != 1 || !changes[0].Evicted || changes[0].ID != "cust-1" {
		t.Errorf("rep2 after losing the customer = %+v, want an eviction of cust-1", changes)
	}
	// A fresh device of rep1 gets the customer as a put, and rep1 may edit it.
	changes, _ = f.pullAll(f.eng, rep1, "", 100)
	if len(changes) != 1 {
		t.Fatalf("rep1's first sync = %v, want cust-1", ids(changes))
	}
	wantPut(t, changes[0], customers, "cust-1", 3, back)
	wantOutcome(t, f.push(f.eng, rep1, devA, update("r-3", customers, "cust-1", 3,
		map[string]any{"notes": "visited Monday"}))[0], "r-3", engine.StatusApplied, 4)
}
