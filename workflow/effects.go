package workflow

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// reader is where the workflow reads state: the store as committed (the
// sweep, the follow-up API), or what a plan read before a device's push, to
// decide inside the push's write (orderEffects).
type reader interface {
	get(ctx context.Context, org string, refs []engine.DocRef) (map[engine.DocRef]*engine.Document, error)
	current(ctx context.Context, org string) (*Matrix, string, error)
	version(ctx context.Context, org, ver string) (*Matrix, error)
}

// live reads the store.
type live struct{ s *Service }

func (l live) get(ctx context.Context, org string, refs []engine.DocRef) (map[engine.DocRef]*engine.Document, error) {
	return l.s.cfg.Docs.Get(ctx, org, refs)
}

func (l live) current(ctx context.Context, org string) (*Matrix, string, error) {
	return l.s.current(ctx, org)
}

func (l live) version(ctx context.Context, org, ver string) (*Matrix, error) {
	return l.s.version(ctx, org, ver)
}

var _ engine.Effects = (*Service)(nil)

// Prepare implements engine.Effects: for a push that writes orders, it
// reads everything routing and carrying them out can need (readOrders).
func (s *Service) Prepare(ctx context.Context, actor engine.Actor, muts []engine.Mutation) (engine.EffectPlan, error) {
	org := actor.Org
	pushed := map[string][]engine.Mutation{}
	var orders []engine.DocRef
	for _, m := range muts {
		if m.Collection != fieldsales.CollOrders {
			continue
		}
		if _, ok := pushed[m.DocID]; !ok {
			orders = append(orders, engine.DocRef{Collection: fieldsales.CollOrders, ID: m.DocID})
		}
		pushed[m.DocID] = append(pushed[m.DocID], m)
	}
	if len(orders) == 0 {
		return nil, nil
	}
	// Recorded before the push, so the sweep knows the organisation.
	if err := s.noteOrg(ctx, org); err != nil {
		return nil, err
	}
	snap, err := s.readOrders(ctx, org, orders, pushed)
	if err != nil {
		return nil, err
	}
	return &orderEffects{s: s, snap: snap, planned: map[string]bool{}}, nil
}

// readOrders reads what carrying out orders can need, however a push's
// merge decides them (pushed: their mutations in the push, if any): the
// orders as stored, the matrices that route them, their customers, price
// lists and products (of the lines as pushed and as stored), their
// follow-ups, and the files of the orders and customers. Four reads of the
// sync store, whatever the number of orders and follow-ups, and the matrix
// store's (cached) reads.
func (s *Service) readOrders(ctx context.Context, org string, orders []engine.DocRef, pushed map[string][]engine.Mutation) (*snapshot, error) {
	snap := &snapshot{org: org, docs: map[engine.DocRef]*engine.Document{}, versions: map[string]*Matrix{}}
	if err := snap.read(ctx, s.cfg.Docs, orders); err != nil {
		return nil, err
	}
	var err error
	if snap.cur, snap.curVer, err = s.current(ctx, org); err != nil {
		return nil, err
	}
	snap.versions[snap.curVer] = snap.cur
	// What the orders may be once the push is decided: as stored, as
	// pushed, or a merge of both.
	var next []engine.DocRef
	lines := map[string]bool{}
	for _, ref := range orders {
		var bodies []map[string]any
		if d := snap.docs[ref]; d != nil && !d.Deleted {
			bodies = append(bodies, decode(d))
		}
		for _, m := range pushed[ref.ID] {
			b := map[string]any{}
			if m.Doc != nil {
				json.Unmarshal(m.Doc, &b)
			}
			for k, v := range m.Fields {
				var x any
				json.Unmarshal(v, &x)
				b[k] = x
			}
			bodies = append(bodies, b)
		}
		matrices := []*Matrix{snap.cur}
		for _, b := range bodies {
			if v := str(b, "matrix_version"); v != "" && snap.versions[v] == nil {
				m, err := s.version(ctx, org, v)
				if err != nil {
					return nil, err
				}
				snap.versions[v] = m
			}
			if m := snap.versions[str(b, "matrix_version")]; m != nil {
				matrices = append(matrices, m)
			}
			if c := str(b, "customer_id"); c != "" {
				next = append(next, engine.DocRef{Collection: fieldsales.CollCustomers, ID: c})
			}
			ls, _ := b["lines"].([]any)
			for _, l := range ls {
				line, _ := l.(map[string]any)
				if p := str(line, "product_id"); p != "" {
					lines[p] = true
				}
			}
		}
		for _, m := range matrices {
			for _, a := range m.Activities {
				if a.Trigger.On != OnRaised {
					next = append(next, engine.DocRef{Collection: fieldsales.CollFollowUps, ID: FollowUpID(ref.ID, a.ID)})
				}
			}
		}
	}
	if err := snap.read(ctx, s.cfg.Docs, next); err != nil {
		return nil, err
	}
	var last []engine.DocRef
	for p := range lines {
		last = append(last, engine.DocRef{Collection: fieldsales.CollProducts, ID: p})
	}
	for ref, d := range snap.docs {
		if ref.Collection == fieldsales.CollCustomers && d != nil && !d.Deleted {
			if pl := str(decode(d), "price_list_id"); pl != "" {
				last = append(last, engine.DocRef{Collection: fieldsales.CollPriceLists, ID: pl})
			}
		}
	}
	if err := snap.read(ctx, s.cfg.Docs, last); err != nil {
		return nil, err
	}
	// The files of the orders and their customers: the role keys the
	// orders' follow-ups grant reach them too, in the same write.
	var index []string
	for ref, d := range snap.docs {
		if d != nil && (ref.Collection == fieldsales.CollOrders || ref.Collection == fieldsales.CollCustomers) {
			index = append(index, engine.AttachmentIndexKey(ref.Collection, ref.ID))
		}
	}
	if err := snap.readFiles(ctx, s.cfg.Docs, index); err != nil {
		return nil, err
	}
	return snap, nil
}

