package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// thenDecide is a store-level decision for the Then cases: a create writes
// the mutation's doc at version 1 with the mutation as its origin, and
// answers a retry of itself from that origin without a write, as the engine
// does; an update replaces the body at the next version; all in scope
// "then:<org>". calls records the mutations it wrote. It knows nothing else
// of the engine's rules: these cases test what the store does with a
// batch's follow-on writes, and that it keeps a document's origin.
func thenDecide(actor engine.Actor, device string, muts *[]engine.Mutation, calls *[]int) engine.Decide {
	return func(i int, cur *engine.Document) (*engine.Document, engine.Outcome) {
		m := (*muts)[i]
		out := engine.Outcome{MutationID: m.ID, Status: engine.StatusApplied, Version: 1}
		if m.Op == engine.OpCreate && cur != nil && cur.OriginDevice == device && cur.OriginMutation == m.ID {
			return nil, out
		}
		*calls = append(*calls, i)
		next := &engine.Document{Org: actor.Org, Collection: m.Collection, ID: m.DocID, Owner: actor.User,
			Version: 1, Body: m.Doc, Scopes: []string{"then:" + actor.Org}, UpdatedAt: clock(), UpdatedBy: actor.User,
			Fields: map[string]engine.FieldMeta{}, OriginDevice: device, OriginMutation: m.ID}
		if cur != nil {
			next.Version = cur.Version + 1
			next.Owner = cur.Owner
			next.OriginDevice, next.OriginMutation = cur.OriginDevice, cur.OriginMutation
		}
		out.Version = next.Version
		return next, out
	}
}

func thenCreate(mid, id, text string) engine.Mutation {
	return engine.Mutation{ID: mid, Collection: notes, DocID: id, Op: engine.OpCreate,
		Doc: mustJSON(map[string]any{"text": text})}
}

// testThen: the writes a batch's Then returns are decided in the same
// atomic unit with the state the batch left, round after round, with
// indexes continuing after the batch's mutations; they are committed with
// the batch and get no outcome; a retry of the batch is answered from its
// records and hands Then nothing written; an error from Then, or effects
// that never settle, commit nothing of the batch.
func testThen(f *fixture) {
	t := f.t
	scope := []string{"then:" + org}
	muts := []engine.Mutation{thenCreate("m-1", "n-1", "one"), thenCreate("m-2", "n-2", "two")}
	var calls []int
	var rounds [][]string // what each call of Then was handed
	b := engine.PushBatch{Actor: rep1, Device: devA, Mutations: muts}
	all := append([]engine.Mutation(nil), muts...)
	b.Then = func(written []*engine.Document) ([]engine.Mutation, error) {
		var got []string
		for _, d := range written {
			got = append(got, fmt.Sprintf("%s@%d", d.ID, d.Version))
		}
		rounds = append(rounds, got)
		// Effects follow from what was written, as a planner's do.
		var more []engine.Mutation
		for _, d := range written {
			switch {
			case d.ID == "n-1" && d.Version == 1: // an effect document and a second write of the batch's own
				more = append(more, thenCreate("fx-1", "fx-1", "effect"),
					engine.Mutation{ID: "fx-2", Collection: notes, DocID: "n-1", Op: engine.OpUpdate, Doc: mustJSON(map[string]any{"text": "one, routed"})})
			case d.ID == "fx-1" && d.Version == 1: // and a write that follows from the effect
				more = append(more, engine.Mutation{ID: "fx-3", Collection: notes, DocID: "fx-1", Op: engine.OpUpdate,
					Doc: mustJSON(map[string]any{"text": "effect, granted"})})
			}
		}
		all = append(all, more...)
		return more, nil
	}
	outs, err := f.store.Push(f.ctx, b, thenDecide(rep1, devA, &all, &calls))
	if err != nil {
		t.Fatalf("push with Then: %v", err)
	}
	if len(outs) != 2 {
		t.Fatalf("push returned %d outcomes, want the batch's 2 (effects have none): %+v", len(outs), outs)
	}
	wantOutcome(t, outs[0], "m-1", engine.StatusApplied, 1)
	wantOutcome(t, outs[1], "m-2", engine.StatusApplied, 1)
	if want := "[[n-1@1 n-2@1] [fx-1@1 n-1@2] [fx-1@2]]"; fmt.Sprint(rounds) != want {
		t.Errorf("Then was handed %v, want %s", rounds, want)
	}
	if want := "[0 1 2 3 4]"; fmt.Sprint(calls) != want {
		t.Errorf("decide was called for %v, want %s (effects continue the batch's indexes)", calls, want)
	}
	changes, _ := f.storePullAll(engine.PullQuery{Org: org, Scopes: scope, Limit: 100, MaxBytes: 1 << 20})
	var feed []string
	for _, c := range changes {
		feed = append(feed, fmt.Sprintf("%s@%d:%s", c.ID, c.Version, c.Body))
	}
	// The order of one batch's documents in the feed is the store's choice.
	slices.Sort(feed)
	if want := `[fx-1@2:{"text":"effect, granted"} n-1@2:{"text":"one, routed"} n-2@1:{"text":"two"}]`; fmt.Sprint(feed) != want {
		t.Errorf("feed after the push = %v, want %s (one change per document, its last state)", feed, want)
	}

	// A retry writes nothing (the creates are recognised by the origin the
	// store kept): Then hears of nothing written and its effects are not
	// decided again.
	calls, rounds = nil, nil
	all = append(all[:0], muts...)
	outs, err = f.store.Push(f.ctx, b, thenDecide(rep1, devA, &all, &calls))
	if err != nil {
		t.Fatalf("retried push: %v", err)
	}
	wantOutcome(t, outs[0], "m-1", engine.StatusApplied, 1)
	if len(calls) != 0 || fmt.Sprint(rounds) != "[[]]" {
		t.Errorf("retry wrote %v and handed Then %v, want nothing written and one empty round", calls, rounds)
	}

	// Then failing, or never done, commits nothing of the batch.
	for _, tc := range []struct {
		name string
		then func(written []*engine.Document) ([]engine.Mutation, error)
		want string
	}{
		{"error", func([]*engine.Document) ([]engine.Mutation, error) { return nil, errors.New("planner failed") }, "planner failed"},
		{"endless", func(written []*engine.Document) ([]engine.Mutation, error) {
			id := fmt.Sprintf("fx-loop-%d", time.Now().UnixNano())
			m := thenCreate(id, id, "again")
			all = append(all, m)
			return []engine.Mutation{m}, nil
		}, "rounds"},
	} {
		m := thenCreate("m-"+tc.name, "n-"+tc.name, tc.name)
		all = []engine.Mutation{m}
		_, err := f.store.Push(f.ctx, engine.PushBatch{Actor: rep1, Device: devA, Mutations: []engine.Mutation{m}, Then: tc.then},
			thenDecide(rep1, devA, &all, &calls))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: push = %v, want an error naming %q", tc.name, err, tc.want)
		}
		got, err := f.store.Get(f.ctx, org, []engine.DocRef{{Collection: notes, ID: "n-" + tc.name}})
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		if len(got) != 0 {
			t.Errorf("%s: the batch's document was committed although Then failed: %+v", tc.name, got)
		}
	}
	changes, _ = f.storePullAll(engine.PullQuery{Org: org, Scopes: scope, Limit: 100, MaxBytes: 1 << 20})
	if len(changes) != 3 {
		t.Errorf("feed holds %d changes after the failed pushes, want the first push's 3: %v", len(changes), ids(changes))
	}
}

