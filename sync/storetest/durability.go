package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"sync"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// testRestart: everything the protocol promises across a server restart.
// Checkpoints stay valid (the signing key is a store secret), the sequence
// continues after them, the exactly-once log and the per-field history
// survive.
func testRestart(f *fixture) {
	t := f.t
	secret, err := f.store.Secret(f.ctx, "storetest-restart", 32)
	if err != nil || len(secret) != 32 {
		t.Fatalf("Secret = %x, %v; want 32 bytes", secret, err)
	}
	if again, err := f.store.Secret(f.ctx, "storetest-restart", 32); err != nil || !bytes.Equal(again, secret) {
		t.Fatalf("Secret asked twice = %x, %v; want the first value %x", again, err, secret)
	}
	if other, err := f.store.Secret(f.ctx, "storetest-other", 32); err != nil || bytes.Equal(other, secret) {
		t.Errorf("two secrets have the same value %x (err %v)", other, err)
	}

	batch := []engine.Mutation{
		createNote("m-1", "n-1", "Wants 40 motors"),
		createNote("m-2", "n-2", "Call back Tuesday"),
		createNote("m-3", "n-3", "New contact: Ana"),
	}
	first := f.push(f.eng, rep1, devA, batch...)
	_, cp := f.pullAll(f.eng, rep1, "", 100)
	later := f.push(f.eng, rep1, devB,
		createNote("m-1", "n-4", "After the checkpoint"),
		update("m-2", notes, "n-1", 1, map[string]any{"text": "Wants 45 motors"}))
	wantOutcome(t, later[1], "m-2", engine.StatusApplied, 2)

	f.store = f.h.Reopen(t)
	f.eng = f.engine(engine.Limits{})

	if again, err := f.store.Secret(f.ctx, "storetest-restart", 32); err != nil || !bytes.Equal(again, secret) {
		t.Errorf("Secret after reopen = %x, %v; want %x", again, err, secret)
	}
	changes, cp := f.pullAll(f.eng, rep1, cp, 100)
	wantFeed(f, "pull from a checkpoint issued before the restart", changes, []string{notes + "/n-4", notes + "/n-1"})
	if len(changes) == 2 {
		wantPut(t, changes[1], notes, "n-1", 2, noteDoc("Wants 45 motors"))
	}

	wantSameOutcomes(t, "batch pushed again after the restart", f.push(f.eng, rep1, devA, batch...), first)
	if res := f.pull(f.eng, rep1, cp, 100); len(res.Changes) != 0 {
		t.Errorf("the retried batch wrote after the restart: %v", ids(res.Changes))
	}

	// New writes land after every checkpoint issued before the restart.
	wantOutcome(t, f.push(f.eng, rep1, devA, createNote("m-4", "n-5", "After the restart"))[0], "m-4", engine.StatusApplied, 1)
	changes, _ = f.pullAll(f.eng, rep1, cp, 100)
	if len(changes) != 1 || changes[0].ID != "n-5" {
		t.Errorf("pull after a write following the restart = %v, want n-5", ids(changes))
	}
	// Who changed which field survived too: device A's stale edit of the
	// text device B changed before the restart is a conflict.
	o := f.push(f.eng, rep1, devA, update("m-5", notes, "n-1", 1, map[string]any{"text": "Wants 30 motors"}))[0]
	if o.Status != engine.StatusMerged || len(o.Conflicts) != 1 || o.Version != 2 {
		t.Errorf("stale edit after the restart = %s, want merged v2 with a conflict on text", mustJSON(o))
	}

	// A restart without writes in between loses nothing either.
	f.store = f.h.Reopen(t)
	f.eng = f.engine(engine.Limits{})
	changes, _ = f.pullAll(f.eng, rep1, "", 100)
	got := byID(t, changes)
	if len(got) != 5 || got[notes+"/n-1"].Version != 2 || got[notes+"/n-5"].Version != 1 {
		t.Errorf("feed after a second restart has %d documents, n-1 v%d, n-5 v%d; want 5, v2, v1",
			len(got), got[notes+"/n-1"].Version, got[notes+"/n-5"].Version)
	}
}

