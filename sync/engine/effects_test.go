package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/schemas"
	"github.com/fieldsync/fieldsync/sqlite"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// pushCounter counts the store's writes.
type pushCounter struct {
	engine.Store
	pushes atomic.Int64
}

func (c *pushCounter) Push(ctx context.Context, b engine.PushBatch, d engine.Decide) ([]engine.Outcome, error) {
	c.pushes.Add(1)
	return c.Store.Push(ctx, b, d)
}

// echo is an Effects for the tests: every customer note a device writes is
// answered by a follow-up asking to call the customer back, created by the
// server in the push's own write. Failing, it fails Prepare or Writes.
type echo struct {
	failPrepare, failWrites atomic.Bool
	rounds                  atomic.Int64 // calls of Writes
}

func (x *echo) Prepare(_ context.Context, _ engine.Actor, muts []engine.Mutation) (engine.EffectPlan, error) {
	if x.failPrepare.Load() {
		return nil, errors.New("prepare failed")
	}
	for _, m := range muts {
		if m.Collection == fieldsales.CollCustomerNotes {
			return echoPlan{x}, nil
		}
	}
	return nil, nil
}

type echoPlan struct{ x *echo }

func (p echoPlan) Writer() (string, string) { return "echo", "echo" }
func (p echoPlan) Read() []*engine.Document { return nil }
func (p echoPlan) Writes(docs []*engine.Document) ([]engine.UpsertDoc, error) {
	p.x.rounds.Add(1)
	if p.x.failWrites.Load() {
		return nil, errors.New("writes failed")
	}
	var out []engine.UpsertDoc
	for _, d := range docs {
		if d.Collection != fieldsales.CollCustomerNotes || d.Deleted {
			continue
		}
		var body map[string]any
		json.Unmarshal(d.Body, &body)
		f := map[string]any{"activity": "call_back", "title": "Call back", "status": "open",
			"customer_id": body["customer_id"], "responsible_role": "order_desk", "rep_id": d.Owner}
		up := engine.UpsertDoc{Collection: fieldsales.CollFollowUps, ID: "fu-" + d.ID, CreateOnly: true, Fields: map[string]json.RawMessage{}}
		for k, v := range f {
			up.Fields[k], _ = json.Marshal(v)
		}
		out = append(out, up)
	}
	return out, nil
}

