package workflow_test

// Engine-level tests of the workflow on a real SQLite store with an
// injected clock: the overdue sweep, and the create-only and conditional
// server writes the workflow relies on.

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/schemas"
	"github.com/fieldsync/fieldsync/sqlite"
	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/workflow"
)

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

type rig struct {
	store *sqlite.Store
	eng   *engine.Engine
	wf    *workflow.Service
	clock *clock
}

const org = "acme"

var admin = engine.Actor{Org: org, User: "boss", Roles: []string{fieldsales.RoleAdmin}}

func newRig(t *testing.T) *rig { return newRigWith(t, nil, nil) }

// failing is a Writer that fails while fail is set: a crash between a
// push's commit and the workflow's writes.
type failing struct {
	w    workflow.Writer
	mu   sync.Mutex
	fail bool
	pass int  // writes that still go through once fail is set: a crash between two writes
	cut  bool // UpsertWith commits its documents without their effects
}

func (f *failing) Upsert(ctx context.Context, a engine.Actor, src string, docs []engine.UpsertDoc) ([]engine.Outcome, error) {
	f.mu.Lock()
	fail := f.fail && f.pass == 0
	if f.fail && f.pass > 0 {
		f.pass--
	}
	f.mu.Unlock()
	if fail {
		return nil, engine.Errorf(engine.KindUnavailable, engine.CodeUnavailable, "", "injected crash")
	}
	return f.w.Upsert(ctx, a, src, docs)
}

// UpsertWith writes docs with their effects, or, while cut is set, writes
// docs alone and answers a crash: a store write cut between its documents
// (MongoDB has no multi-document transactions).
func (f *failing) UpsertWith(ctx context.Context, a engine.Actor, src string, docs []engine.UpsertDoc, plan engine.EffectPlan) ([]engine.Outcome, error) {
	f.mu.Lock()
	cut := f.cut
	f.mu.Unlock()
	if !cut {
		return f.w.UpsertWith(ctx, a, src, docs, plan)
	}
	if _, err := f.w.Upsert(ctx, a, src, docs); err != nil {
		return nil, err
	}
	return nil, engine.Errorf(engine.KindUnavailable, engine.CodeUnavailable, "", "injected crash")
}

// set arms (or disarms) the failure; pass writes still go through first.
func (f *failing) set(fail bool, pass int) {
	f.mu.Lock()
	f.fail, f.pass = fail, pass
	f.mu.Unlock()
}

func (f *failing) Grant(ctx context.Context, org string, grants map[engine.DocRef][]string) error {
	return f.w.Grant(ctx, org, grants)
}

// failingDocs fails every read while fail is set; while countdown is above
// zero, that many reads still go through and then fail is set.
type failingDocs struct {
	workflow.Docs
	fail      atomic.Bool
	countdown atomic.Int64
}

func (f *failingDocs) Get(ctx context.Context, org string, refs []engine.DocRef) (map[engine.DocRef]*engine.Document, error) {
	if f.countdown.Load() > 0 && f.countdown.Add(-1) == 0 {
		defer f.fail.Store(true)
	} else if f.fail.Load() {
		return nil, engine.Errorf(engine.KindUnavailable, engine.CodeUnavailable, "", "injected failure")
	}
	return f.Docs.Get(ctx, org, refs)
}

