package workflow_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/internal/ferrettest"
	"github.com/fieldsync/fieldsync/internal/patience"
	"github.com/fieldsync/fieldsync/mongodb"
	"github.com/fieldsync/fieldsync/schemas"
	"github.com/fieldsync/fieldsync/sqlite"
	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/workflow"
)

// counting counts the store calls of the engine and the workflow: the
// round-trip budget of a push is stated in them (docs/architecture.md,
// "One pushed order").
type counting struct {
	engine.Store
	mu    sync.Mutex
	calls map[string]int
}

func (c *counting) count(call string) {
	c.mu.Lock()
	c.calls[call]++
	c.mu.Unlock()
}

// take returns the calls counted since the last take.
func (c *counting) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	got := c.calls
	c.calls = map[string]int{}
	return got
}

func (c *counting) Push(ctx context.Context, b engine.PushBatch, d engine.Decide) ([]engine.Outcome, error) {
	c.count("push")
	return c.Store.Push(ctx, b, d)
}

func (c *counting) Get(ctx context.Context, org string, refs []engine.DocRef) (map[engine.DocRef]*engine.Document, error) {
	c.count("get")
	return c.Store.Get(ctx, org, refs)
}

func (c *counting) Pull(ctx context.Context, q engine.PullQuery) (engine.PullPage, error) {
	c.count("pull")
	return c.Store.Pull(ctx, q)
}

// The budget of a device's push (docs/architecture.md): one store write;
// for orders, at most budgetReads reads (gets and pulls) however many orders
// and follow-ups, and for notes none: the store reads the customers they
// hang off in its atomic unit. A store that cannot promise nothing changes
// them before the commit (MongoDB) costs one read more, the engine's check
// after the commit (restamp.go, settle).
func budgetReads(store string) (orders, notes int) {
	if store == "mongodb" {
		return 5, 1
	}
	return 4, 0
}

