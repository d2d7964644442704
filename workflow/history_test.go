package workflow_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/workflow"
)

// history reads follow-up id's recorded history.
func (r *rig) history(t *testing.T, id string) []fieldsales.FollowUpEvent {
	t.Helper()
	d, _ := r.doc(t, fieldsales.CollFollowUps, id)
	var fu fieldsales.FollowUp
	if err := json.Unmarshal(d.Body, &fu); err != nil {
		t.Fatal(err)
	}
	return fu.History
}

func wantHistory(t *testing.T, id string, got []fieldsales.FollowUpEvent, want ...fieldsales.FollowUpEvent) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: history\n%+v\nwant\n%+v", id, got, want)
	}
}

func ev(at, action, by, reason string) fieldsales.FollowUpEvent {
	return fieldsales.FollowUpEvent{At: at, Action: action, By: by, Reason: reason}
}

// Every action on a follow-up, and every server move of it, is recorded
// with who did it and when: the console's "who did what when".
func TestFollowUpHistoryRecordsWhoDidWhatWhen(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	ctx := t.Context()
	r.submit(t, "o-1") // at 08:00
	const avail, erp = "fu-o-1-availability_check", "fu-o-1-erp_entry"
	wantHistory(t, avail, r.history(t, avail), ev("2026-12-01T08:00:00Z", workflow.HistCreated, "", ""))
	planner := engine.Actor{Org: org, User: "dp-1", Roles: []string{"demand_planning"}}
	act := func(a workflow.Action) {
		t.Helper()
		r.clock.add(time.Minute)
		if _, err := r.wf.Act(ctx, planner, avail, a); err != nil {
			t.Fatalf("%s: %v", a.Kind, err)
		}
	}
	act(workflow.Action{Kind: workflow.ActClaim})
	act(workflow.Action{Kind: workflow.ActBlock, Reason: "stock count running"})
	act(workflow.Action{Kind: workflow.ActStart})
	act(workflow.Action{Kind: workflow.ActComplete, Result: map[string]any{"available": true}, Note: "all there"})
	// A retried completion (a lost reply) records nothing twice.
	if _, err := r.wf.Act(ctx, planner, avail, workflow.Action{Kind: workflow.ActComplete, Result: map[string]any{"available": true}}); err != nil {
		t.Fatal(err)
	}
	wantHistory(t, avail, r.history(t, avail),
		ev("2026-12-01T08:00:00Z", workflow.HistCreated, "", ""),
		ev("2026-12-01T08:01:00Z", workflow.HistClaimed, "dp-1", ""),
		ev("2026-12-01T08:02:00Z", workflow.HistBlocked, "dp-1", "stock count running"),
		ev("2026-12-01T08:03:00Z", workflow.HistStarted, "dp-1", ""),
		ev("2026-12-01T08:04:00Z", workflow.HistCompleted, "dp-1", ""))
	// erp_entry's 8 h run from 08:04; the sweep escalates it at 17:00.
	r.clock.add(9*time.Hour - 4*time.Minute)
	if n, err := r.wf.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	// The rep cancels the order: what is not done is cancelled, and says why.
	r.clock.add(time.Hour)
	o, _ := r.doc(t, "orders", "o-1")
	outs, err := r.eng.Push(ctx, engine.Actor{Org: org, User: "rep-1", Roles: []string{"rep"}},
		engine.PushRequest{DeviceID: "phone", Mutations: []engine.Mutation{{ID: "m-cancel", Collection: "orders", DocID: "o-1",
			Op: engine.OpUpdate, BaseVersion: o.Version, Fields: map[string]json.RawMessage{"status": json.RawMessage(`"cancelled"`)}}}})
	if err != nil || outs[0].Status == engine.StatusRejected {
		t.Fatalf("cancel: %v %+v", err, outs)
	}
	wantHistory(t, erp, r.history(t, erp),
		ev("2026-12-01T08:00:00Z", workflow.HistCreated, "", ""),
		ev("2026-12-01T17:00:00Z", workflow.HistEscalated, "", ""),
		ev("2026-12-01T18:00:00Z", workflow.HistCancelled, "", "the order was cancelled"))
	if h := r.history(t, avail); len(h) != 5 {
		t.Fatalf("the done follow-up's history changed with the cancel: %+v", h)
	}
}

