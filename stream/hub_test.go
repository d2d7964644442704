package stream_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/internal/patience"
	"github.com/fieldsync/fieldsync/schemas"
	"github.com/fieldsync/fieldsync/sqlite"
	"github.com/fieldsync/fieldsync/stream"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// The hub over the real SQLite store and engine: pokes are observed as the
// events a transport would send.

const org = "org-a"

var (
	admin = engine.Actor{Org: org, User: "u-admin", Roles: []string{"admin"}}
	rep1  = engine.Actor{Org: org, User: "u-rep1", Roles: []string{"rep"}}
	rep2  = engine.Actor{Org: org, User: "u-rep2", Roles: []string{"rep"}}
)

// Every expected event is bounded by the test's patience
// (internal/patience); none of the tests waits this long unless something
// is broken.

type env struct {
	t     *testing.T
	store *sqlite.Store
	eng   *engine.Engine
	hub   *stream.Hub
	n     atomic.Int64
}

// newEnv starts a hub over a fresh SQLite store. Its poll interval is an
// hour unless tweak changes it: on SQLite every poke of these tests comes
// from the commit wake-up.
func newEnv(t *testing.T, tweak func(*stream.Config)) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "fs.db"), sqlite.Options{Synchronous: "OFF"})
	if err != nil {
		t.Fatal(err)
	}
	set, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(ctx, engine.Config{Rules: fieldsales.New(fieldsales.VisitRules{}), Store: st, Schemas: set})
	if err != nil {
		t.Fatal(err)
	}
	cfg := stream.Config{Feed: st, Presence: st, Instance: "i-test", Poll: time.Hour}
	if tweak != nil {
		tweak(&cfg)
	}
	hub := stream.New(cfg)
	st.OnCommit(hub.Wake)
	t.Cleanup(func() {
		hub.Close()
		st.Close()
	})
	return &env{t: t, store: st, eng: eng, hub: hub}
}

// customer writes customer id assigned to reps, as an admin.
func (e *env) customer(id string, reps ...string) {
	e.t.Helper()
	outs, err := e.eng.Upsert(context.Background(), admin, "console", []engine.UpsertDoc{{Collection: fieldsales.CollCustomers, ID: id,
		Fields: map[string]json.RawMessage{"name": raw(e.t, "Customer "+id), "assigned_reps": raw(e.t, reps)}}})
	if err != nil || outs[0].Status != engine.StatusApplied {
		e.t.Fatalf("write customer %s: %v %+v", id, err, outs)
	}
}