// TestPushBudget: a push of one submitted order is one store write and a
// few reads, and a push of ten orders (fifty follow-ups) costs the same; a
// back-office completion is one write; a batch of 100 notes is one write
// and no read on SQLite, one on MongoDB. Counted on both stores.
func TestPushBudget(t *testing.T) {
	t.Parallel()
	stores := map[string]func(t *testing.T) (engine.Store, workflow.MatrixStore){
		"sqlite": func(t *testing.T) (engine.Store, workflow.MatrixStore) {
			st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "db"), sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st, st
		},
		"mongodb": func(t *testing.T) (engine.Store, workflow.MatrixStore) {
			uri, stop, err := ferrettest.Start()
			if err != nil {
				t.Fatalf("start FerretDB: %v", err)
			}
			t.Cleanup(stop)
			st, err := mongodb.Open(context.Background(), uri, "budget", mongodb.Options{Timeout: patience.Of(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st, st
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			raw, matrices := open(t)
			st := &counting{Store: raw, calls: map[string]int{}}
			ctx := t.Context()
			sch, err := schemas.Load()
			if err != nil {
				t.Fatal(err)
			}
			eng, err := engine.New(ctx, engine.Config{Rules: fieldsales.New(fieldsales.VisitRules{}), Store: st, Schemas: sch})
			if err != nil {
				t.Fatal(err)
			}
			wf, err := workflow.New(workflow.Config{Writer: eng, Docs: st, Store: matrices})
			if err != nil {
				t.Fatal(err)
			}
			eng.AddHook(wf)
			eng.AddEffects(wf)
			set := func(coll, id string, f map[string]any) {
				d := engine.UpsertDoc{Collection: coll, ID: id, Fields: map[string]json.RawMessage{}}
				for k, v := range f {
					d.Fields[k], _ = json.Marshal(v)
				}
				if _, err := eng.Upsert(ctx, admin, "test", []engine.UpsertDoc{d}); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 3 {
				set(fieldsales.CollProducts, fmt.Sprintf("p-%d", i), map[string]any{"sku": fmt.Sprint(i), "name": "Motor", "list_price": "100"})
			}
			set(fieldsales.CollCustomers, "c-1", map[string]any{"name": "Pumpen AG", "assigned_reps": []string{"rep-1"}})
			rep := engine.Actor{Org: org, User: "rep-1", Roles: []string{"rep"}}
			order := func(id string) engine.Mutation {
				doc, _ := json.Marshal(map[string]any{"customer_id": "c-1", "status": "submitted", "lines": []map[string]any{
					{"product_id": "p-0", "quantity": 1}, {"product_id": "p-1", "quantity": 2}, {"product_id": "p-2", "quantity": 3}}})
				return engine.Mutation{ID: "m-" + id, Collection: fieldsales.CollOrders, DocID: id, Op: engine.OpCreate, Doc: doc}
			}
			push := func(muts ...engine.Mutation) map[string]int {
				t.Helper()
				st.take()
				outs, err := eng.Push(ctx, rep, engine.PushRequest{DeviceID: "phone", Mutations: muts})
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range outs {
					if o.Status != engine.StatusApplied {
						t.Fatalf("push: %+v", o)
					}
				}
				return st.take()
			}
			push(order("o-warm")) // the matrix store's first reads, the organisation noted for the sweep

			one := push(order("o-1"))
			var ten []engine.Mutation
			for i := range 10 {
				ten = append(ten, order(fmt.Sprintf("o-1%d", i)))
			}
			many := push(ten...)
			for what, got := range map[string]map[string]int{"one order": one, "ten orders": many} {
				if maxReads, _ := budgetReads(name); got["push"] != 1 || got["get"]+got["pull"] > maxReads {
					t.Errorf("%s: %v store calls, want 1 push and at most %d reads", what, got, maxReads)
				}
			}
			if one["get"]+one["pull"] != many["get"]+many["pull"] {
				t.Errorf("reads grow with the orders and their follow-ups: one order %v, ten orders %v", one, many)
			}
			// Every order was routed and settled in that one write, its
			// follow-ups there and its roles granted.
			var refs []engine.DocRef
			for _, id := range []string{"o-1", "o-10", "o-19"} {
				refs = append(refs, engine.DocRef{Collection: fieldsales.CollOrders, ID: id},
					engine.DocRef{Collection: fieldsales.CollFollowUps, ID: workflow.FollowUpID(id, "availability_check")})
			}
			got, err := raw.Get(ctx, org, refs)
			if err != nil {
				t.Fatal(err)
			}
			for _, ref := range refs {
				d := got[ref]
				if d == nil {
					t.Fatalf("%s missing after the push", ref)
				}
				var body map[string]any
				json.Unmarshal(d.Body, &body)
				if ref.Collection == fieldsales.CollOrders {
					if body["total"] != "600.00" || body[fieldsales.FieldSettledStatus] != "submitted" || !hasKey(d.Scopes, "role:demand_planning") {
						t.Errorf("%s after the push: %v, keys %v; want routed, settled, granted", ref, body, d.Scopes)
					}
				} else if body["status"] != "open" {
					t.Errorf("%s after the push: %v", ref, body)
				}
			}

			// A back-office completion is one write too: the follow-up done,
			// the order confirmed with its ERP number, the next step's clock,
			// the settled marks.
			for _, step := range []struct {
				role, activity string
				result         map[string]any
			}{{"demand_planning", "availability_check", map[string]any{"available": true}},
				{"order_desk", "erp_entry", map[string]any{"erp_number": "4500012345"}}} {
				st.take()
				clerk := engine.Actor{Org: org, User: "clerk-" + step.role, Roles: []string{step.role}}
				if _, err := wf.Act(ctx, clerk, workflow.FollowUpID("o-1", step.activity),
					workflow.Action{Kind: workflow.ActComplete, Result: step.result}); err != nil {
					t.Fatal(err)
				}
				if got := st.take(); got["push"] != 1 {
					t.Errorf("completing %s: %v store calls, want 1 push", step.activity, got)
				} else {
					t.Logf("completing %s: %v", step.activity, got)
				}
			}
			got, err = raw.Get(ctx, org, []engine.DocRef{{Collection: fieldsales.CollOrders, ID: "o-1"}})
			if err != nil {
				t.Fatal(err)
			}
			var o1 map[string]any
			json.Unmarshal(got[engine.DocRef{Collection: fieldsales.CollOrders, ID: "o-1"}].Body, &o1)
			if o1["status"] != "confirmed" || o1["erp_number"] != "4500012345" || o1[fieldsales.FieldSettledStatus] != "confirmed" {
				t.Errorf("o-1 after the completions: %v; want confirmed, settled", o1)
			}

			var notes []engine.Mutation
			for i := range 100 {
				doc, _ := json.Marshal(map[string]any{"customer_id": "c-1", "text": fmt.Sprintf("note %d", i)})
				notes = append(notes, engine.Mutation{ID: fmt.Sprintf("n-%d", i), Collection: fieldsales.CollCustomerNotes,
					DocID: fmt.Sprintf("note-%d", i), Op: engine.OpCreate, Doc: doc})
			}
			got100 := push(notes...)
			if _, maxReads := budgetReads(name); got100["push"] != 1 || got100["get"] > maxReads || got100["pull"] != 0 {
				t.Errorf("100 notes: %v store calls, want 1 push and at most %d gets", got100, maxReads)
			}
			t.Logf("store calls: one order %v, ten orders %v, 100 notes %v", one, many, got100)
		})
	}
}

func hasKey(keys []string, k string) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}
