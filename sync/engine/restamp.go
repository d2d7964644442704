package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strings"
)

// Scope keys are computed when a document is written, from the document and
// the parent it hangs off (Rules). When what a parent passes on changes, the
// documents hanging off it are written again with new keys (a restamp): the
// store's feed then shows them as puts under the new keys and as evictions
// under the old ones. Restamps go through Store.Push like any write, so they
// are atomic per document and need nothing new from the stores.

// trust marks the server's own writes.
type trust struct {
	parents []DocRef // further parents to read before the push
	// decide replaces the engine's decision (restamps); nil for Upsert.
	decide func(i int, cur *Document, res *resolution) (*Document, Outcome)
	// guard, when set, may answer a mutation before the engine decides it
	// (stop true: nothing is written). Upsert's CreateOnly and Expect.
	guard func(m *Mutation, cur *Document) (out Outcome, stop bool)
	// plan, when set, is what the write implies (UpsertWith, effects.go).
	plan EffectPlan
}

// systemUser is the writer recorded for the server's own writes.
const systemUser = "fieldsync"

// resolution holds what a batch's decisions read: the parents its
// documents hang off (read by the store in its atomic unit, then updated by
// the batch's own writes to them), and the rules' batch.
type resolution struct {
	wanted  []DocRef
	parents map[DocRef]*Document // nil: missing
	// serializable: the store read the parents where nothing can change
	// them before the commit (PushBatch.Snapshot).
	serializable bool
	batch        Batch
}

func newResolution(parents []DocRef) *resolution {
	slices.SortFunc(parents, func(a, b DocRef) int { return strings.Compare(a.String(), b.String()) })
	return &resolution{wanted: slices.Compact(parents), parents: map[DocRef]*Document{}}
}

// snapshot is PushBatch.Snapshot.
func (r *resolution) snapshot(got map[DocRef]*Document, serializable bool) {
	for _, ref := range r.wanted {
		r.parents[ref] = got[ref]
	}
	r.serializable = serializable
}

// wrote records d, written by the batch, if it is a parent the batch reads.
func (r *resolution) wrote(d *Document) {
	ref := DocRef{Collection: d.Collection, ID: d.ID}
	if _, ok := r.parents[ref]; ok {
		r.parents[ref] = d
	}
}

// resolve reads the parents refs outside any push, to check them after
// one; those missing are recorded as nil.
func (e *Engine) resolve(ctx context.Context, org string, refs []DocRef) (*resolution, error) {
	res := newResolution(refs)
	if len(res.wanted) == 0 {
		return res, nil
	}
	got, err := e.store.Get(ctx, org, res.wanted)
	if err != nil {
		return nil, err
	}
	res.snapshot(got, false)
	return res, nil
}

// effects are what a batch's writes require afterwards.
type effects struct {
	stamped map[DocRef]stampSource // document -> the parent its keys were computed from
	moved   map[DocRef]bool        // parents whose inherited keys changed
	grants  map[DocRef][]string    // documents that must carry keys others grant them
	// replayed are documents whose mutation was answered from its recorded
	// outcome (a retry): their keys are checked again from scratch, since
	// the settle of the push that wrote them may have been cut short.
	replayed []DocRef
}

// stampSource is the parent a document's keys were computed from, and the
// keys it passed on then. settle compares them with the parent's after the
// push; they must be kept per document, not looked up in the resolution
// again afterwards: a later write of the same batch to that parent updates
// the resolution (resolution.wrote), and comparing against that would take
// a document stamped from the pre-read for one stamped from the write
// (docs/access.md, "Scope changes").
type stampSource struct {
	parent    DocRef
	inherited []string
	// checked: the parent was read where nothing could change it before
	// the commit (resolution.serializable): no need to read it again.
	checked bool
}

func newEffects() *effects {
	return &effects{stamped: map[DocRef]stampSource{}, moved: map[DocRef]bool{}, grants: map[DocRef][]string{}}
}

// replay records a mutation the store answered from its recorded outcome.
// The push that applied it committed, but a crash or a failure may have
// stopped its settle before the keys it required were written: a parent's
// change not carried to its children, a document stamped from a parent that
// changed meanwhile. A retry carries the same mutation, so only one the
// rules say moves children (Rules.Recheck) can have moved them. A restamp
// writes only documents whose keys are wrong, so this repairs and never
// harms; its cost (a read of the children, an outcome row per document
// checked) is paid on retries only.
func (fx *effects) replay(rules Rules, m *Mutation) {
	ref := DocRef{Collection: m.Collection, ID: m.DocID}
	if m.Op == OpUpdate && rules.Recheck(m.Collection, m.Fields) {
		fx.moved[ref] = true
	}
	fx.replayed = append(fx.replayed, ref)
}

