package fieldsales

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// batch is the rules' part of one push: what its decisions need, read
// before the store's write (begin), and what the decisions so far have
// done.
type batch struct {
	rules *Rules
	info  engine.BatchInfo
	clock clockReading
	// refused are mutations the directory refused (assigned_reps).
	refused map[string]error
	// refs are the documents the batch's creates name, as stored; creates
	// the batch's creates by document; created those decided so far.
	refs    map[engine.DocRef]*engine.Document
	creates map[engine.DocRef]map[string]any
	created map[engine.DocRef]*createdDoc
	// open are the pushing user's open visits (nil for the server's own
	// writes, which no visit rule binds); sites the customers of visit logs
	// whose check-in an update changes.
	open  map[string]bool
	sites map[string]*engine.Document
}

type createdDoc struct {
	keys []string
	body map[string]any
}

// begin reads what a push's decisions need: nothing for the server's own
// writes; for a device's, in one Get the documents its creates name and the
// visit logs whose check-in it changes, then the directory's word on the
// reps it assigns and the pushing user's open visits when it opens one.
func (r *Rules) begin(ctx context.Context, rd engine.Reader, info engine.BatchInfo) (engine.Batch, error) {
	b := &batch{rules: r, info: info}
	if info.Server {
		return b, nil
	}
	b.clock = r.visits.readClock(info.DeviceTime, info.Received)
	b.refused = map[string]error{}
	b.created = map[engine.DocRef]*createdDoc{}
	b.open = map[string]bool{}
	b.sites = map[string]*engine.Document{}
	for _, p := range info.Writes {
		if p.Body != nil {
			if b.creates == nil {
				b.creates = map[engine.DocRef]map[string]any{}
			}
			b.creates[engine.DocRef{Collection: p.Mutation.Collection, ID: p.Mutation.DocID}] = p.Body
		}
	}
	var got map[engine.DocRef]*engine.Document
	if want := append(referenced(info.Writes), visitUpdates(info.Writes)...); len(want) > 0 {
		var err error
		if got, err = rd.Get(ctx, want); err != nil {
			return nil, err
		}
	}
	b.refs = got
	if err := b.checkReps(ctx, rd); err != nil {
		return nil, err
	}
	if err := b.readVisits(ctx, rd, got); err != nil {
		return nil, err
	}
	if namesPlan(info.Writes) {
		return &visitedBatch{batch: b, plans: b.visitedPlans(), done: map[string]bool{}}, nil
	}
	return b, nil
}

// Refused: the directory's word on the reps a mutation assigns.
func (b *batch) Refused(m *engine.Mutation) error { return b.refused[m.ID] }

// Decide applies the write rules, the relational rules and the derived
// fields to one write, and computes its keys.
func (b *batch) Decide(w *engine.Write) error {
	switch w.Mutation.Op {
	case engine.OpCreate:
		return b.create(w)
	case engine.OpDelete:
		if !w.Server {
			if err := checkDelete(w.Actor, w.Cur, w.Before); err != nil { // writerules.go
				return err
			}
		}
		if w.Cur.Collection == CollVisitLogs {
			b.checkOut(w.Cur.ID) // a deleted visit is no longer in progress
		}
		return nil
	}
	// The write rules bind devices; the server's own moves (the workflow
	// confirming an order) do not go through them.
	if !w.Server {
		if err := checkUpdate(w.Actor, w.Cur, w.Before, w.Written, w.Applied, w.Fields); err != nil { // writerules.go
			return err
		}
	}
	if len(w.Applied) == 0 {
		return nil
	}
	derived, err := b.deriveUpdate(w) // visits.go
	if err != nil {
		return err
	}
	w.Derived = derived
	cur := w.Cur
	w.Keys = b.rules.Keys(engine.Keying{Collection: cur.Collection, ID: cur.ID, Owner: cur.Owner, Body: w.Body,
		Prev: cur.Scopes, Parent: w.Parent, Own: !w.ParentRead})
	return nil
}

