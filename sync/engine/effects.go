package engine

import (
	"context"
	"encoding/json"
	"slices"
)

// Effects is the domain's reaction to a device's push that must commit with
// it: the workflow routing a submitted order and opening its follow-ups. It
// reads what it needs before the push's write (Prepare) and decides inside
// it (EffectPlan.Writes), so a push commits with all of its effects or
// none, and costs one store write however many follow-ups an order opens.
// Hooks (hooks.go) are for reactions that may run after the commit.
type Effects interface {
	// Prepare reads what the plan will need for a push of muts by actor
	// (whose roles are the directory's). A nil plan: nothing to do.
	Prepare(ctx context.Context, actor Actor, muts []Mutation) (EffectPlan, error)
}

// EffectPlan decides the server's writes that follow from what a device's
// push wrote. It runs inside the store's atomic unit and must do no I/O:
// whatever it needs, Prepare read. An error aborts the push.
type EffectPlan interface {
	// Writes is handed the documents the push wrote, as they will be
	// committed (tombstones included), and returns the writes that follow.
	// Their preconditions (UpsertDoc.Expect, CreateOnly) are checked
	// against the state the push left. It is called again with what those
	// wrote, round after round, until no round writes anything: a plan
	// returns only what it has not asked for yet.
	Writes(docs []*Document) ([]UpsertDoc, error)
	// Writer names who the effects are written as (the user recorded as
	// their writer) and the source named in field history.
	Writer() (user, source string)
	// Read returns the documents Prepare read; the engine takes the
	// parents among them as its own read of them (resolve).
	Read() []*Document
}

// AddEffects registers x. Call it before the engine serves requests.
func (e *Engine) AddEffects(x Effects) { e.effects = append(e.effects, x) }

// UpsertWith is Upsert with effects: plan's writes are decided and
// committed in the same store write as docs (a back-office action and what
// it implies: a follow-up done, its order confirmed, the next step's clock
// started). A nil plan is Upsert.
func (e *Engine) UpsertWith(ctx context.Context, actor Actor, source string, docs []UpsertDoc, plan EffectPlan) ([]Outcome, error) {
	return e.upsert(ctx, actor, source, docs, plan)
}

// effect is one server write of a push's Then rounds: an UpsertDoc of a
// plan, or the role keys the batch's follow-ups grant a document.
type effect struct {
	mid    string
	up     *UpsertDoc
	writer *access // who writes up
	device string  // field history's writer of up
	grant  []string
}

// effectRun carries a device push's effects through the store's rounds.
type effectRun struct {
	e       *Engine
	plans   []plannedEffects
	base    int // index of the first effect: the batch's mutation count
	effects []effect
	fx      *effects
	res     *resolution
	granted map[DocRef][]string // grants already handed to the store
	files   map[DocRef][]DocRef // a document's attachments, as the plans read them
}

func newEffectRun(e *Engine, plans []plannedEffects, base int, fx *effects, res *resolution) *effectRun {
	run := &effectRun{e: e, plans: plans, base: base, fx: fx, res: res, granted: map[DocRef][]string{},
		files: map[DocRef][]DocRef{}}
	for _, p := range plans {
		for _, d := range p.plan.Read() {
			if parent, ok := attachmentParent(d); ok {
				run.files[parent] = append(run.files[parent], DocRef{Collection: d.Collection, ID: d.ID})
			}
		}
	}
	return run
}

type plannedEffects struct {
	plan   EffectPlan
	writer *access
	device string
}

// prepareEffects runs every registered Effects' Prepare for a device push.
func (e *Engine) prepareEffects(ctx context.Context, acc *access, muts []Mutation) ([]plannedEffects, error) {
	var plans []plannedEffects
	for _, x := range e.effects {
		p, err := x.Prepare(ctx, acc.actor, muts)
		if err != nil {
			return nil, err
		}
		if p != nil {
			plans = append(plans, planned(acc.actor.Org, p))
		}
	}
	return plans, nil
}

func planned(org string, p EffectPlan) plannedEffects {
	user, source := p.Writer()
	return plannedEffects{plan: p, writer: systemAccess(org, user), device: user + "/server:" + source}
}