// stampedFrom records that d's keys were computed from parent passing on
// inherited; checked says that needs no check after the commit.
func (fx *effects) stampedFrom(d *Document, parent DocRef, inherited []string, checked bool) {
	fx.stamped[DocRef{Collection: d.Collection, ID: d.ID}] = stampSource{parent: parent, inherited: inherited, checked: checked}
}

// note records the consequences of writing next over cur (nil: a create).
// body is next's decoded body.
func (fx *effects) note(rules Rules, cur, next *Document, body map[string]any) {
	if cur != nil && !slices.Equal(rules.Inherited(cur), rules.Inherited(next)) {
		fx.moved[DocRef{Collection: next.Collection, ID: next.ID}] = true
	}
	if next.Deleted {
		return
	}
	for ref, keys := range rules.Grants(next, body) {
		for _, k := range keys {
			fx.grant(ref, k)
		}
	}
}

func (fx *effects) grant(ref DocRef, key string) {
	if !slices.Contains(fx.grants[ref], key) {
		fx.grants[ref] = append(fx.grants[ref], key)
	}
}

// same reports whether parent, as read now, passes on what was.
func (e *Engine) same(now *Document, was []string) bool {
	return slices.Equal(e.rules.Inherited(now), was)
}

// maxRestampRounds bounds how often a restamp chases a parent that keeps
// changing under it; each round is a full, consistent pass.
const maxRestampRounds = 8

// settle makes the keys of what a batch wrote right: documents stamped
// from a parent that changed meanwhile, the children of parents whose
// inherited keys changed, and the keys documents grant others.
func (e *Engine) settle(ctx context.Context, org string, fx *effects) error {
	var again []DocRef
	var parents []DocRef
	for _, s := range fx.stamped {
		if !s.checked {
			parents = append(parents, s.parent)
		}
	}
	if len(parents) > 0 {
		now, err := e.resolve(ctx, org, parents)
		if err != nil {
			return err
		}
		for ref, s := range fx.stamped {
			if !s.checked && !e.same(now.parents[s.parent], s.inherited) {
				again = append(again, ref)
			}
		}
	}
	again = append(again, fx.replayed...)
	for p := range fx.moved {
		refs, err := e.attached(ctx, org, p)
		if err != nil {
			return err
		}
		again = append(again, refs...)
	}
	if len(again) == 0 && len(fx.grants) == 0 {
		return nil
	}
	grants := fx.grants
	if len(grants) > 0 {
		var err error
		if grants, err = e.withFiles(ctx, org, grants); err != nil {
			return err
		}
	}
	return e.restamp(ctx, org, again, grants)
}

// ScopeLister is a store that lists the documents keyed under a scope
// whatever the state of its sequence: a pull stops at the first number a
// writer has not committed yet (MongoDB), and a restamp that listed a
// parent's children that way would leave every document past that number
// with the old reps' keys.
type ScopeLister interface {
	ScopeRefs(ctx context.Context, org, scope string) ([]DocRef, error)
}

// attached lists the live documents hanging off parent, from the feed of
// its child key.
func (e *Engine) attached(ctx context.Context, org string, parent DocRef) ([]DocRef, error) {
	refs, err := e.scopeRefs(ctx, org, e.rules.ChildKey(parent))
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(refs, func(r DocRef) bool { return r == parent }), nil
}

// scopeRefs lists the live documents keyed under scope: through the store's
// ScopeLister when it has one, else by pulling the scope's feed.
func (e *Engine) scopeRefs(ctx context.Context, org, scope string) ([]DocRef, error) {
	if l, ok := e.store.(ScopeLister); ok {
		return l.ScopeRefs(ctx, org, scope)
	}
	changes, err := reader{e, org}.Scope(ctx, []string{scope})
	if err != nil {
		return nil, err
	}
	var refs []DocRef
	for _, ch := range changes {
		if !ch.Deleted && !ch.Evicted {
			refs = append(refs, DocRef{Collection: ch.Collection, ID: ch.ID})
		}
	}
	return refs, nil
}