func newRigWith(t testing.TB, wrap func(workflow.Writer) workflow.Writer, wrapDocs func(workflow.Docs) workflow.Docs) *rig {
	t.Helper()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sch, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)}
	eng, err := engine.New(ctx, engine.Config{Rules: fieldsales.New(fieldsales.VisitRules{}), Store: st, Schemas: sch, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	var w workflow.Writer = eng
	if wrap != nil {
		w = wrap(eng)
	}
	var docs workflow.Docs = st
	if wrapDocs != nil {
		docs = wrapDocs(st)
	}
	wf, err := workflow.New(workflow.Config{Writer: w, Docs: docs, Store: st, Schemas: sch, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	eng.AddHook(wf)
	eng.AddEffects(wf)
	r := &rig{store: st, eng: eng, wf: wf, clock: clk}
	r.upsert(t, fieldsales.CollProducts, "p-1", map[string]any{"sku": "M-1", "name": "Motor", "list_price": "100"})
	r.upsert(t, fieldsales.CollCustomers, "c-1", map[string]any{"name": "Pumpen AG", "assigned_reps": []string{"rep-1"}})
	return r
}

func (r *rig) upsert(t testing.TB, coll, id string, fields map[string]any, opts ...func(*engine.UpsertDoc)) engine.Outcome {
	t.Helper()
	d := engine.UpsertDoc{Collection: coll, ID: id, Fields: map[string]json.RawMessage{}}
	for k, v := range fields {
		b, _ := json.Marshal(v)
		d.Fields[k] = b
	}
	for _, o := range opts {
		o(&d)
	}
	outs, err := r.eng.Upsert(t.Context(), admin, "test", []engine.UpsertDoc{d})
	if err != nil {
		t.Fatal(err)
	}
	return outs[0]
}

func (r *rig) doc(t *testing.T, coll, id string) (*engine.Document, map[string]any) {
	t.Helper()
	ref := engine.DocRef{Collection: coll, ID: id}
	got, err := r.store.Get(t.Context(), org, []engine.DocRef{ref})
	if err != nil || got[ref] == nil {
		t.Fatalf("%s: %v", ref, err)
	}
	var m map[string]any
	json.Unmarshal(got[ref].Body, &m)
	return got[ref], m
}

func (r *rig) docBody(t *testing.T, id string) map[string]any {
	t.Helper()
	_, body := r.doc(t, "follow_ups", id)
	return body
}

// submit pushes an order created as submitted by rep-1.
func (r *rig) submit(t *testing.T, id string) {
	t.Helper()
	doc, _ := json.Marshal(map[string]any{"customer_id": "c-1", "status": "submitted",
		"lines": []map[string]any{{"product_id": "p-1", "quantity": 1}}})
	outs, err := r.eng.Push(t.Context(), engine.Actor{Org: org, User: "rep-1", Roles: []string{"rep"}},
		engine.PushRequest{DeviceID: "phone", Mutations: []engine.Mutation{{ID: "m-" + id, Collection: "orders", DocID: id, Op: engine.OpCreate, Doc: doc}}})
	if err != nil || outs[0].Status != engine.StatusApplied {
		t.Fatalf("submit: %v %+v", err, outs)
	}
}

func TestSweepEscalatesOverdueOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	ctx := t.Context()
	r.submit(t, "o-1")
	if n, err := r.wf.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("sweep before anything is due: %d %v", n, err)
	}
	// availability_check has a 4 h SLA, erp_entry 8 h.
	r.clock.add(5 * time.Hour)
	if n, err := r.wf.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep at +5h: %d %v", n, err)
	}
	d, fu := r.doc(t, "follow_ups", "fu-o-1-availability_check")
	if fu["escalated_at"] != "2026-12-01T13:00:00Z" || !slices.Contains(d.Scopes, "role:supply_chain_manager") {
		t.Fatalf("escalated follow-up: %v %v", fu, d.Scopes)
	}
	if o, _ := r.doc(t, "orders", "o-1"); !slices.Contains(o.Scopes, "role:supply_chain_manager") {
		t.Fatalf("the accountable role does not see the order: %v", o.Scopes)
	}
	if n, err := r.wf.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("second sweep: %d %v", n, err)
	}
	// erp_entry (8 h) waits for availability_check: its clock starts when
	// that is done, so it is not overdue yet however old the order is.
	if fu := r.docBody(t, "fu-o-1-erp_entry"); fu["due_at"] != nil {
		t.Fatalf("erp_entry has a due time while it waits: %v", fu)
	}
	planner := engine.Actor{Org: org, User: "dp-1", Roles: []string{"demand_planning"}}
	if _, err := r.wf.Act(ctx, planner, "fu-o-1-availability_check", workflow.Action{Kind: workflow.ActComplete,
		Result: map[string]any{"available": true}}); err != nil {
		t.Fatalf("complete availability_check: %v", err)
	}
	if fu := r.docBody(t, "fu-o-1-erp_entry"); fu["due_at"] != "2026-12-01T21:00:00Z" {
		t.Fatalf("erp_entry due %v, want 8 h after availability_check was done", fu["due_at"])
	}
	// Two instances sweeping at once escalate erp_entry once between them.
	r.clock.add(9 * time.Hour)
	var wg sync.WaitGroup
	counts := make([]int, 2)
	for i := range counts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := r.wf.Sweep(context.WithoutCancel(ctx))
			if err != nil {
				t.Error(err)
			}
			counts[i] = n
		}()
	}
	wg.Wait()
	if counts[0]+counts[1] != 1 {
		t.Fatalf("concurrent sweeps escalated %v", counts)
	}
	// Created, given its due time, escalated: three versions.
	if d, _ := r.doc(t, "follow_ups", "fu-o-1-erp_entry"); d.Version != 3 {
		t.Fatalf("erp_entry has version %d, want 3", d.Version)
	}
}