func raw(t *testing.T, v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (e *env) head() int64 {
	e.t.Helper()
	h, err := e.store.Head(context.Background(), org)
	if err != nil {
		e.t.Fatal(err)
	}
	return h
}

// open opens a stream for actor's device at position after.
func (e *env) open(a engine.Actor, device string, after int64, check func(context.Context) ([]string, error)) *stream.Stream {
	e.t.Helper()
	acc, err := e.eng.Access(context.Background(), a)
	if err != nil {
		e.t.Fatal(err)
	}
	st, err := e.hub.Open(context.Background(), stream.Sub{Org: a.Org, User: a.User, Device: device, Keys: acc.Keys, After: after, Check: check})
	if err != nil {
		e.t.Fatalf("open %s/%s: %v", a.User, device, err)
	}
	e.t.Cleanup(st.Close)
	return st
}

// next returns the stream's next event, failing after the test's patience.
func next(t *testing.T, st *stream.Stream) stream.Event {
	t.Helper()
	wait := patience.Of(t)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ev, ok := st.Next(ctx)
	if !ok {
		t.Fatalf("no event within %s", wait)
	}
	return ev
}

// nextPoke skips heartbeats up to the next poke or end.
func nextPoke(t *testing.T, st *stream.Stream) stream.Event {
	t.Helper()
	for {
		if ev := next(t, st); ev.Kind != stream.Heartbeat {
			return ev
		}
	}
}

func TestPokesFollowReadSets(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	s1 := e.open(rep1, "d1", e.head(), nil)
	s2 := e.open(rep2, "d2", e.head(), nil)
	sa := e.open(admin, "da", e.head(), nil)

	start := time.Now()
	e.customer("c-1", rep1.User)
	ev := nextPoke(t, s1)
	if ev.Kind != stream.Poke || ev.Head != e.head() {
		t.Fatalf("rep1 got %+v, want a poke at head %d", ev, e.head())
	}
	t.Logf("poke %v after the write began", time.Since(start))
	// The admin reads everything: poked for the same change. Once the
	// admin's poke is here, the poller has passed rep1's change, so rep2's
	// first poke must be for something later.
	first := nextPoke(t, sa)
	if first.Head != ev.Head {
		t.Fatalf("admin got %+v, want head %d", first, ev.Head)
	}
	e.customer("c-2", rep2.User)
	if ev := nextPoke(t, s2); ev.Kind != stream.Poke || ev.Head <= first.Head {
		t.Fatalf("rep2's first event %+v: it was poked for rep1's customer (head %d)", ev, first.Head)
	}
	// Moving c-1 to rep2 pokes rep1 too: it must pull the eviction.
	before := e.head()
	e.customer("c-1", rep2.User)
	if ev := nextPoke(t, s1); ev.Head <= before {
		t.Fatalf("rep1 after losing c-1: %+v, want a poke past %d", ev, before)
	}
	if ev := nextPoke(t, s2); ev.Head <= before {
		t.Fatalf("rep2 after gaining c-1: %+v, want a poke past %d", ev, before)
	}
}

func TestCatchUpOnConnect(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.customer("c-1", rep1.User)
	seen := e.head()
	e.customer("c-2", rep2.User) // not rep1's
	// rep1 knows everything up to seen; only rep2's customer came after.
	s := e.open(rep1, "d1", seen, nil)
	e.customer("c-3", rep1.User)
	if ev := nextPoke(t, s); ev.Head != e.head() {
		t.Fatalf("first event %+v: a catch-up poke for a change rep1 cannot see (ready at %d)", ev, s.Ready())
	}
	// Behind by a change it can see: poked at once, before anything new.
	s2 := e.open(rep1, "d2", seen, nil)
	if ev := nextPoke(t, s2); ev.Kind != stream.Poke || ev.Head < s2.Ready() {
		t.Fatalf("catch-up: %+v, want a poke at %d or later", ev, s2.Ready())
	}
	// An unknown position pokes at once too.
	s3 := e.open(rep2, "d3", -1, nil)
	if ev := nextPoke(t, s3); ev.Kind != stream.Poke {
		t.Fatalf("unknown position: %+v, want a poke", ev)
	}
}

func TestLimitsAndReplacement(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *stream.Config) { c.MaxPerUser, c.MaxStreams = 2, 3 })
	a := e.open(rep1, "d1", 0, nil)
	e.open(rep1, "d2", 0, nil)
	_, err := e.hub.Open(context.Background(), stream.Sub{Org: org, User: rep1.User, Device: "d3", Keys: []string{"user:u-rep1"}})
	wantCode(t, err, engine.KindRateLimited, stream.CodeTooManyStreams)
	// The same device again replaces its stream instead of counting twice.
	a2 := e.open(rep1, "d1", 0, nil)
	for {
		ev := next(t, a)
		if ev.Kind == stream.End {
			if ev.Code != stream.CodeReplaced {
				t.Fatalf("old stream ended with %q, want %q", ev.Code, stream.CodeReplaced)
			}
			break
		}
	}
	a.Close() // what the transport does after the end event: must not unregister a2
	e.open(rep2, "d4", 0, nil)
	_, err = e.hub.Open(context.Background(), stream.Sub{Org: org, User: "u-rep3", Device: "d5", Keys: []string{"user:u-rep3"}})
	wantCode(t, err, engine.KindUnavailable, stream.CodeStreamsFull)
	if n := e.hub.Count(); n != 3 {
		t.Fatalf("count %d, want 3", n)
	}
	// a2 is still registered and poked.
	before := e.head()
	e.customer("c-9", rep1.User)
	if ev := nextPoke(t, a2); ev.Head <= before {
		t.Fatalf("replacement stream: %+v", ev)
	}
	a2.Close()
	e.open(engine.Actor{Org: org, User: "u-rep3"}, "d5", 0, nil) // a place is free again
}

func wantCode(t *testing.T, err error, kind engine.Kind, code string) {
	t.Helper()
	var e *engine.Error
	if !errors.As(err, &e) || e.Kind != kind || e.Code != code {
		t.Fatalf("error %v, want kind %v code %s", err, kind, code)
	}
}

func TestHeartbeatsPresenceAndRecheck(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *stream.Config) { c.Heartbeat, c.Recheck = 20*time.Millisecond, 20*time.Millisecond })
	var keys atomic.Pointer[[]string]
	var disabled atomic.Bool
	acc, _ := e.eng.Access(context.Background(), rep1)
	keys.Store(&acc.Keys)
	check := func(ctx context.Context) ([]string, error) {
		if disabled.Load() {
			return nil, engine.Errorf(engine.KindForbidden, engine.CodeUserDisabled, "", "this user is disabled")
		}
		return *keys.Load(), nil
	}
	s := e.open(rep1, "d1", e.head(), check)
	if ev := next(t, s); ev.Kind != stream.Heartbeat {
		t.Fatalf("idle stream: %+v, want a heartbeat", ev)
	}
	// Presence: written on connect and renewed with heartbeats.
	eventually(t, "rep1's device online", func() bool {
		d, err := e.store.Online(context.Background(), org, rep1.User)
		return err == nil && slices.Equal(d, []string{"d1"})
	})
	// The read set changes (rep1 became a manager of rep2): re-keyed and
	// poked, and then poked for rep2's changes.
	more := append(slices.Clone(acc.Keys), "user:u-rep2")
	slices.Sort(more)
	keys.Store(&more)
	if ev := nextPoke(t, s); ev.Kind != stream.Poke {
		t.Fatalf("re-keyed stream: %+v, want a poke", ev)
	}
	before := e.head()
	e.customer("c-2", rep2.User)
	if ev := nextPoke(t, s); ev.Head <= before {
		t.Fatalf("after re-keying to rep2's scope: %+v", ev)
	}
	// Disabled: the stream ends with the directory's code.
	disabled.Store(true)
	ev := nextPoke(t, s)
	if ev.Kind != stream.End || ev.Code != engine.CodeUserDisabled {
		t.Fatalf("disabled user: %+v, want end %s", ev, engine.CodeUserDisabled)
	}
	if _, ok := s.Next(context.Background()); ok {
		t.Fatal("events after the end")
	}
	s.Close()
	eventually(t, "rep1's device offline", func() bool {
		d, err := e.store.Online(context.Background(), org, rep1.User)
		return err == nil && len(d) == 0
	})
}