// then is the push's PushBatch.Then: in every round the plans' writes that
// follow from what the round wrote, and the role keys it grants
// (restamp.go's grants, written here instead of after the commit).
func (r *effectRun) then(written []*Document) ([]Mutation, error) {
	var muts []Mutation
	if len(written) > 0 {
		written = lastStates(written)
		for _, p := range r.plans {
			ups, err := p.plan.Writes(written)
			if err != nil {
				return nil, err
			}
			for i := range ups {
				m := Mutation{ID: "effect-" + randomID(), Collection: ups[i].Collection, DocID: ups[i].ID}
				r.effects = append(r.effects, effect{mid: m.ID, up: &ups[i], writer: p.writer, device: p.device})
				muts = append(muts, m)
			}
		}
	}
	// A document's files (attachments.go) read what it reads: the keys it is
	// granted reach the files the plans read for it.
	for ref, keys := range r.fx.grants {
		for _, f := range r.files[ref] {
			for _, k := range keys {
				r.fx.grant(f, k)
			}
		}
	}
	refs := make([]DocRef, 0, len(r.fx.grants))
	for ref, keys := range r.fx.grants {
		for _, k := range keys {
			if !slices.Contains(r.granted[ref], k) {
				refs = append(refs, ref)
				break
			}
		}
	}
	slices.SortFunc(refs, func(a, b DocRef) int { return compareStrings(a.String(), b.String()) })
	for _, ref := range refs {
		m := Mutation{ID: "grant-" + randomID(), Collection: ref.Collection, DocID: ref.ID, Op: OpUpdate}
		r.effects = append(r.effects, effect{mid: m.ID, grant: slices.Clone(r.fx.grants[ref])})
		r.granted[ref] = slices.Clone(r.fx.grants[ref])
		muts = append(muts, m)
	}
	return muts, nil
}

// lastStates keeps each document's last state of a round (a batch may
// write one twice: created as a draft and submitted), in first-written order.
func lastStates(docs []*Document) []*Document {
	at := make(map[DocRef]int, len(docs))
	out := docs[:0:0]
	for _, d := range docs {
		ref := DocRef{Collection: d.Collection, ID: d.ID}
		if i, ok := at[ref]; ok {
			out[i] = d
			continue
		}
		at[ref] = len(out)
		out = append(out, d)
	}
	return out
}

// decide decides effect i (an index of the store's batch) over cur.
func (r *effectRun) decide(i int, cur *Document) (*Document, Outcome) {
	ef := &r.effects[i-r.base]
	if ef.up != nil {
		m, out, done := ef.up.mutation(ef.mid, cur)
		if done {
			return nil, out
		}
		p, err := r.e.prepare(ef.writer.actor, &m, true)
		if err != nil {
			return nil, reject(m.ID, err)
		}
		return r.e.decide(ef.writer, ef.device, &m, p, cur, r.res, r.fx, true)
	}
	out := Outcome{MutationID: ef.mid, Status: StatusApplied}
	next, _, err := r.e.regrant(cur, ef.grant, r.res)
	if err != nil {
		return nil, reject(ef.mid, err)
	}
	if next != nil {
		out.Version = next.Version
	}
	return next, out
}

// regrant returns cur with its scope keys recomputed from its parent as
// res holds it, plus grants, and what the parent passed on (from); next is
// nil when they are the keys cur carries already, or cur is gone.
func (e *Engine) regrant(cur *Document, grants []string, res *resolution) (next *Document, from []string, err error) {
	if cur == nil || cur.Deleted {
		return nil, nil, nil
	}
	body, err := decodeObject(cur.Body)
	if err != nil {
		return nil, nil, err
	}
	// A parent the push did not read: the keys it passed on are kept.
	var parent *Document
	read := true
	if p, ok := e.rules.Parent(cur.Collection, body); ok {
		parent, read = res.parents[p]
	}
	keys := append(e.rules.Keys(Keying{Collection: cur.Collection, ID: cur.ID, Owner: cur.Owner, Body: body,
		Prev: cur.Scopes, Parent: parent, Own: !read}), grants...)
	slices.Sort(keys)
	keys = slices.Compact(keys)
	from = e.rules.Inherited(parent)
	if slices.Equal(keys, cur.Scopes) {
		return nil, from, nil
	}
	n := *cur
	n.Scopes = keys
	return &n, from, nil
}

// mutation turns d into the mutation that carries it out over cur (nil:
// none), or answers it without a write (done): CreateOnly finding the
// document, an Expect that does not hold, a deleted document, or values
// the document already holds.
func (d UpsertDoc) mutation(mid string, cur *Document) (m Mutation, out Outcome, done bool) {
	m = Mutation{ID: mid, Collection: d.Collection, DocID: d.ID}
	if out, stop := d.precheck(mid, cur); stop {
		return m, out, true
	}
	if cur == nil {
		doc, err := json.Marshal(d.Fields)
		if err != nil {
			return m, reject(mid, err), true
		}
		m.Op, m.Doc = OpCreate, doc
		return m, Outcome{}, false
	}
	if cur.Deleted {
		return m, reject(mid, Errorf(KindConflict, CodeDocumentDeleted, "/id", "%s/%s was deleted", d.Collection, d.ID)), true
	}
	body, err := decodeObject(cur.Body)
	if err != nil {
		return m, reject(mid, err), true
	}
	changed := map[string]json.RawMessage{}
	for k, v := range d.Fields {
		if old, ok := body[k]; !ok || !sameValue(old, v) {
			changed[k] = v
		}
	}
	if len(changed) == 0 {
		return m, Outcome{MutationID: mid, Status: StatusApplied, Version: cur.Version}, true
	}
	m.Op, m.BaseVersion, m.Fields = OpUpdate, cur.Version, changed
	return m, Outcome{}, false
}
