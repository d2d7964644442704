package engine

import (
	"context"
	"slices"
)

// Hook reacts to what a device's push committed: the workflow routes the
// follow-ups a rep raised. (What must commit with the push, an order's
// routing, is an Effects, effects.go.) Hooks run after the push
// is durable and before the device hears the answer, so an effect that a
// crash interrupted is completed when the device retries the same push: the
// retry is answered from the recorded outcomes and the hooks run again with
// the documents as they are now. A hook must therefore be idempotent.
type Hook interface {
	// Collections names the collections whose documents the hook wants;
	// only those are read from the store.
	Collections() []string
	// AfterPush gets the current state (Store.Get) of every live document
	// of those collections that the push applied or merged, replayed
	// outcomes included. actor is the pusher with the directory's roles.
	// An error fails the push request (the writes stay committed), so the
	// device retries and the hook runs again.
	AfterPush(ctx context.Context, actor Actor, docs []*Document) error
}

// AddHook registers h. Call it before the engine serves requests.
func (e *Engine) AddHook(h Hook) { e.hooks = append(e.hooks, h) }

// afterPush runs the hooks for the mutations that reached the store and
// their outcomes. Server writes (Upsert, restamps) never get here: the
// workflow carries out its own consequences, and hooks calling hooks could
// not be bounded.
func (e *Engine) afterPush(ctx context.Context, actor Actor, muts []Mutation, outs []Outcome) error {
	if len(e.hooks) == 0 {
		return nil
	}
	want := map[string]bool{}
	for _, h := range e.hooks {
		for _, c := range h.Collections() {
			want[c] = true
		}
	}
	var refs []DocRef
	for i, o := range outs {
		if (o.Status == StatusApplied || o.Status == StatusMerged) && want[muts[i].Collection] {
			refs = append(refs, DocRef{Collection: muts[i].Collection, ID: muts[i].DocID})
		}
	}
	if len(refs) == 0 {
		return nil
	}
	slices.SortFunc(refs, func(a, b DocRef) int {
		if a.Collection != b.Collection {
			return compareStrings(a.Collection, b.Collection)
		}
		return compareStrings(a.ID, b.ID)
	})
	refs = slices.Compact(refs)
	got, err := e.store.Get(ctx, actor.Org, refs)
	if err != nil {
		return err
	}
	for _, h := range e.hooks {
		var docs []*Document
		for _, ref := range refs {
			if d := got[ref]; d != nil && !d.Deleted && slices.Contains(h.Collections(), ref.Collection) {
				docs = append(docs, d)
			}
		}
		if len(docs) == 0 {
			continue
		}
		if err := h.AfterPush(ctx, actor, docs); err != nil {
			return err
		}
	}
	return nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