func TestCloseEndsStreams(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	s := e.open(rep1, "d1", 0, nil)
	eventually(t, "online", func() bool {
		d, _ := e.store.Online(context.Background(), org, rep1.User)
		return len(d) == 1
	})
	done := make(chan struct{})
	go func() { e.hub.Close(); close(done) }()
	if ev := nextPoke(t, s); ev.Kind != stream.End || ev.Code != stream.CodeShuttingDown {
		t.Fatalf("on close: %+v", ev)
	}
	select {
	case <-done:
	case <-time.After(patience.Of(t)):
		t.Fatal("Close did not return")
	}
	if d, err := e.store.Online(context.Background(), org, rep1.User); err != nil || len(d) != 0 {
		t.Fatalf("after Close the instance's presence remains: %v %v", d, err)
	}
	if _, err := e.hub.Open(context.Background(), stream.Sub{Org: org, User: rep1.User, Device: "d2"}); err == nil {
		t.Fatal("a closed hub opened a stream")
	}
}

// eventually polls cond until it holds, failing after the test's patience.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	wait := patience.Of(t)
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, wait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOrphanedStreamIsClosed(t *testing.T) {
	t.Parallel()
	// The hub's clock moves a minute each time it is read: every sweep
	// sees the unread heartbeat waiting longer.
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	e := newEnv(t, func(c *stream.Config) {
		c.Heartbeat = 10 * time.Millisecond
		c.Now = func() time.Time { return time.Unix(0, clock.Add(int64(time.Minute))) }
	})
	s := e.open(rep1, "d1", e.head(), nil) // nobody ever calls Next
	eventually(t, "the orphan closed", func() bool { return e.hub.Count() == 0 })
	select {
	case <-s.Done():
	default:
		t.Fatal("the orphan is unregistered but not closed")
	}
}

// Watches (a library's pull streams, one per collection of an app) are
// poked like streams but are no devices: many of one user live side by
// side with the user's device stream, none replaces another or writes
// presence, they start at the head without a catch-up, and they have a
// limit of their own.
func TestWatches(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *stream.Config) { c.MaxPerUser = 1 })
	e.customer("c-0", rep1.User) // before the watches: no catch-up poke
	acc, err := e.eng.Access(context.Background(), rep1)
	if err != nil {
		t.Fatal(err)
	}
	watch := func() (*stream.Stream, error) {
		return e.hub.Watch(context.Background(), stream.Sub{Org: org, User: rep1.User, Device: "d1", Keys: acc.Keys, After: 0})
	}
	var ws []*stream.Stream
	for range stream.WatchesPerDevice {
		w, err := watch()
		if err != nil {
			t.Fatalf("watch %d: %v", len(ws)+1, err)
		}
		t.Cleanup(w.Close)
		if w.Ready() != e.head() {
			t.Fatalf("watch ready at %d, want the head %d", w.Ready(), e.head())
		}
		ws = append(ws, w)
	}
	_, err = watch()
	wantCode(t, err, engine.KindRateLimited, stream.CodeTooManyStreams)
	// The user's one device stream still fits (MaxPerUser 1), and is the
	// only presence record.
	dev := e.open(rep1, "d1", e.head(), nil)
	eventually(t, "rep1's device online", func() bool {
		d, err := e.store.Online(context.Background(), org, rep1.User)
		return err == nil && slices.Equal(d, []string{"d1"})
	})
	before := e.head()
	e.customer("c-1", rep1.User)
	for i, w := range append(ws, dev) {
		if ev := nextPoke(t, w); ev.Kind != stream.Poke || ev.Head <= before {
			t.Fatalf("stream %d: %+v, want a poke past %d", i, ev, before)
		}
	}
	// A watch closed frees its place; closing them all leaves the device.
	ws[0].Close()
	w, err := watch()
	if err != nil {
		t.Fatalf("a watch after one closed: %v", err)
	}
	w.Close()
	for _, w := range ws {
		w.Close()
	}
	if n := e.hub.Count(); n != 1 {
		t.Fatalf("count %d after the watches closed, want the device's stream alone", n)
	}
	if d, err := e.store.Online(context.Background(), org, rep1.User); err != nil || !slices.Equal(d, []string{"d1"}) {
		t.Fatalf("online %v %v: the watches touched the device's presence", d, err)
	}
}