// progress lets readers wait for the next commit instead of sleeping.
type progress struct {
	mu   sync.Mutex
	ch   chan struct{}
	done bool
}

func newProgress() *progress { return &progress{ch: make(chan struct{})} }

// state returns a channel closed at the next commit, and whether every
// writer has finished.
func (p *progress) state() (<-chan struct{}, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ch, p.done
}

// committed wakes the waiting readers; final says no writer is left.
func (p *progress) committed(final bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	p.done = final
	close(p.ch)
	p.ch = make(chan struct{})
}

// feedReader follows a change feed until the writers are done and it has
// caught up, checking that seqs only go up and counting each document.
type feedReader struct {
	name  string
	limit int
	// next returns the page after the reader's position and advances it.
	next func() ([]engine.Change, bool, error)
	seen map[string]int
}

func (r *feedReader) run(f *fixture, p *progress) {
	var last int64
	r.seen = map[string]int{}
	for {
		wake, finished := p.state()
		page, more, err := r.next()
		if err != nil {
			f.t.Errorf("%s: %v", r.name, err)
			return
		}
		if len(page) > r.limit || (more && len(page) == 0) {
			f.t.Errorf("%s: page of %d changes with more=%v at limit %d", r.name, len(page), more, r.limit)
			return
		}
		for _, c := range page {
			if c.Seq <= last {
				f.t.Errorf("%s: seq %d (%s) after seq %d", r.name, c.Seq, c.ID, last)
				return
			}
			last = c.Seq
			r.seen[c.Collection+"/"+c.ID]++
		}
		if more {
			continue
		}
		if finished {
			return
		}
		<-wake
	}
}

// check reports documents seen twice or never.
func (r *feedReader) check(f *fixture, want []string) {
	var missing, dups []string
	for _, id := range want {
		switch r.seen[id] {
		case 0:
			missing = append(missing, id)
		case 1:
		default:
			dups = append(dups, id)
		}
	}
	if len(missing) > 0 || len(dups) > 0 || len(r.seen) != len(want) {
		f.t.Errorf("%s saw %d documents, want %d: %d missing (first %v), %d duplicated (first %v)",
			r.name, len(r.seen), len(want), len(missing), missing[:min(5, len(missing))], len(dups), dups[:min(5, len(dups))])
	}
}

// storeReader reads scopes through Store.Pull.
func (f *fixture) storeReader(name string, scopes []string, limit int) *feedReader {
	after := f.base
	return &feedReader{name: name, limit: limit, next: func() ([]engine.Change, bool, error) {
		pg, err := f.store.Pull(f.ctx, engine.PullQuery{Org: org, Scopes: scopes, After: after, Limit: limit, MaxBytes: 1 << 20})
		page, more := pg.Changes, pg.More
		for _, c := range page {
			after = max(after, c.Seq)
		}
		return page, more, err
	}}
}

// engineReader reads an actor's feed through the engine and its checkpoints.
func (f *fixture) engineReader(name string, a engine.Actor, limit int) *feedReader {
	cp := f.start[actorKey(a)]
	return &feedReader{name: name, limit: limit, next: func() ([]engine.Change, bool, error) {
		res, err := f.eng.Pull(f.ctx, a, engine.PullRequest{Checkpoint: cp, Limit: limit})
		cp = res.Checkpoint
		return res.Changes, res.HasMore, err
	}}
}

// writer pushes batches from one actor and device.
type writer struct {
	actor   engine.Actor
	device  string
	batches [][]engine.Mutation
}

// race runs the writers and readers together and waits for all of them.
func (f *fixture) race(writers []writer, readers []*feedReader) {
	p := newProgress()
	var wg, rg sync.WaitGroup
	for _, w := range writers {
		wg.Go(func() {
			for _, b := range w.batches {
				outs, err := f.eng.Push(f.ctx, w.actor, engine.PushRequest{DeviceID: w.device, Mutations: b})
				if err != nil {
					f.t.Errorf("push from %s: %v", w.device, err)
					return
				}
				for _, o := range outs {
					if o.Status != engine.StatusApplied {
						f.t.Errorf("push from %s: %s", w.device, mustJSON(o))
					}
				}
				p.committed(false)
			}
		})
	}
	for _, r := range readers {
		rg.Go(func() { r.run(f, p) })
	}
	wg.Wait()
	p.committed(true)
	rg.Wait()
}