// restamp recomputes the scope keys of refs (adding grants) and writes
// those that differ, until the parents they were computed from held still
// for a whole pass.
func (e *Engine) restamp(ctx context.Context, org string, refs []DocRef, grants map[DocRef][]string) error {
	for ref := range grants {
		refs = append(refs, ref)
	}
	system := systemAccess(org, systemUser)
	for round := 0; len(refs) > 0; round++ {
		if round == maxRestampRounds {
			return Errorf(KindUnavailable, CodeUnavailable, "", "scope keys did not settle after %d passes; retry", round)
		}
		slices.SortFunc(refs, func(a, b DocRef) int { return strings.Compare(a.String(), b.String()) })
		refs = slices.Compact(refs)
		var changed []DocRef
		for start := 0; start < len(refs); start += e.limits.MaxMutations {
			chunk := refs[start:min(start+e.limits.MaxMutations, len(refs))]
			docs, err := e.store.Get(ctx, org, chunk)
			if err != nil {
				return err
			}
			from := map[DocRef]DocRef{}
			var parents []DocRef
			var muts []Mutation
			for _, ref := range chunk {
				d, ok := docs[ref]
				if !ok || d.Deleted {
					continue
				}
				body, err := decodeObject(d.Body)
				if err != nil {
					return err
				}
				if p, ok := e.rules.Parent(ref.Collection, body); ok {
					from[ref] = p
					parents = append(parents, p)
				}
				muts = append(muts, Mutation{ID: "restamp-" + randomID(), Collection: ref.Collection, DocID: ref.ID, Op: OpUpdate})
			}
			if len(muts) == 0 {
				continue
			}
			used := map[DocRef][]string{} // what each document's parent passed on when its keys were computed
			serializable := false
			decide := func(i int, cur *Document, r *resolution) (*Document, Outcome) {
				serializable = r.serializable
				out := Outcome{MutationID: muts[i].ID, Status: StatusApplied}
				if cur == nil || cur.Deleted {
					return nil, out
				}
				out.Version = cur.Version
				ref := DocRef{Collection: cur.Collection, ID: cur.ID}
				next, from, err := e.regrant(cur, grants[ref], r) // effects.go
				if err != nil {
					return nil, reject(muts[i].ID, err)
				}
				used[ref] = from
				return next, out
			}
			outs, err := e.push(ctx, system, "server:restamp", muts, &trust{parents: parents, decide: decide})
			if err != nil {
				return err
			}
			for _, o := range outs {
				if o.Status == StatusRejected {
					return Errorf(KindInternal, CodeInternal, "", "restamp rejected: %s", o.Error.Message)
				}
			}
			if len(used) == 0 || serializable {
				continue
			}
			now, err := e.resolve(ctx, org, parents)
			if err != nil {
				return err
			}
			for ref, p := range from {
				if was, ok := used[ref]; ok && !e.same(now.parents[p], was) {
					changed = append(changed, ref)
				}
			}
		}
		refs, grants = changed, nil
	}
	return nil
}

func randomID() string {
	b := make([]byte, 10)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Grant makes each document of grants carry the scope keys given with it
// (a role's grant to an order its follow-ups concern), writing only those
// that lack one. A push of follow-ups grants their roles after it commits;
// the workflow calls Grant before it records an order as settled, so a
// crash in between is repaired by the workflow's sweep. Idempotent.
func (e *Engine) Grant(ctx context.Context, org string, grants map[DocRef][]string) error {
	if len(grants) == 0 {
		return nil
	}
	all, err := e.withFiles(ctx, org, grants)
	if err != nil {
		return err
	}
	return e.restamp(ctx, org, nil, all)
}

// withFiles extends grants to the granted documents' files: a document's
// files read what it reads (attachments.go).
func (e *Engine) withFiles(ctx context.Context, org string, grants map[DocRef][]string) (map[DocRef][]string, error) {
	docs := make([]DocRef, 0, len(grants))
	for ref := range grants {
		docs = append(docs, ref)
	}
	files, err := e.filesOf(ctx, org, docs)
	if err != nil {
		return nil, err
	}
	all := make(map[DocRef][]string, len(grants))
	for ref, keys := range grants {
		all[ref] = append(all[ref], keys...)
		for _, f := range files[ref] {
			all[f] = append(all[f], keys...)
		}
	}
	return all, nil
}
