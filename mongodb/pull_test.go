package mongodb

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/patience"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// TestStarvedScopeSyncs: a scope with one change behind 400 changes of
// another scope (and 400 more after it), in a log read 8 markers at a time,
// gets its change in the first pull, with a number of commands that does not
// grow with the other scope's changes: the pull reads its own scope by
// position up to the organisation's resolved prefix, which counting moves
// past the busy stretch at once. Behind an open gap (a writer that allocated
// and has not committed) the quiet scope waits; once the gap has expired,
// the next pull finds it by halving the stretch with counts, closes it and
// delivers the change behind it.
func TestStarvedScopeSyncs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var now atomic.Int64
	now.Store(time.Date(2026, 12, 4, 6, 0, 0, 0, time.UTC).UnixNano())
	cc := &commandCounter{byName: map[string]int{}}
	opt := Options{Timeout: patience.Of(t), Grace: 2 * time.Second, Monitor: cc.monitor(),
		Now: func() time.Time { return time.Unix(0, now.Load()) }}
	opt.window = 8
	s := openT(t, freshDB(), opt)
	t.Cleanup(func() { s.Close() })
	const org = "o"
	push := func(scope string, ids ...string) {
		t.Helper()
		b := engine.PushBatch{Actor: engine.Actor{Org: org, User: "u"}, Device: "d"}
		for _, id := range ids {
			b.Mutations = append(b.Mutations, engine.Mutation{ID: "m-" + id, Collection: "customer_notes", DocID: id, Op: engine.OpCreate})
		}
		if _, err := s.Push(ctx, b, func(i int, cur *engine.Document) (*engine.Document, engine.Outcome) {
			m := b.Mutations[i]
			return &engine.Document{Org: org, Collection: "customer_notes", ID: m.DocID, Owner: "u", Version: 1,
					Body: []byte(`{"text":"x"}`), Fields: map[string]engine.FieldMeta{"text": {Version: 1}}, Scopes: []string{scope}, UpdatedBy: "u"},
				engine.Outcome{MutationID: m.ID, Status: engine.StatusApplied, Version: 1}
		}); err != nil {
			t.Fatal(err)
		}
	}
	busy := func(tag string) {
		t.Helper()
		for b := range 4 {
			var ids []string
			for i := range 100 {
				ids = append(ids, fmt.Sprintf("busy-%s-%d-%03d", tag, b, i))
			}
			push("user:busy", ids...)
		}
	}
	pull := func(after int64) (engine.PullPage, commands) {
		t.Helper()
		cc.take()
		pg, err := s.Pull(ctx, engine.PullQuery{Org: org, Scopes: []string{"user:quiet"}, After: after, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		return pg, cc.take()
	}
	busy("a")
	push("user:quiet", "mine")
	busy("b")
	pg, cmds := pull(0)
	if len(pg.Changes) != 1 || pg.Changes[0].ID != "mine" || pg.More || pg.Through != 801 {
		t.Fatalf("first pull: %+v; want the quiet scope's change, through the head 801", pg)
	}
	// The history record, the counter with the prefix, one count, the
	// prefix's store, the feed, the page's markers.
	if cmds.total() > 6 {
		t.Errorf("the first pull sent %v; want at most 6 whatever the other scope wrote", cmds)
	}
	t.Logf("first pull: %v", cmds)

	if _, err := s.allocate(ctx, org, 1); err != nil { // seq 802: a writer that has not committed
		t.Fatal(err)
	}
	busy("c")
	push("user:quiet", "late")
	pg, _ = pull(801)
	if len(pg.Changes) != 0 || pg.Through != 801 {
		t.Fatalf("pull behind an open gap: %+v; want nothing, through 801", pg)
	}
	now.Add(int64(3 * time.Second)) // the gap expires
	pg, cmds = pull(801)
	if len(pg.Changes) != 1 || pg.Changes[0].ID != "late" || pg.More || pg.Through != 1203 {
		t.Fatalf("pull after the gap expired: %+v; want the change behind it, through the head 1203", pg)
	}
	// 401 seqs in windows of 8 would be 51 reads of the log; counts
	// halving the stretch take 7, one more counts past the closed gap.
	if cmds.total() > 20 {
		t.Errorf("the pull that closed the gap sent %v; want a logarithm of the stretch, not a walk", cmds)
	}
	t.Logf("pull past the expired gap: %v", cmds)
}

// TestResolvedPrefixShared: once one instance's pull moved the
// organisation's resolved prefix, a pull through another instance (a
// process of its own) reads it and sends no count and no read of the log:
// the counter with the prefix, the feed, the page's markers.
func TestResolvedPrefixShared(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := freshDB()
	a := openT(t, db, Options{Timeout: patience.Of(t)})
	cc := &commandCounter{byName: map[string]int{}}
	b := openT(t, db, Options{Timeout: patience.Of(t), Monitor: cc.monitor()})
	t.Cleanup(func() { a.Close(); b.Close() })
	const org, scope = "o", "user:u"
	var muts []engine.Mutation
	for i := range 50 {
		id := fmt.Sprintf("n-%02d", i)
		muts = append(muts, engine.Mutation{ID: "m-" + id, Collection: "customer_notes", DocID: id, Op: engine.OpCreate})
	}
	pushAll(t, a, engine.PushBatch{Actor: engine.Actor{Org: org, User: "u"}, Device: "d", Mutations: muts}, scope)
	q := engine.PullQuery{Org: org, Scopes: []string{scope}, After: 10, Limit: 100}
	if pg, err := a.Pull(ctx, q); err != nil || len(pg.Changes) != 40 || pg.Through != 50 {
		t.Fatalf("first instance: %+v, %v", pg, err)
	}
	cc.take()
	pg, err := b.Pull(ctx, q)
	got := cc.take()
	if err != nil || len(pg.Changes) != 40 || pg.Through != 50 {
		t.Fatalf("second instance: %+v, %v", pg, err)
	}
	// A checkpoint above 0 and no floor: the history record is one more
	// find the first time this instance sees the organisation.
	if got["find"] > 4 || got.total() != got["find"] {
		t.Errorf("the second instance's pull sent %v; want the finds of the prefix, the feed and the markers (and the history record) only", got)
	}
	t.Logf("second instance: %v", got)
}