// testParents: a batch's parents are read in the store's atomic unit and
// handed to Snapshot before the first decision, with the state as it is
// when the unit starts (a parent written earlier is there, a missing one is
// absent), whether or not the batch writes them too; a batch answered from
// its records still gets its snapshot. Which stores can promise that nothing
// changes them before the commit is the store's to say; SQLite can.
func testParents(f *fixture) {
	t := f.t
	first := thenCreate("m-p0", "p-parent", "the parent")
	var calls []int
	muts := []engine.Mutation{first}
	if _, err := f.store.Push(f.ctx, engine.PushBatch{Actor: rep1, Device: devA, Mutations: muts},
		thenDecide(rep1, devA, &muts, &calls)); err != nil {
		t.Fatalf("push the parent: %v", err)
	}
	parent := engine.DocRef{Collection: notes, ID: "p-parent"}
	missing := engine.DocRef{Collection: notes, ID: "p-nowhere"}
	child := thenCreate("m-p1", "p-child", "the child")
	for _, retry := range []bool{false, true} {
		var snap map[engine.DocRef]*engine.Document
		decidedBefore, n := false, len(calls)
		muts := []engine.Mutation{child}
		d := thenDecide(rep1, devA, &muts, &calls)
		b := engine.PushBatch{Actor: rep1, Device: devA, Mutations: muts, Parents: []engine.DocRef{parent, missing},
			Snapshot: func(got map[engine.DocRef]*engine.Document, _ bool) { snap, decidedBefore = got, len(calls) > n }}
		outs, err := f.store.Push(f.ctx, b, d)
		if err != nil || outs[0].Status != engine.StatusApplied {
			t.Fatalf("push the child (retry %v): %v %+v", retry, err, outs)
		}
		switch {
		case snap == nil:
			t.Fatalf("retry %v: Snapshot was not called", retry)
		case decidedBefore:
			t.Errorf("retry %v: Snapshot came after a decision", retry)
		case snap[parent] == nil || snap[parent].Version != 1 || string(snap[parent].Body) != string(first.Doc):
			t.Errorf("retry %v: the parent in the snapshot = %+v", retry, snap[parent])
		}
		if _, ok := snap[missing]; ok {
			t.Errorf("retry %v: a missing parent is in the snapshot", retry)
		}
	}
}