// A history holds the first entry and the latest: a follow-up blocked and
// started all day keeps how it came to be and what happened last.
func TestFollowUpHistoryIsBounded(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	ctx := t.Context()
	r.submit(t, "o-1")
	const avail = "fu-o-1-availability_check"
	planner := engine.Actor{Org: org, User: "dp-1", Roles: []string{"demand_planning"}}
	for i := range 60 {
		a := workflow.Action{Kind: workflow.ActBlock, Reason: "waiting " + itoa(i)}
		if i%2 == 1 {
			a = workflow.Action{Kind: workflow.ActStart}
		}
		if _, err := r.wf.Act(ctx, planner, avail, a); err != nil {
			t.Fatalf("action %d: %v", i, err)
		}
	}
	h := r.history(t, avail)
	if len(h) != fieldsales.MaxFollowUpHistory || h[0].Action != workflow.HistCreated ||
		h[len(h)-1].Action != workflow.HistStarted || h[len(h)-2].Reason != "waiting 58" || h[1].Action != workflow.HistStarted || h[2].Reason != "waiting 12" {
		t.Fatalf("bounded history: %d entries, first %+v, third %+v, last %+v", len(h), h[0], h[2], h[len(h)-1])
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// interleave runs another writer between a read of one follow-up and the
// write that follows it, once armed: the race between the overdue sweep
// and a person acting on the same follow-up, made deterministic.
type interleave struct {
	workflow.Docs
	id    string
	armed atomic.Bool
	then  func()
}

func (x *interleave) Get(ctx context.Context, org string, refs []engine.DocRef) (map[engine.DocRef]*engine.Document, error) {
	got, err := x.Docs.Get(ctx, org, refs)
	if err == nil && slices.Contains(refs, engine.DocRef{Collection: fieldsales.CollFollowUps, ID: x.id}) && x.armed.CompareAndSwap(true, false) {
		x.then()
	}
	return got, err
}

// Neither of two writers racing on one follow-up drops the other's history
// entry: each writes from the version it read, and the loser decides again.
func TestFollowUpHistoryKeepsRacingWrites(t *testing.T) {
	t.Parallel()
	const avail = "fu-o-1-availability_check"
	planner := engine.Actor{Org: org, User: "dp-1", Roles: []string{"demand_planning"}}
	t.Run("escalated between a claim's read and its write", func(t *testing.T) {
		t.Parallel()
		x := &interleave{id: avail}
		r := newRigWith(t, nil, func(d workflow.Docs) workflow.Docs { x.Docs = d; return x })
		ctx := t.Context()
		r.submit(t, "o-1")
		r.clock.add(5 * time.Hour) // availability_check (4 h) is overdue
		x.then = func() {
			if n, err := r.wf.Sweep(ctx); err != nil || n != 1 {
				t.Errorf("sweep inside the claim: %d %v", n, err)
			}
		}
		x.armed.Store(true)
		if _, err := r.wf.Act(ctx, planner, avail, workflow.Action{Kind: workflow.ActClaim}); err != nil {
			t.Fatalf("claim: %v", err)
		}
		wantHistory(t, avail, r.history(t, avail),
			ev("2026-12-01T08:00:00Z", workflow.HistCreated, "", ""),
			ev("2026-12-01T13:00:00Z", workflow.HistEscalated, "", ""),
			ev("2026-12-01T13:00:00Z", workflow.HistClaimed, "dp-1", ""))
	})
	t.Run("claimed between the sweep's read and its write", func(t *testing.T) {
		t.Parallel()
		x := &interleave{id: avail}
		r := newRigWith(t, nil, func(d workflow.Docs) workflow.Docs { x.Docs = d; return x })
		ctx := t.Context()
		r.submit(t, "o-1")
		r.clock.add(5 * time.Hour)
		x.then = func() {
			if _, err := r.wf.Act(ctx, planner, avail, workflow.Action{Kind: workflow.ActClaim}); err != nil {
				t.Errorf("claim inside the sweep: %v", err)
			}
		}
		x.armed.Store(true)
		if n, err := r.wf.Sweep(ctx); err != nil || n != 0 {
			t.Fatalf("the sweep that lost the race: %d %v (want 0: refused, left to the next)", n, err)
		}
		r.clock.add(time.Minute)
		if n, err := r.wf.Sweep(ctx); err != nil || n != 1 {
			t.Fatalf("the next sweep: %d %v", n, err)
		}
		wantHistory(t, avail, r.history(t, avail),
			ev("2026-12-01T08:00:00Z", workflow.HistCreated, "", ""),
			ev("2026-12-01T13:00:00Z", workflow.HistClaimed, "dp-1", ""),
			ev("2026-12-01T13:01:00Z", workflow.HistEscalated, "", ""))
	})
}

// A result field the completion copies onto the order must fit the order:
// an ERP number longer than orders.json allows is refused at its field and
// nothing changes, instead of a done follow-up beside an order that could
// not move.
func TestCompletionRefusesResultTheOrderCannotTake(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	ctx := t.Context()
	r.submit(t, "o-1")
	planner := engine.Actor{Org: org, User: "dp-1", Roles: []string{"demand_planning"}}
	if _, err := r.wf.Act(ctx, planner, "fu-o-1-availability_check", workflow.Action{Kind: workflow.ActComplete, Result: map[string]any{"available": true}}); err != nil {
		t.Fatal(err)
	}
	desk := engine.Actor{Org: org, User: "od-1", Roles: []string{"order_desk"}}
	const erp = "fu-o-1-erp_entry"
	before, _ := r.doc(t, fieldsales.CollFollowUps, erp)
	long := strings.Repeat("9", 65)
	_, err := r.wf.Act(ctx, desk, erp, workflow.Action{Kind: workflow.ActComplete, Result: map[string]any{"erp_number": long}})
	var e *engine.Error
	if !errors.As(err, &e) || e.Code != engine.CodeSchemaViolation || e.Pointer != "/result/erp_number" {
		t.Fatalf("a 65-character ERP number: %v, want schema_violation at /result/erp_number", err)
	}
	if after, _ := r.doc(t, fieldsales.CollFollowUps, erp); after.Version != before.Version {
		t.Fatalf("the refused completion changed the follow-up: version %d -> %d", before.Version, after.Version)
	}
	if _, err := r.wf.Act(ctx, desk, erp, workflow.Action{Kind: workflow.ActComplete, Result: map[string]any{"erp_number": long[:64]}}); err != nil {
		t.Fatalf("a 64-character ERP number: %v", err)
	}
	if _, o := r.doc(t, "orders", "o-1"); o["status"] != "confirmed" || o["erp_number"] != long[:64] {
		t.Fatalf("order after the completion: %v %v", o["status"], o["erp_number"])
	}
}