// readFiles reads the attachments listed under the index keys: one pull,
// paged, for all of them; the feed carries their bodies.
func (sn *snapshot) readFiles(ctx context.Context, docs Docs, index []string) error {
	if len(index) == 0 {
		return nil
	}
	slices.Sort(index)
	q := engine.PullQuery{Org: sn.org, Scopes: index, Limit: 1000, MaxBytes: 4 << 20}
	for {
		pg, err := docs.Pull(ctx, q)
		if err != nil {
			return err
		}
		for _, ch := range pg.Changes {
			if ch.Op() == engine.ChangePut {
				sn.docs[engine.DocRef{Collection: ch.Collection, ID: ch.ID}] = &engine.Document{Org: sn.org,
					Collection: ch.Collection, ID: ch.ID, Version: ch.Version, Body: ch.Body}
			}
		}
		if !pg.More || pg.Through <= q.After {
			return nil
		}
		q.After = pg.Through
	}
}

// orderEffects carries a push's orders out inside its write.
type orderEffects struct {
	s       *Service
	snap    *snapshot
	planned map[string]bool // orders planned in an earlier round
}

// Writer implements engine.EffectPlan: the workflow writes as itself.
func (x *orderEffects) Writer() (user, source string) { return system("").User, sourceWorkflow }

// Writes implements engine.EffectPlan: what the pushed orders now require,
// in the order the store must decide it (a routing move, then the
// follow-ups, then the settled mark). Inside one atomic write the move
// cannot be beaten by another writer, so the follow-ups need not wait for
// it. The role keys follow from the follow-ups' writes (the engine grants
// them in the same write).
func (x *orderEffects) Writes(docs []*engine.Document) ([]engine.UpsertDoc, error) {
	x.snap.absorb(docs)
	var orders []*engine.Document
	for _, d := range docs {
		if d.Collection == fieldsales.CollOrders && !d.Deleted && !x.planned[d.ID] {
			x.planned[d.ID] = true
			orders = append(orders, d)
		}
	}
	plans, err := x.s.planOrders(context.Background(), x.snap, x.snap.org, orders)
	if err != nil {
		return nil, err
	}
	return flatten(plans), nil
}

// flatten lists plans' writes in the order they must be decided.
func flatten(plans []orderPlan) []engine.UpsertDoc {
	var out []engine.UpsertDoc
	for _, p := range plans {
		if p.move != nil {
			out = append(out, *p.move)
		}
		out = append(out, p.follow...)
		if p.settle != nil {
			out = append(out, *p.settle)
		}
	}
	return out
}

// Read implements engine.EffectPlan.
func (x *orderEffects) Read() []*engine.Document {
	var out []*engine.Document
	for _, d := range x.snap.docs {
		if d != nil {
			out = append(out, d)
		}
	}
	return out
}

// snapshot answers a plan's reads from what Prepare read. A read it cannot
// answer is a defect of Prepare, and fails the push rather than guess.
type snapshot struct {
	org      string
	docs     map[engine.DocRef]*engine.Document // nil: read, and not there
	cur      *Matrix
	curVer   string
	versions map[string]*Matrix
}

func (sn *snapshot) read(ctx context.Context, docs Docs, refs []engine.DocRef) error {
	var want []engine.DocRef
	for _, r := range refs {
		if _, ok := sn.docs[r]; !ok && r.ID != "" {
			sn.docs[r] = nil // asked for once
			want = append(want, r)
		}
	}
	if len(want) == 0 {
		return nil
	}
	got, err := docs.Get(ctx, sn.org, want)
	if err != nil {
		return err
	}
	for _, r := range want {
		sn.docs[r] = got[r]
	}
	return nil
}