// testConcurrency: four devices of one user push while two readers follow
// the feed with small pages; every reader sees every note exactly once, in
// increasing seq, whatever the interleaving.
func testConcurrency(f *fixture) {
	var writers []writer
	var want []string
	for w := range 4 {
		wr := writer{actor: rep1, device: fmt.Sprintf("dev-%d", w)}
		for b := range f.volume(50) {
			batch := make([]engine.Mutation, 10)
			for i := range batch {
				id := fmt.Sprintf("n-%d-%02d-%d", w, b, i)
				batch[i] = createNote(fmt.Sprintf("m-%02d-%d", b, i), id, "Concurrent note "+id)
				want = append(want, notes+"/"+id)
			}
			wr.batches = append(wr.batches, batch)
		}
		writers = append(writers, wr)
	}
	readers := []*feedReader{
		f.storeReader("store reader", []string{fieldsales.UserScope(rep1.User)}, 7),
		f.engineReader("engine reader", rep1, 7),
	}
	f.race(writers, readers)
	for _, r := range readers {
		r.check(f, want)
	}
}

// testMultiScopeUnderWriters: a reader of many scope keys, while several
// of them receive writes, still sees every document exactly once and in
// order. A store that reads each key at a different moment can deliver a
// change of a key read late while an earlier change of a key read before
// it committed is not in its lists, and the reader's position then skips
// that change for good. Empty keys between the busy ones widen that window.
func testMultiScopeUnderWriters(f *fixture) {
	var want []string
	var writers []writer
	var scopes []string
	for u := range 4 {
		a := engine.Actor{Org: org, User: fmt.Sprintf("u-w%d", u), Roles: []string{"rep"}}
		w := writer{actor: a, device: devA}
		cust := "c-" + a.User
		if o := f.push(f.eng, admin, devB, create("m-"+cust, customers, cust,
			map[string]any{"name": "Customer of " + a.User, "assigned_reps": []string{a.User}}))[0]; o.Status != engine.StatusApplied {
			f.t.Fatalf("customer of %s: %s", a.User, mustJSON(o))
		}
		want = append(want, customers+"/"+cust)
		for b := range f.volume(60) {
			batch := make([]engine.Mutation, 2)
			for i := range batch {
				id := fmt.Sprintf("%s-%02d-%d", a.User, b, i)
				batch[i] = createNoteOn(fmt.Sprintf("m-%02d-%d", b, i), id, cust, "Note "+id)
				want = append(want, notes+"/"+id)
			}
			w.batches = append(w.batches, batch)
		}
		writers = append(writers, w)
		scopes = append(scopes, fieldsales.UserScope(a.User))
		for e := range 8 {
			scopes = append(scopes, fieldsales.UserScope(fmt.Sprintf("u-idle%d-%d", u, e)))
		}
	}
	// Customers sit under two busy keys at once.
	assigner := writer{actor: admin, device: devA}
	for i := range 20 {
		id := fmt.Sprintf("cust-%02d", i)
		reps := []string{fmt.Sprintf("u-w%d", i%4), fmt.Sprintf("u-w%d", (i+1)%4)}
		assigner.batches = append(assigner.batches, []engine.Mutation{create("m-"+id, customers, id,
			map[string]any{"name": "Customer " + id, "assigned_reps": reps})})
		want = append(want, customers+"/"+id)
	}
	reversed := slices.Clone(scopes)
	slices.Reverse(reversed)
	readers := []*feedReader{
		f.storeReader("reader of the keys in order", scopes, 3),
		f.storeReader("reader of the keys reversed", reversed, 50),
	}
	f.race(append(writers, assigner), readers)
	for _, r := range readers {
		r.check(f, want)
	}
}