func newEffectsEngine(t *testing.T) (*engine.Engine, *pushCounter, *echo, engine.Store) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sch, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	pc := &pushCounter{Store: st}
	eng, err := engine.New(t.Context(), engine.Config{Rules: fieldsales.New(fieldsales.VisitRules{}), Store: pc, Schemas: sch,
		Now: func() time.Time { return time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	x := &echo{}
	eng.AddEffects(x)
	admin := engine.Actor{Org: "o", User: "boss", Roles: []string{fieldsales.RoleAdmin}}
	if _, err := eng.Upsert(t.Context(), admin, "test", []engine.UpsertDoc{{Collection: fieldsales.CollCustomers, ID: "c-1",
		Fields: map[string]json.RawMessage{"name": json.RawMessage(`"Pumpen AG"`), "assigned_reps": json.RawMessage(`["rep-1"]`)}}}); err != nil {
		t.Fatal(err)
	}
	return eng, pc, x, st
}

func note(mid, id string) engine.Mutation {
	return engine.Mutation{ID: mid, Collection: fieldsales.CollCustomerNotes, DocID: id, Op: engine.OpCreate,
		Doc: json.RawMessage(fmt.Sprintf(`{"customer_id":"c-1","text":"note %s"}`, id))}
}

var rep = engine.Actor{Org: "o", User: "rep-1", Roles: []string{fieldsales.RoleRep}}

// TestEffectsCommitWithThePush: a device's push and the effects it implies
// are one store write; the role key the effect's follow-up grants its
// customer is written in it too; a retry writes nothing again.
func TestEffectsCommitWithThePush(t *testing.T) {
	t.Parallel()
	eng, pc, x, st := newEffectsEngine(t)
	before := pc.pushes.Load()
	outs, err := eng.Push(t.Context(), rep, engine.PushRequest{DeviceID: "phone", Mutations: []engine.Mutation{note("m-1", "n-1"), note("m-2", "n-2")}})
	if err != nil {
		t.Fatal(err)
	}
	if n := pc.pushes.Load() - before; n != 1 {
		t.Errorf("the push with its effects took %d store writes, want 1", n)
	}
	for _, o := range outs {
		if o.Status != engine.StatusApplied || o.Replayed {
			t.Errorf("outcome %+v", o)
		}
	}
	refs := []engine.DocRef{{Collection: fieldsales.CollFollowUps, ID: "fu-n-1"}, {Collection: fieldsales.CollFollowUps, ID: "fu-n-2"},
		{Collection: fieldsales.CollCustomers, ID: "c-1"}}
	got, err := st.Get(t.Context(), "o", refs)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range refs[:2] {
		d := got[r]
		if d == nil || d.UpdatedBy != "echo" || !has(d.Scopes, "role:order_desk") || !has(d.Scopes, "user:rep-1") {
			t.Errorf("%s after the push: %+v", r, d)
		}
	}
	if c := got[refs[2]]; c == nil || !has(c.Scopes, "role:order_desk") {
		t.Errorf("the customer does not carry the role its follow-ups grant: %+v", c)
	}
	rounds := x.rounds.Load()
	outs, err = eng.Push(t.Context(), rep, engine.PushRequest{DeviceID: "phone", Mutations: []engine.Mutation{note("m-1", "n-1"), note("m-2", "n-2")}})
	if err != nil {
		t.Fatal(err)
	}
	if !outs[0].Replayed || !outs[1].Replayed || x.rounds.Load() != rounds {
		t.Errorf("retry: %+v, effects planned %d more times; want replayed outcomes and no planning", outs, x.rounds.Load()-rounds)
	}
}

// TestEffectsFailingCommitNothing: when the effects cannot be read or
// decided, the push fails and nothing of it is stored; a mutation id
// repeated in one push is answered as a retry of its first copy.
func TestEffectsFailingCommitNothing(t *testing.T) {
	t.Parallel()
	eng, _, x, st := newEffectsEngine(t)
	for _, fail := range []*atomic.Bool{&x.failPrepare, &x.failWrites} {
		fail.Store(true)
		if _, err := eng.Push(t.Context(), rep, engine.PushRequest{DeviceID: "phone", Mutations: []engine.Mutation{note("m-1", "n-1")}}); err == nil {
			t.Fatal("push succeeded although its effects failed")
		}
		fail.Store(false)
		got, err := st.Get(t.Context(), "o", []engine.DocRef{{Collection: fieldsales.CollCustomerNotes, ID: "n-1"}})
		if err != nil || len(got) != 0 {
			t.Fatalf("the failed push stored %+v (%v)", got, err)
		}
	}
	outs, err := eng.Push(t.Context(), rep, engine.PushRequest{DeviceID: "phone", Mutations: []engine.Mutation{note("m-1", "n-1"), note("m-1", "n-9")}})
	if err != nil {
		t.Fatal(err)
	}
	if outs[0].Status != engine.StatusApplied || outs[0].Replayed || outs[1].Status != engine.StatusApplied || !outs[1].Replayed {
		t.Errorf("a repeated mutation id: %+v, want the first applied and the second answered as its retry", outs)
	}
	got, err := st.Get(t.Context(), "o", []engine.DocRef{{Collection: fieldsales.CollCustomerNotes, ID: "n-9"}})
	if err != nil || len(got) != 0 {
		t.Errorf("the repeated copy was applied: %+v (%v)", got, err)
	}
}

func has(keys []string, k string) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}