// absorb takes what a round of the write decided as the state to plan from.
func (sn *snapshot) absorb(docs []*engine.Document) {
	for _, d := range docs {
		sn.docs[engine.DocRef{Collection: d.Collection, ID: d.ID}] = d
	}
}

func (sn *snapshot) get(_ context.Context, org string, refs []engine.DocRef) (map[engine.DocRef]*engine.Document, error) {
	out := map[engine.DocRef]*engine.Document{}
	for _, r := range refs {
		d, ok := sn.docs[r]
		if !ok && r.ID != "" {
			return nil, fmt.Errorf("workflow: %s was not read before the push", r)
		}
		if d != nil {
			out[r] = d
		}
	}
	return out, nil
}

func (sn *snapshot) current(context.Context, string) (*Matrix, string, error) {
	return sn.cur, sn.curVer, nil
}

func (sn *snapshot) version(_ context.Context, _ string, ver string) (*Matrix, error) {
	if m := sn.versions[ver]; m != nil {
		return m, nil
	}
	return nil, fmt.Errorf("workflow: matrix version %q was not read before the push", ver)
}

// completion plans what completing follow-up fu implies, to be written in
// the completion's own store write: the order's move the matrix names (an
// ERP entry done confirms the order, with its ERP number), then whatever
// the order's new state triggers (the next step's clock, new follow-ups),
// then the completion's settled mark. Nil when fu concerns no order.
func (s *Service) completion(ctx context.Context, org string, fu *engine.Document) (engine.EffectPlan, error) {
	body := decode(fu)
	oid := str(body, "order_id")
	if oid == "" {
		return nil, nil
	}
	x := &completionEffects{s: s, fu: fu.ID, order: engine.DocRef{Collection: fieldsales.CollOrders, ID: oid}}
	if body["matrix_version"] == nil {
		return x, nil // not the matrix's: only its settled mark
	}
	snap, err := s.readOrders(ctx, org, []engine.DocRef{x.order}, nil)
	if err != nil {
		return nil, err
	}
	if x.m, err = s.version(ctx, org, str(body, "matrix_version")); err != nil {
		return nil, err
	}
	x.snap = snap
	return x, nil
}

// completionEffects carries a completion out inside its write, in rounds:
// the done follow-up, then (if the matrix moves the order) the moved order.
type completionEffects struct {
	s     *Service
	snap  *snapshot // nil: a follow-up outside the matrix
	m     *Matrix
	fu    string
	order engine.DocRef
	done  map[string]any // the completed follow-up's body, once written
	moved bool           // the order's move was asked for
	over  bool
}

// Writer implements engine.EffectPlan: the workflow writes as itself.
func (x *completionEffects) Writer() (user, source string) { return system("").User, sourceWorkflow }

// Read implements engine.EffectPlan.
func (x *completionEffects) Read() []*engine.Document {
	if x.snap == nil {
		return nil
	}
	return (&orderEffects{snap: x.snap}).Read()
}

// Writes implements engine.EffectPlan.
func (x *completionEffects) Writes(docs []*engine.Document) ([]engine.UpsertDoc, error) {
	if x.over {
		return nil, nil
	}
	if x.snap != nil {
		x.snap.absorb(docs)
	}
	now := x.s.now()
	for _, d := range docs {
		if x.done == nil && d.Collection == fieldsales.CollFollowUps && d.ID == x.fu && !d.Deleted && str(decode(d), "status") == FUDone {
			x.done = decode(d)
			if x.snap == nil {
				x.over = true
				return settled(x.fu, x.done, now), nil
			}
			order := x.snap.docs[x.order]
			if move, ok := onDoneMove(x.m, x.done, now); ok && order != nil && !order.Deleted &&
				slices.Contains(move.Expect.In, str(decode(order), "status")) {
				// The order moves first; what its new state triggers is
				// planned from it in the next round.
				x.moved = true
				return []engine.UpsertDoc{move}, nil
			}
			return x.finish(now)
		}
		if x.moved && d.Collection == fieldsales.CollOrders && d.ID == x.order.ID {
			return x.finish(now)
		}
	}
	return nil, nil
}

// finish plans the order as it now is, and the completion's settled mark.
func (x *completionEffects) finish(now time.Time) ([]engine.UpsertDoc, error) {
	x.over = true
	var out []engine.UpsertDoc
	if o := x.snap.docs[x.order]; o != nil && !o.Deleted {
		plans, err := x.s.planOrders(context.Background(), x.snap, x.snap.org, []*engine.Document{o})
		if err != nil {
			return nil, err
		}
		out = flatten(plans)
	}
	return append(out, settled(x.fu, x.done, now)...), nil
}

func settled(id string, body map[string]any, at time.Time) []engine.UpsertDoc {
	if d, ok := settleFollowUpDoc(id, body, at); ok {
		return []engine.UpsertDoc{d}
	}
	return nil
}
