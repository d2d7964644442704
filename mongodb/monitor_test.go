package mongodb

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/event"

	"github.com/fieldsync/fieldsync/internal/ferrettest"

	"github.com/fieldsync/fieldsync/internal/patience"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// commandCounter counts the commands a store sends, by name, through the
// driver's command monitoring.
type commandCounter struct {
	mu     sync.Mutex
	byName map[string]int
}

func (c *commandCounter) monitor() *event.CommandMonitor {
	return &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if ferrettest.DriverCommands[e.CommandName] { // handshakes, authentication, session cleanup
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.byName[e.CommandName]++
	}}
}

// take returns the commands counted since the last take and starts over.
func (c *commandCounter) take() commands {
	c.mu.Lock()
	defer c.mu.Unlock()
	got := commands(c.byName)
	c.byName = map[string]int{}
	return got
}

type commands map[string]int

func (c commands) total() int {
	n := 0
	for _, k := range c {
		n += k
	}
	return n
}

func (c commands) String() string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(c)) {
		parts = append(parts, fmt.Sprintf("%s %d", name, c[name]))
	}
	return fmt.Sprintf("%d (%s)", c.total(), strings.Join(parts, ", "))
}

// TestRoundTrips counts, with the driver's command monitoring, the commands
// a push of creates, a push of updates to those documents and a pull page
// send, at 100 documents and at 10: each is a small constant, the same at
// both sizes (bulk writes and batched reads, never one command per
// document). The bounds are the round trips push.go and pull.go document
// (creates 6, updates 8, a first page 6, a page at a current prefix 3); the
// log shows the breakdown by command.
func TestRoundTrips(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cc := &commandCounter{byName: map[string]int{}}
	s := openT(t, freshDB(), Options{Monitor: cc.monitor(), Timeout: patience.Of(t)})
	t.Cleanup(func() { s.Close() })

	type costs struct{ creates, updates, page, again commands }
	measure := func(n int) costs {
		org := fmt.Sprintf("org-%d", n)
		scope := "user:u"
		b := engine.PushBatch{Actor: engine.Actor{Org: org, User: "u"}, Device: "d"}
		for i := range n {
			id := fmt.Sprintf("note-%03d", i)
			b.Mutations = append(b.Mutations, engine.Mutation{ID: "c-" + id, Collection: "customer_notes", DocID: id, Op: engine.OpCreate})
		}
		var c costs
		cc.take()
		pushAll(t, s, b, scope)
		c.creates = cc.take()

		// n updates of n-1 documents (the first one twice): FerretDB
		// 1.24 hangs on an update command of 100 or more statements (its
		// update handler keeps every statement's cursor open until the
		// command ends, and its SQLite pool has 100 connections), so a
		// batch of 100 updates to 100 documents cannot run here.
		u := engine.PushBatch{Actor: b.Actor, Device: b.Device}
		want := map[string]int64{}
		for i := range n {
			id := b.Mutations[i%(n-1)].DocID
			u.Mutations = append(u.Mutations, engine.Mutation{ID: fmt.Sprintf("u-%03d", i), Collection: "customer_notes",
				DocID: id, Op: engine.OpUpdate, BaseVersion: 1})
			want[id]++
		}
		pushAll(t, s, u, scope)
		c.updates = cc.take()

		pg, err := s.Pull(ctx, engine.PullQuery{Org: org, Scopes: []string{scope}, Limit: n})
		page, more := pg.Changes, pg.More
		c.page = cc.take()
		if err != nil {
			t.Fatalf("pull: %v", err)
		}
		if len(page) != n || more {
			t.Fatalf("pull of %d documents at limit %d: %d changes, has_more %v", n, n, len(page), more)
		}
		for _, ch := range page {
			if ch.Version != 1+want[ch.ID] {
				t.Fatalf("pull: %s at version %d, want %d", ch.ID, ch.Version, 1+want[ch.ID])
			}
		}
		// The same page again, from a checkpoint (the history record
		// cached): the prefix is stored and current, nothing to move.
		if _, err := s.Pull(ctx, engine.PullQuery{Org: org, Scopes: []string{scope}, After: 1, Limit: n}); err != nil {
			t.Fatalf("pull: %v", err)
		}
		c.again = cc.take()
		t.Logf("%d documents: push of creates %v; push of updates %v; pull page %v; again %v", n, c.creates, c.updates, c.page, c.again)
		return c
	}
	big, small := measure(100), measure(10)

	for _, tc := range []struct {
		what       string
		big, small commands
		max        int
	}{
		{"a push of creates", big.creates, small.creates, 6},
		{"a push of updates", big.updates, small.updates, 8},
		// The history record (which a pull from 0 reads fresh and later
		// pulls from a cache: retention.go), the counter with the stored
		// prefix, the markers past it (one read: the log is shorter than a
		// window), the new prefix's store, the feed, the page's markers.
		{"a pull page", big.page, small.page, 6},
		// The counter with the prefix, the feed, the page's markers.
		{"a pull page at a current prefix", big.again, small.again, 3},
	} {
		if tc.big.total() > tc.max {
			t.Errorf("%s of 100 sent %v; want at most %d", tc.what, tc.big, tc.max)
		}
		// The same commands at both sizes.
		if !maps.Equal(tc.big, tc.small) || tc.small.total() > tc.max {
			t.Errorf("%s sent %v for 100 documents and %v for 10; the count must not grow with the batch", tc.what, tc.big, tc.small)
		}
	}
}

// pushAll pushes b, creating or updating each note (a new body, one version
// up), and fails unless every mutation was applied.
func pushAll(t *testing.T, s *Store, b engine.PushBatch, scope string) {
	t.Helper()
	decide := func(i int, cur *engine.Document) (*engine.Document, engine.Outcome) {
		m := b.Mutations[i]
		next := &engine.Document{Org: b.Actor.Org, Collection: m.Collection, ID: m.DocID, Owner: b.Actor.User, Version: 1,
			Scopes: []string{scope}, UpdatedBy: b.Actor.User}
		if cur != nil {
			next = cur
			next.Version++
		}
		next.Body = []byte(fmt.Sprintf(`{"text":%q}`, m.ID))
		next.Fields = map[string]engine.FieldMeta{"text": {Version: next.Version, Device: b.Device}}
		return next, engine.Outcome{MutationID: m.ID, Status: engine.StatusApplied, Version: next.Version}
	}
	outs, err := s.Push(context.Background(), b, decide)
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	for _, o := range outs {
		if o.Status != engine.StatusApplied {
			t.Fatalf("push outcome %+v, want applied", o)
		}
	}
}
