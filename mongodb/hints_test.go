package mongodb

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/event"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/internal/patience"
	"github.com/fieldsync/fieldsync/push"
	"github.com/fieldsync/fieldsync/schemas"
	"github.com/fieldsync/fieldsync/stream"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// TestStreamPollsOncePerTick: a hub streaming to 30 organisations from
// this instance asks the counters once per tick for all of them (HeadHints),
// not once per organisation; a change written through another instance (no
// commit wake-up here) still pokes its organisation's stream.
func TestStreamPollsOncePerTick(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := freshDB()
	// Each find on the counters: how many organisations it names.
	finds := make(chan int, 1024)
	var watching atomic.Bool
	mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if !watching.Load() || e.CommandName != "find" {
			return
		}
		if c, ok := e.Command.Lookup("find").StringValueOK(); !ok || c != "counters" {
			return
		}
		n := 1
		if in, err := e.Command.LookupErr("filter", "_id", "$in"); err == nil {
			if arr, ok := in.ArrayOK(); ok {
				vals, _ := arr.Values()
				n = len(vals)
			}
		}
		select {
		case finds <- n:
		default:
		}
	}}
	r := openT(t, db, Options{Monitor: mon, Timeout: patience.Of(t)})
	w := openT(t, db, Options{Timeout: patience.Of(t)}) // another instance
	t.Cleanup(func() { r.Close(); w.Close() })
	const orgs, scope = 30, "user:u"
	push := func(org, id string) {
		t.Helper()
		b := engine.PushBatch{Actor: engine.Actor{Org: org, User: "u"}, Device: "d",
			Mutations: []engine.Mutation{{ID: "m-" + id, Collection: "customer_notes", DocID: id, Op: engine.OpCreate}}}
		if _, err := w.Push(ctx, b, func(i int, cur *engine.Document) (*engine.Document, engine.Outcome) {
			return &engine.Document{Org: org, Collection: "customer_notes", ID: id, Owner: "u", Version: 1,
					Body: []byte(`{"text":"x"}`), Fields: map[string]engine.FieldMeta{"text": {Version: 1}}, Scopes: []string{scope}, UpdatedBy: "u"},
				engine.Outcome{MutationID: "m-" + id, Status: engine.StatusApplied, Version: 1}
		}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range orgs {
		push(fmt.Sprintf("o-%02d", i), "first")
	}
	const tick = 20 * time.Millisecond
	hub := stream.New(stream.Config{Feed: r, Instance: "i-hints", Poll: tick})
	t.Cleanup(hub.Close)
	var streams []*stream.Stream
	for i := range orgs {
		org := fmt.Sprintf("o-%02d", i)
		head, err := r.Head(ctx, org)
		if err != nil {
			t.Fatal(err)
		}
		st, err := hub.Open(ctx, stream.Sub{Org: org, User: "u", Device: "d", Keys: []string{scope}, After: head})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(st.Close)
		streams = append(streams, st)
	}
	// Idle: every read of the counters asks for all the organisations at
	// once (one per tick), never for one of them.
	watching.Store(true)
	for range 5 {
		select {
		case n := <-finds:
			if n != orgs {
				t.Fatalf("a counter read named %d organisations; want all %d in one read", n, orgs)
			}
		case <-time.After(patience.Of(t)):
			t.Fatalf("no counter read within %v", patience.Of(t))
		}
	}
	watching.Store(false)
	// A change through the other instance pokes its organisation.
	push("o-07", "second")
	ectx, cancel := context.WithTimeout(ctx, patience.Of(t))
	defer cancel()
	for {
		ev, ok := streams[7].Next(ectx)
		if !ok {
			t.Fatal("no poke for the change written through another instance")
		}
		if ev.Kind == stream.Poke {
			break
		}
	}
}

// TestTailerPassSkipsIdleOrgs: the push tailer's pass reads every
// organisation's cursor and head hint in one read each, and reads the
// cursor and the feed only of organisations with something new.
func TestTailerPassSkipsIdleOrgs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var perOrg atomic.Int64 // single-organisation reads of the tailer's cursors
	var watching atomic.Bool
	mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if !watching.Load() || e.CommandName != "find" {
			return
		}
		if c, ok := e.Command.Lookup("find").StringValueOK(); ok && c == collPushTail {
			if _, err := e.Command.LookupErr("filter", "_id"); err == nil {
				perOrg.Add(1)
			}
		}
	}}
	s := openT(t, freshDB(), Options{Monitor: mon, Timeout: patience.Of(t)})
	t.Cleanup(func() { s.Close() })
	now := time.Now()
	const orgs = 20
	write := func(org, id string) {
		t.Helper()
		body := []byte(`{"text":"x"}`)
		if _, err := s.Push(ctx, engine.PushBatch{Actor: engine.Actor{Org: org, User: "u"}, Device: "d",
			Mutations: []engine.Mutation{{ID: id, Collection: "customer_notes", DocID: id, Op: engine.OpCreate}}},
			func(int, *engine.Document) (*engine.Document, engine.Outcome) {
				return &engine.Document{Org: org, Collection: "customer_notes", ID: id, Owner: "u", Version: 1, Body: body,
						Fields: map[string]engine.FieldMeta{}, Scopes: []string{fieldsales.ScopeOrg}, UpdatedAt: now, UpdatedBy: "u"},
					engine.Outcome{MutationID: id, Status: engine.StatusApplied, Version: 1}
			}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range orgs {
		org := fmt.Sprintf("o-%02d", i)
		if err := s.PutOrg(ctx, &identity.Org{ID: org, Name: org, TimeZone: "UTC", Created: now}); err != nil {
			t.Fatal(err)
		}
		write(org, "n-1")
	}
	tl := push.NewTailer(push.TailerConfig{Feed: s, Store: s, Directory: s, Instance: "i1"})
	if err := tl.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	write("o-03", "n-2")
	watching.Store(true)
	if err := tl.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	watching.Store(false)
	if got := perOrg.Load(); got != 1 {
		t.Errorf("the pass read %d organisations' cursors one by one; want only o-03's", got)
	}
	cursors, err := s.TailCursors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range orgs {
		org := fmt.Sprintf("o-%02d", i)
		head, err := s.Head(ctx, org)
		if err != nil {
			t.Fatal(err)
		}
		if cursors[org] != head {
			t.Errorf("%s: cursor %d, head %d: a pass left it behind", org, cursors[org], head)
		}
	}
}

// TestRestampPastAGap: a customer's history is restamped when its reps
// change, even when a writer elsewhere in the organisation holds a number it
// has not committed (a gap, which holds every pull at it): every note of the
// customer, before and after the gap, moves to the new rep.
func TestRestampPastAGap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openT(t, freshDB(), Options{Timeout: patience.Of(t), Grace: time.Hour}) // the gap stays open
	t.Cleanup(func() { s.Close() })
	sch, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(ctx, engine.Config{Rules: fieldsales.New(fieldsales.VisitRules{}), Store: s, Schemas: sch})
	if err != nil {
		t.Fatal(err)
	}
	const org = "o"
	admin := engine.Actor{Org: org, User: "adm", Roles: []string{"admin"}}
	assign := func(rep string) {
		t.Helper()
		raw, _ := json.Marshal(map[string]any{"name": "Acme", "assigned_reps": []string{rep}})
		var f map[string]json.RawMessage
		json.Unmarshal(raw, &f)
		outs, err := eng.Upsert(ctx, admin, "test", []engine.UpsertDoc{{Collection: fieldsales.CollCustomers, ID: "c-1", Fields: f}})
		if err != nil || outs[0].Status != engine.StatusApplied {
			t.Fatalf("assign %s: %v %+v", rep, err, outs)
		}
	}
	notes := func(ids ...string) {
		t.Helper()
		var muts []engine.Mutation
		for _, id := range ids {
			doc, _ := json.Marshal(map[string]any{"customer_id": "c-1", "text": id})
			muts = append(muts, engine.Mutation{ID: "m-" + id, Collection: fieldsales.CollCustomerNotes, DocID: id, Op: engine.OpCreate, Doc: doc})
		}
		outs, err := eng.Push(ctx, engine.Actor{Org: org, User: "rep-a", Roles: []string{"rep"}}, engine.PushRequest{DeviceID: "d", Mutations: muts})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range outs {
			if o.Status != engine.StatusApplied {
				t.Fatalf("note: %+v", o)
			}
		}
	}
	assign("rep-a")
	notes("n-1", "n-2")
	if _, err := s.allocate(ctx, org, 1); err != nil { // a writer that never commits
		t.Fatal(err)
	}
	notes("n-3", "n-4")
	assign("rep-b")
	refs := []engine.DocRef{{Collection: fieldsales.CollCustomerNotes, ID: "n-1"}, {Collection: fieldsales.CollCustomerNotes, ID: "n-2"},
		{Collection: fieldsales.CollCustomerNotes, ID: "n-3"}, {Collection: fieldsales.CollCustomerNotes, ID: "n-4"}}
	got, err := s.Get(ctx, org, refs)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range refs {
		keys := got[r].Scopes
		if !slices.Contains(keys, fieldsales.UserScope("rep-b")) || slices.Contains(keys, fieldsales.UserScope("rep-a")) {
			t.Errorf("%s keeps keys %v after the customer moved to rep-b", r, keys)
		}
	}
}