func (b *batch) create(w *engine.Write) error {
	m, body := w.Mutation, w.Body
	if c := customerOf(m.Collection, body); c != "" && !w.Server {
		if p := w.Parent; p == nil || p.Deleted || !w.Sees(p.Scopes) {
			return engine.Errorf(engine.KindForbidden, CodeCustomerNotInScope, "/doc/customer_id",
				"customer %s is not assigned to you (or does not exist)", c)
		}
	}
	if !w.Server {
		if err := b.checkRefs(w); err != nil { // refs.go
			return err
		}
	}
	derived, err := b.deriveCreate(w) // visits.go
	if err != nil {
		return err
	}
	w.Changed = applyServerDefaults(m.Collection, body, w.Actor) || derived
	w.Keys = b.rules.Keys(engine.Keying{Collection: m.Collection, ID: m.DocID, Owner: w.Actor.User, Body: body,
		Parent: w.Parent})
	if b.created != nil {
		// Later creates of the batch may name this one.
		b.created[engine.DocRef{Collection: m.Collection, ID: m.DocID}] = &createdDoc{keys: w.Keys, body: body}
	}
	return nil
}

// visitedBatch is a batch whose visit logs name visit plans: a visit log of
// the plan's rep at the plan's customer marks the plan done, in the push's
// write (an engine.EffectPlan).
type visitedBatch struct {
	*batch
	plans map[string]*engine.Document // the plans named, as stored
	done  map[string]bool             // plans already marked
}

// namesPlan reports whether the batch creates a visit log naming a plan
// (visit_plan_id is fixed at creation).
func namesPlan(writes []engine.Pending) bool {
	for _, p := range writes {
		if p.Mutation.Collection == CollVisitLogs && p.Body != nil && p.Body["visit_plan_id"] != nil {
			return true
		}
	}
	return false
}

// visitedPlans returns the stored plans the batch's visit logs name.
func (b *batch) visitedPlans() map[string]*engine.Document {
	plans := map[string]*engine.Document{}
	for ref, d := range b.refs {
		if ref.Collection == CollVisitPlans && d != nil {
			plans[ref.ID] = d
		}
	}
	return plans
}

func (v *visitedBatch) Writer() (string, string) { return systemUser, "visits" }
func (v *visitedBatch) Read() []*engine.Document { return nil }

// Writes marks done the plans the written visit logs fulfil, stored before
// the push or written with it. A plan cancelled meanwhile fails the
// expectation and stays cancelled.
func (v *visitedBatch) Writes(docs []*engine.Document) ([]engine.UpsertDoc, error) {
	for _, d := range docs {
		if d.Collection == CollVisitPlans {
			v.plans[d.ID] = d
		}
	}
	var out []engine.UpsertDoc
	for _, d := range docs {
		if d.Collection != CollVisitLogs || d.Deleted {
			continue
		}
		var visit struct {
			Plan     string `json:"visit_plan_id"`
			Customer string `json:"customer_id"`
		}
		if json.Unmarshal(d.Body, &visit) != nil || v.done[visit.Plan] {
			continue
		}
		p := v.plans[visit.Plan]
		if p == nil || p.Deleted {
			continue
		}
		var plan struct {
			Rep      string `json:"rep_id"`
			Customer string `json:"customer_id"`
			Status   string `json:"status"`
		}
		if json.Unmarshal(p.Body, &plan) != nil {
			continue
		}
		rep := plan.Rep
		if rep == "" {
			rep = p.Owner
		}
		if rep != d.Owner || plan.Customer != visit.Customer || !slices.Contains([]string{"", "planned"}, plan.Status) {
			continue
		}
		v.done[visit.Plan] = true
		out = append(out, engine.UpsertDoc{Collection: CollVisitPlans, ID: visit.Plan,
			Fields: map[string]json.RawMessage{FieldStatus: json.RawMessage(`"done"`)},
			Expect: &engine.Expect{Field: FieldStatus, In: []string{"", "planned"}}})
	}
	return out, nil
}