func TestUpsertCreateOnlyAndExpect(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.submit(t, "o-1")
	before, _ := r.doc(t, "follow_ups", "fu-o-1-erp_entry")
	createOnly := func(d *engine.UpsertDoc) { d.CreateOnly = true }
	o := r.upsert(t, "follow_ups", "fu-o-1-erp_entry", map[string]any{"activity": "erp_entry", "status": "done"}, createOnly)
	after, body := r.doc(t, "follow_ups", "fu-o-1-erp_entry")
	if o.Status != engine.StatusApplied || o.Version != before.Version || after.Version != before.Version || body["status"] != "open" {
		t.Fatalf("create-only over an existing follow-up: %+v, now %v", o, body)
	}
	// A conditional move whose condition no longer holds changes nothing.
	expect := func(d *engine.UpsertDoc) { d.Expect = &engine.Expect{Field: "status", In: []string{"confirmed"}} }
	o = r.upsert(t, "orders", "o-1", map[string]any{"status": "delivered"}, expect)
	if o.Status != engine.StatusRejected || o.Error.Code != engine.CodePreconditionFailed {
		t.Fatalf("unmet expectation: %+v", o)
	}
	if _, ob := r.doc(t, "orders", "o-1"); ob["status"] != "submitted" {
		t.Fatalf("order moved: %v", ob["status"])
	}
	// "" accepts an absent field.
	absent := func(d *engine.UpsertDoc) { d.Expect = &engine.Expect{Field: "erp_number", In: []string{""}} }
	if o := r.upsert(t, "orders", "o-1", map[string]any{"erp_number": "1"}, absent); o.Status != engine.StatusApplied {
		t.Fatalf("expectation of an absent field: %+v", o)
	}
	if o := r.upsert(t, "orders", "o-1", map[string]any{"erp_number": "2"}, absent); o.Status != engine.StatusRejected {
		t.Fatalf("expectation of an absent field, now present: %+v", o)
	}
}

