package storetest

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// racingStore runs before once, ahead of the first push from device reaches
// the store: a write that lands between the engine's read of the
// customers a batch hangs off and the store's atomic unit, the window that
// settle's re-check after the push exists for.
type racingStore struct {
	engine.Store
	device string
	before func()
	once   sync.Once
}

func (s *racingStore) Push(ctx context.Context, b engine.PushBatch, decide engine.Decide) ([]engine.Outcome, error) {
	if b.Device == s.device {
		s.once.Do(s.before)
	}
	return s.Store.Push(ctx, b, decide)
}

// testStaleStampInBatch: a note is stamped from its customer as read before
// the push; the admin takes the customer from rep2 before the push's atomic
// unit; later in the same batch rep1 edits that customer. The note's keys
// must follow the customer as it is, not as it was read: rep2 must not see
// the note. (The batch's own write of the customer refreshes the engine's
// view of it; settle once compared against that refreshed view and took the
// note for stamped from the current customer, so it kept rep2's key for
// good.) Both the device path and Upsert's.
func testStaleStampInBatch(f *fixture) {
	t := f.t
	for _, tc := range []struct {
		name, device string
		write        func(e *engine.Engine, cust, note string)
	}{
		{"push", "dev-race", func(e *engine.Engine, cust, note string) {
			outs := f.push(e, rep1, "dev-race",
				createNoteOn("m-note", note, cust, "Stamped from a stale read"),
				update("m-cust", customers, cust, 1, map[string]any{"segment": "OEM"}))
			wantOutcome(t, outs[0], "m-note", engine.StatusApplied, 1)
			wantOutcome(t, outs[1], "m-cust", engine.StatusMerged, 3)
		}},
		{"upsert", "server:race", func(e *engine.Engine, cust, note string) {
			outs, err := e.Upsert(f.ctx, admin, "race", []engine.UpsertDoc{
				{Collection: notes, ID: note, Fields: map[string]json.RawMessage{
					"customer_id": mustJSON(cust), "text": mustJSON("Imported")}},
				{Collection: customers, ID: cust, Fields: map[string]json.RawMessage{"segment": mustJSON("OEM")}},
			})
			if err != nil {
				t.Fatalf("upsert: %v", err)
			}
			for _, o := range outs {
				if o.Status != engine.StatusApplied && o.Status != engine.StatusMerged {
					t.Fatalf("upsert: %+v", o)
				}
			}
		}},
	} {
		cust, note := "cust-race-"+tc.name, "n-race-"+tc.name
		wantOutcome(t, f.push(f.eng, admin, devA, create("m-"+cust, customers, cust,
			map[string]any{"name": "Racing " + tc.name, "assigned_reps": []string{rep1.User, rep2.User}}))[0],
			"m-"+cust, engine.StatusApplied, 1)
		racing := &racingStore{Store: f.store, device: tc.device, before: func() {
			outs := f.push(f.eng, admin, devA, update("m-take-"+cust, customers, cust, 1,
				map[string]any{"assigned_reps": []string{rep1.User}}))
			wantOutcome(t, outs[0], "m-take-"+cust, engine.StatusApplied, 2)
		}}
		e, err := engine.New(f.ctx, engine.Config{Rules: fieldsales.New(fieldsales.VisitRules{}), Store: racing, Schemas: f.schemas, Now: clock})
		if err != nil {
			t.Fatalf("engine.New: %v", err)
		}
		tc.write(e, cust, note)
		got, err := f.store.Get(f.ctx, org, []engine.DocRef{{Collection: notes, ID: note}})
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		d := got[engine.DocRef{Collection: notes, ID: note}]
		if d == nil {
			t.Fatalf("%s: %s was not written", tc.name, note)
		}
		if slices.Contains(d.Scopes, fieldsales.UserScope(rep2.User)) || !slices.Contains(d.Scopes, fieldsales.UserScope(rep1.User)) {
			t.Errorf("%s: %s has keys %v; its customer is rep1's alone now", tc.name, note, d.Scopes)
		}
		changes, _ := f.pullAll(f.eng, rep2, "", 100)
		if c, ok := byID(t, changes)[notes+"/"+note]; ok && c.Op() == engine.ChangePut {
			t.Errorf("%s: rep2 pulls %s, whose customer it lost", tc.name, note)
		}
	}
}

// failingPulls fails the store's pulls while fail is set: the engine's
// read of a customer's history after the push that reassigned it, standing
// in for a server that crashed between the commit and the restamp.
type failingPulls struct {
	engine.Store
	fail atomic.Bool
}

func (s *failingPulls) Pull(ctx context.Context, q engine.PullQuery) (engine.PullPage, error) {
	if s.fail.Load() {
		return engine.PullPage{}, engine.Errorf(engine.KindUnavailable, engine.CodeUnavailable, "", "injected: the server went down")
	}
	return s.Store.Pull(ctx, q)
}

// testInterruptedReassignment: an admin's phone reassigns a customer; the
// push commits, but the restamp of the customer's history does not happen
// (the request fails after the commit). The phone retries the same push;
// the retry is answered from the recorded outcome and must finish the
// restamp: the new rep pulls the old note, the old rep is told to drop it.
func testInterruptedReassignment(f *fixture) {
	t := f.t
	const cust, note = "cust-cut", "n-cut"
	wantOutcome(t, f.push(f.eng, admin, devA, create("m-"+cust, customers, cust,
		map[string]any{"name": "Cut short", "assigned_reps": []string{rep1.User}}))[0], "m-"+cust, engine.StatusApplied, 1)
	wantOutcome(t, f.push(f.eng, rep1, devA, createNoteOn("m-"+note, note, cust, "Before the reassignment"))[0],
		"m-"+note, engine.StatusApplied, 1)

	failing := &failingPulls{Store: f.store}
	e, err := engine.New(f.ctx, engine.Config{Rules: fieldsales.New(fieldsales.VisitRules{}), Store: failing, Schemas: f.schemas, Now: clock})
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	move := update("m-move", customers, cust, 1, map[string]any{"assigned_reps": []string{rep2.User}})
	failing.fail.Store(true)
	if _, err := e.Push(f.ctx, admin, engine.PushRequest{DeviceID: devB, Mutations: []engine.Mutation{move}}); err == nil {
		t.Fatal("the push whose restamp failed was answered")
	}
	got, err := f.store.Get(f.ctx, org, []engine.DocRef{{Collection: notes, ID: note}})
	if err != nil {
		t.Fatal(err)
	}
	if d := got[engine.DocRef{Collection: notes, ID: note}]; d == nil || slices.Contains(d.Scopes, fieldsales.UserScope(rep2.User)) {
		t.Fatalf("the setup did not cut the restamp short: %+v", d)
	}

	failing.fail.Store(false)
	outs := f.push(e, admin, devB, move) // the phone's retry of the same mutation
	wantOutcome(t, outs[0], "m-move", engine.StatusApplied, 2)
	changes, _ := f.pullAll(f.eng, rep2, "", 100)
	if c, ok := byID(t, changes)[notes+"/"+note]; !ok || c.Op() != engine.ChangePut {
		t.Errorf("after the retry rep2 does not pull %s, its new customer's note", note)
	}
	changes, _ = f.pullAll(f.eng, rep1, "", 100)
	if c, ok := byID(t, changes)[notes+"/"+note]; ok && c.Op() == engine.ChangePut {
		t.Errorf("after the retry rep1 still pulls %s", note)
	}
}