func TestCancelledOrderCancelsOpenFollowUps(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.submit(t, "o-1")
	o, _ := r.doc(t, "orders", "o-1")
	// The back office finished one task before the rep cancelled.
	r.upsert(t, "follow_ups", "fu-o-1-availability_check", map[string]any{"status": "done"})
	outs, err := r.eng.Push(t.Context(), engine.Actor{Org: org, User: "rep-1", Roles: []string{"rep"}},
		engine.PushRequest{DeviceID: "phone", Mutations: []engine.Mutation{{ID: "m-cancel", Collection: "orders", DocID: "o-1",
			Op: engine.OpUpdate, BaseVersion: o.Version, Fields: map[string]json.RawMessage{"status": json.RawMessage(`"cancelled"`)}}}})
	if err != nil || outs[0].Status == engine.StatusRejected {
		t.Fatalf("cancel: %v %+v", err, outs)
	}
	for _, a := range []string{"availability_check", "erp_entry", "dispatch", "delivery", "invoice"} {
		_, fu := r.doc(t, "follow_ups", "fu-o-1-"+a)
		want := "cancelled"
		if a == "availability_check" {
			want = "done"
		}
		if fu["status"] != want {
			t.Errorf("%s: %v, want %s", a, fu["status"], want)
		}
	}
}

// TestPushCommitsWithItsRouting: a submitted order commits with its
// routing and follow-ups or not at all. The workflow cannot read what
// routing needs: the push fails and stores nothing, not even the order;
// the phone's retry then stores the order routed, with each follow-up
// written once, and a second retry changes nothing.
func TestPushCommitsWithItsRouting(t *testing.T) {
	t.Parallel()
	docs := &failingDocs{}
	r := newRigWith(t, nil, func(d workflow.Docs) workflow.Docs { docs.Docs = d; return docs })
	doc, _ := json.Marshal(map[string]any{"customer_id": "c-1", "status": "submitted",
		"lines": []map[string]any{{"product_id": "p-1", "quantity": 3}}})
	req := engine.PushRequest{DeviceID: "phone", Mutations: []engine.Mutation{{ID: "m-1", Collection: "orders", DocID: "o-1", Op: engine.OpCreate, Doc: doc}}}
	rep := engine.Actor{Org: org, User: "rep-1", Roles: []string{"rep"}}
	docs.fail.Store(true)
	if _, err := r.eng.Push(t.Context(), rep, req); err == nil {
		t.Fatal("push succeeded although the workflow could not read what routing needs")
	}
	ref := engine.DocRef{Collection: fieldsales.CollOrders, ID: "o-1"}
	if got, err := r.store.Get(t.Context(), org, []engine.DocRef{ref}); err != nil || got[ref] != nil {
		t.Fatalf("the failed push stored its order without routing it: %+v, %v", got[ref], err)
	}
	docs.fail.Store(false)
	for range 2 {
		outs, err := r.eng.Push(t.Context(), rep, req)
		if err != nil || outs[0].Status != engine.StatusApplied || outs[0].Version != 1 {
			t.Fatalf("retry: %v %+v", err, outs)
		}
	}
	d, o := r.doc(t, "orders", "o-1")
	if o["submitted_at"] == nil || o["total"] != "300.00" || o[fieldsales.FieldSettledStatus] != "submitted" ||
		slices.Contains(d.Scopes, fieldsales.IndexUnsettledOrders) {
		t.Fatalf("not routed and settled by the push: %v, keys %v", o, d.Scopes)
	}
	r.wantFollowUpsOnce(t, "o-1")
}

// TestFilesReadWhatTheirOrderReads: a photo attached to a draft order
// carries the keys the order had then; when the order is submitted, the
// roles its follow-ups grant the order reach the photo in the same write,
// so demand planning's pull holds it.
func TestFilesReadWhatTheirOrderReads(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	rep := engine.Actor{Org: org, User: "rep-1", Roles: []string{"rep"}}
	doc, _ := json.Marshal(map[string]any{"customer_id": "c-1", "status": "draft",
		"lines": []map[string]any{{"product_id": "p-1", "quantity": 3}}})
	if _, err := r.eng.Push(t.Context(), rep, engine.PushRequest{DeviceID: "phone",
		Mutations: []engine.Mutation{{ID: "m-1", Collection: "orders", DocID: "o-1", Op: engine.OpCreate, Doc: doc}}}); err != nil {
		t.Fatal(err)
	}
	// The attachment service's write of a completed upload (attachment/).
	r.upsert(t, engine.CollAttachments, "a-1", map[string]any{"parent_collection": "orders", "parent_id": "o-1",
		"customer_id": "c-1", "content_type": "image/jpeg", "size": 3, "sha256": strings.Repeat("a", 64),
		"filename": "shelf.jpg", "uploaded_by": "rep-1", "uploaded_at": "2026-12-01T08:00:00Z"})
	if d, _ := r.doc(t, engine.CollAttachments, "a-1"); slices.Contains(d.Scopes, "role:demand_planning") {
		t.Fatalf("the draft's photo already carries demand planning's key: %v", d.Scopes)
	}
	if _, err := r.eng.Push(t.Context(), rep, engine.PushRequest{DeviceID: "phone", Mutations: []engine.Mutation{{ID: "m-2",
		Collection: "orders", DocID: "o-1", Op: engine.OpUpdate, BaseVersion: 1,
		Fields: map[string]json.RawMessage{"status": json.RawMessage(`"submitted"`)}}}}); err != nil {
		t.Fatal(err)
	}
	if d, _ := r.doc(t, engine.CollAttachments, "a-1"); !slices.Contains(d.Scopes, "role:demand_planning") ||
		!slices.Contains(d.Scopes, "role:order_desk") {
		t.Errorf("the photo after the submit: keys %v, want the roles the order was granted", d.Scopes)
	}
}

// pushWithoutEffects commits a submitted order o-1 through an engine on the
// same store that carries out no effects: what a MongoDB batch cut between
// its documents' writes leaves (the order, not its routing; docs/workflows.md,
// "Crashes").
func (r *rig) pushWithoutEffects(t *testing.T) {
	t.Helper()
	sch, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	bare, err := engine.New(t.Context(), engine.Config{Rules: fieldsales.New(fieldsales.VisitRules{}), Store: r.store, Schemas: sch, Now: r.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := json.Marshal(map[string]any{"customer_id": "c-1", "status": "submitted",
		"lines": []map[string]any{{"product_id": "p-1", "quantity": 3}}})
	if _, err := bare.Push(t.Context(), engine.Actor{Org: org, User: "rep-1", Roles: []string{"rep"}}, engine.PushRequest{DeviceID: "phone",
		Mutations: []engine.Mutation{{ID: "m-1", Collection: "orders", DocID: "o-1", Op: engine.OpCreate, Doc: doc}}}); err != nil {
		t.Fatal(err)
	}
}

// TestSweepRoutesStrandedOrder: a submitted order committed without its
// routing, and the phone never sends the push again (lost, reinstalled):
// the sweep finds the order through the unsettled-orders index and routes
// it, once, however often it runs.
func TestSweepRoutesStrandedOrder(t *testing.T) {
	t.Parallel()
	r := newRigWith(t, nil, nil)
	r.submit(t, "o-0") // the organisation is known to the sweep
	r.pushWithoutEffects(t)
	d, o := r.doc(t, "orders", "o-1")
	if o["submitted_at"] != nil || !slices.Contains(d.Scopes, fieldsales.IndexUnsettledOrders) {
		t.Fatalf("stranded order: %v, keys %v", o, d.Scopes)
	}
	r.sweepTwice(t)
	d, o = r.doc(t, "orders", "o-1")
	if o["submitted_at"] == nil || o["total"] != "300.00" || slices.Contains(d.Scopes, fieldsales.IndexUnsettledOrders) {
		t.Fatalf("not routed by the sweep: %v, keys %v", o, d.Scopes)
	}
	r.wantFollowUpsOnce(t, "o-1")
}

// TestSweepSettlesInterruptedRouting: the sweep routes a stranded order,
// its move goes through (accepted, with its total), then the server dies
// before the follow-ups are written. The order is still unsettled
// (fieldsales.IndexUnsettledOrders): the next sweep writes its follow-ups, once,
// and settles it.
func TestSweepSettlesInterruptedRouting(t *testing.T) {
	t.Parallel()
	f := &failing{}
	r := newRigWith(t, func(w workflow.Writer) workflow.Writer { f.w = w; return f }, nil)
	r.submit(t, "o-0") // the organisation is known to the sweep
	r.pushWithoutEffects(t)
	f.set(true, 1) // the move goes through, the follow-ups do not
	if _, err := r.wf.Sweep(t.Context()); err == nil {
		t.Fatal("the sweep succeeded with its routing cut short")
	}
	f.set(false, 0)
	d, o := r.doc(t, "orders", "o-1")
	if o["submitted_at"] == nil || !slices.Contains(d.Scopes, fieldsales.IndexUnsettledOrders) {
		t.Fatalf("the order after the cut: %v, keys %v; want accepted and unsettled", o, d.Scopes)
	}
	ref := engine.DocRef{Collection: fieldsales.CollFollowUps, ID: "fu-o-1-availability_check"}
	if got, err := r.store.Get(t.Context(), org, []engine.DocRef{ref}); err != nil || got[ref] != nil {
		t.Fatalf("a follow-up was written before the cut: %+v, %v", got[ref], err)
	}
	r.sweepTwice(t)
	d, o = r.doc(t, "orders", "o-1")
	if o[fieldsales.FieldSettledStatus] != "submitted" || slices.Contains(d.Scopes, fieldsales.IndexUnsettledOrders) {
		t.Fatalf("the order after the sweep: %v, keys %v; want settled", o, d.Scopes)
	}
	r.wantFollowUpsOnce(t, "o-1")
}

// TestCompletionCommitsWithItsEffects: the order desk completes the ERP
// entry; the completion, the order's confirmation with the ERP number, the
// dispatch step's clock and the settled mark are one store write. When the
// workflow cannot read what they need, the completion fails and nothing is
// written; done again, all of it is.
func TestCompletionCommitsWithItsEffects(t *testing.T) {
	t.Parallel()
	docs := &failingDocs{}
	r := newRigWith(t, nil, func(d workflow.Docs) workflow.Docs { docs.Docs = d; return docs })
	r.submit(t, "o-1")
	r.completeAvailability(t, "o-1")
	ctx := t.Context()
	desk := engine.Actor{Org: org, User: "od-1", Roles: []string{"order_desk"}}
	complete := func() error {
		_, err := r.wf.Act(ctx, desk, "fu-o-1-erp_entry", workflow.Action{Kind: workflow.ActComplete,
			Result: map[string]any{"erp_number": "4500012345"}})
		return err
	}
	_, before := r.doc(t, "follow_ups", "fu-o-1-erp_entry")
	// The follow-up and its dependencies are read, then the reads fail.
	docs.countdown.Store(2)
	if err := complete(); err == nil {
		t.Fatal("the completion succeeded although its effects could not be read")
	}
	docs.fail.Store(false)
	if _, fu := r.doc(t, "follow_ups", "fu-o-1-erp_entry"); fu["status"] != before["status"] {
		t.Fatalf("the failed completion wrote the follow-up: %v, was %v", fu, before)
	}
	if err := complete(); err != nil {
		t.Fatal(err)
	}
	r.wantERPEntryCarriedOut(t, "o-1", "the completion")
}

// TestSweepSettlesInterruptedCompletion: the order desk completes the ERP
// entry; the follow-up is written done but the write is cut before its
// effects (MongoDB: a crash between the documents of one write), and the
// clerk does not retry. The follow-up is left unsettled
// (fieldsales.IndexUnsettledFollowUps): the sweep confirms the order with the ERP
// number, starts the dispatch step's clock, and settles the follow-up.
func TestSweepSettlesInterruptedCompletion(t *testing.T) {
	t.Parallel()
	f := &failing{}
	r := newRigWith(t, func(w workflow.Writer) workflow.Writer { f.w = w; return f }, nil)
	r.submit(t, "o-1")
	r.completeAvailability(t, "o-1")
	ctx := t.Context()
	desk := engine.Actor{Org: org, User: "od-1", Roles: []string{"order_desk"}}
	f.mu.Lock()
	f.cut = true // the completion goes through, its effects do not
	f.mu.Unlock()
	if _, err := r.wf.Act(ctx, desk, "fu-o-1-erp_entry", workflow.Action{Kind: workflow.ActComplete,
		Result: map[string]any{"erp_number": "4500012345"}}); err == nil {
		t.Fatal("the completion succeeded with its effects cut short")
	}
	f.mu.Lock()
	f.cut = false
	f.mu.Unlock()
	d, fu := r.doc(t, "follow_ups", "fu-o-1-erp_entry")
	if fu["status"] != "done" || !slices.Contains(d.Scopes, fieldsales.IndexUnsettledFollowUps) {
		t.Fatalf("erp_entry after the cut: %v, keys %v; want done and unsettled", fu, d.Scopes)
	}
	if _, o := r.doc(t, "orders", "o-1"); o["status"] != "submitted" {
		t.Fatalf("the order moved before the cut: %v", o)
	}
	r.sweepTwice(t)
	r.wantERPEntryCarriedOut(t, "o-1", "the sweep")
}

// completeAvailability has demand planning complete the order's
// availability check, so that its ERP entry can be worked.
func (r *rig) completeAvailability(t *testing.T, order string) {
	t.Helper()
	planner := engine.Actor{Org: org, User: "dp-1", Roles: []string{"demand_planning"}}
	if _, err := r.wf.Act(t.Context(), planner, "fu-"+order+"-availability_check", workflow.Action{Kind: workflow.ActComplete,
		Result: map[string]any{"available": true}}); err != nil {
		t.Fatal(err)
	}
}

// wantERPEntryCarriedOut checks what completing the order's ERP entry
// implies, after when: the order confirmed with the ERP number and settled,
// the dispatch step's clock started, the completion settled.
func (r *rig) wantERPEntryCarriedOut(t *testing.T, order, when string) {
	t.Helper()
	_, o := r.doc(t, "orders", order)
	if o["status"] != "confirmed" || o["erp_number"] != "4500012345" || o[fieldsales.FieldSettledStatus] != "confirmed" {
		t.Errorf("the order after %s: %v; want confirmed with the ERP number, settled", when, o)
	}
	if fu := r.docBody(t, "fu-"+order+"-dispatch"); fu["due_at"] == nil {
		t.Errorf("dispatch has no due time after %s: %v", when, fu)
	}
	d, fu := r.doc(t, "follow_ups", "fu-"+order+"-erp_entry")
	if fu[fieldsales.FieldSettledAt] == nil || slices.Contains(d.Scopes, fieldsales.IndexUnsettledFollowUps) {
		t.Errorf("erp_entry after %s: %v, keys %v; want settled", when, fu, d.Scopes)
	}
}

// sweepTwice sweeps twice: what the first carries out, the second finds done.
func (r *rig) sweepTwice(t *testing.T) {
	t.Helper()
	for range 2 {
		if _, err := r.wf.Sweep(t.Context()); err != nil {
			t.Fatalf("sweep: %v", err)
		}
	}
}

// wantFollowUpsOnce checks an accepted order has each follow-up of the
// default matrix, written once.
func (r *rig) wantFollowUpsOnce(t *testing.T, order string) {
	t.Helper()
	for _, a := range []string{"availability_check", "erp_entry", "dispatch", "delivery", "invoice"} {
		if d, _ := r.doc(t, "follow_ups", "fu-"+order+"-"+a); d == nil || d.Version != 1 {
			t.Errorf("%s: %+v, want created once", a, d)
		}
	}
}
