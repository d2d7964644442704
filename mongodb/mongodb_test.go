package mongodb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/fieldsync/fieldsync/internal/ferrettest"

	"github.com/fieldsync/fieldsync/internal/patience"
	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/sync/storetest"
)

// uri is the FerretDB that every test of the package shares; each store
// gets a database of its own.
var uri string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	u, stop, err := ferrettest.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start FerretDB:", err)
		return 1
	}
	defer stop()
	uri = u
	return m.Run()
}

var dbCounter atomic.Int64

// freshDB names a database no other store of this process uses.
func freshDB() string { return fmt.Sprintf("fieldsync_test_%d_%d", os.Getpid(), dbCounter.Add(1)) }

func openT(t *testing.T, db string, opt Options) *Store {
	t.Helper()
	if opt.Timeout == 0 {
		// A busy machine slows FerretDB down; a test waits for it rather
		// than failing a call after the production default of 10 s.
		opt.Timeout = patience.Of(t)
	}
	s, err := Open(context.Background(), uri, db, opt)
	if err != nil {
		t.Fatalf("Open(%s): %v", db, err)
	}
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		db := freshDB()
		cur := openT(t, db, Options{})
		t.Cleanup(func() {
			if err := cur.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return storetest.Harness{
			Store: cur,
			Light: true,
			Reopen: func(t *testing.T) engine.Store {
				if err := cur.Close(); err != nil {
					t.Fatalf("Close before reopen: %v", err)
				}
				cur = openT(t, db, Options{})
				return cur
			},
		}
	})
}

// stepClock is an injected clock that moves forward a fixed step every time
// it is read, so a gap outlives the grace period after a known number of
// reader passes, with no sleeping.
type stepClock struct {
	n    atomic.Int64
	step time.Duration
}

func (c *stepClock) Now() time.Time {
	return time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC).Add(time.Duration(c.n.Add(1)) * c.step)
}

// TestRace: eight writers over two Store instances on one database, and
// two more that fail in the two ways a writer can: one allocates a seq and
// never writes it (a server that died right after the $inc), and one stops
// right after allocating until a reader has voided its seq (a writer slower
// than the grace period: a GC pause, a stalled connection). Readers on both
// instances pull small pages. The clock makes every gap expire after a few
// reader passes. Every reader must see every document exactly once, in
// increasing seq, and must not stall on the abandoned seq; the slow writer's
// change must move to a new seq.
func TestRace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := freshDB()
	clk := &stepClock{step: 50 * time.Millisecond}
	// A generous timeout: this test shares FerretDB with the whole package.
	opt := Options{Grace: time.Second, Now: clk.Now, Timeout: patience.Of(t)}
	const org, scope = "o", "user:u"

	// The slow writer: its push carries slowKey in its context, and the
	// hook holds it after its first allocation until the seqlog holds a void
	// record for that seq.
	type slowKey struct{}
	var slowSeq atomic.Int64 // the seq the slow writer was first handed
	var stores []*Store
	slowOpt := opt
	held := make(chan struct{})
	slowOpt.afterAllocate = func(ctx context.Context, org string, seqs []int64) {
		if ctx.Value(slowKey{}) == nil || !slowSeq.CompareAndSwap(0, seqs[0]) {
			return
		}
		close(held)
		if !waitVoid(ctx, stores[1], org, seqs[0], patience.Of(t)) {
			t.Errorf("no reader voided seq %d of the slow writer", seqs[0])
		}
	}
	stores = []*Store{openT(t, db, slowOpt), openT(t, db, opt)}
	t.Cleanup(func() {
		for _, s := range stores {
			s.Close()
		}
	})
	decide := func(b engine.PushBatch) engine.Decide {
		return func(i int, cur *engine.Document) (*engine.Document, engine.Outcome) {
			m := b.Mutations[i]
			if cur != nil {
				return nil, engine.Outcome{MutationID: m.ID, Status: engine.StatusRejected,
					Error: &engine.ErrorBody{Code: engine.CodeAlreadyExists, Message: "exists"}}
			}
			return &engine.Document{Org: org, Collection: "customer_notes", ID: m.DocID, Owner: "u", Version: 1,
					Body: []byte(`{"text":"` + m.DocID + `"}`), Fields: map[string]engine.FieldMeta{"text": {Version: 1}},
					Scopes: []string{scope}, UpdatedBy: "u"},
				engine.Outcome{MutationID: m.ID, Status: engine.StatusApplied, Version: 1}
		}
	}

	const writers, batches, perBatch = 8, 6, 3
	var want []string
	var done atomic.Int64
	var wg sync.WaitGroup
	pushAll := func(ctx context.Context, s *Store, bs []engine.PushBatch) {
		defer done.Add(1)
		for _, b := range bs {
			outs, err := s.Push(ctx, b, decide(b))
			if err != nil {
				t.Errorf("push: %v", err)
				return
			}
			for _, o := range outs {
				if o.Status != engine.StatusApplied {
					t.Errorf("push outcome %+v, want applied", o)
				}
			}
		}
	}
	batch := func(device string, ids ...string) engine.PushBatch {
		pb := engine.PushBatch{Actor: engine.Actor{Org: org, User: "u"}, Device: device}
		for _, id := range ids {
			pb.Mutations = append(pb.Mutations, engine.Mutation{ID: id, Collection: "customer_notes", DocID: id, Op: engine.OpCreate})
			want = append(want, id)
		}
		return pb
	}
	// The slow writer allocates first, alone: on FerretDB, whose $inc is
	// not atomic, two instances allocating at once can be handed the same
	// seq, and then the other writer, not a reader, would take it.
	const slowDoc = "slow-1"
	slow := batch("d-slow", slowDoc)
	slowDone := make(chan struct{})
	wg.Go(func() {
		defer close(slowDone)
		pushAll(context.WithValue(ctx, slowKey{}, true), stores[0], []engine.PushBatch{slow})
	})
	select {
	case <-held:
	case <-slowDone:
		t.Fatal("the slow writer finished without allocating")
	}
	// The writer that dies after allocating.
	if _, err := stores[0].allocate(ctx, org, 1); err != nil {
		t.Fatal(err)
	}
	for w := range writers {
		var bs []engine.PushBatch
		for b := range batches {
			var ids []string
			for i := range perBatch {
				ids = append(ids, fmt.Sprintf("n-%d-%d-%d", w, b, i))
			}
			bs = append(bs, batch(fmt.Sprintf("d%d", w), ids...))
		}
		wg.Go(func() { pushAll(ctx, stores[w%2], bs) })
	}

	read := func(s *Store, limit int) map[string]int {
		seen := map[string]int{}
		var after int64
		for polls := 0; ; polls++ {
			if polls > 3000 {
				t.Errorf("reader stalled at seq %d after %d polls, saw %d of %d", after, polls, len(seen), len(want))
				return seen
			}
			finished := done.Load() == writers+1
			pg, err := s.Pull(ctx, engine.PullQuery{Org: org, Scopes: []string{scope}, After: after, Limit: limit})
			if err != nil {
				t.Errorf("pull: %v", err)
				return seen
			}
			page, more := pg.Changes, pg.More
			if len(page) > limit || (more && len(page) == 0) {
				t.Errorf("page of %d with more=%v at limit %d", len(page), more, limit)
				return seen
			}
			for _, c := range page {
				if c.Seq <= after {
					t.Errorf("seq %d (%s) after %d", c.Seq, c.ID, after)
					return seen
				}
				after = c.Seq
				seen[c.ID]++
			}
			if finished && !more && len(seen) >= len(want) {
				return seen
			}
		}
	}
	results := make([]map[string]int, 2)
	var rg sync.WaitGroup
	for i := range results {
		rg.Go(func() { results[i] = read(stores[i], 4) })
	}
	wg.Wait()
	rg.Wait()
	for r, seen := range results {
		var missing, dups []string
		for _, id := range want {
			switch seen[id] {
			case 0:
				missing = append(missing, id)
			case 1:
			default:
				dups = append(dups, id)
			}
		}
		if len(missing) > 0 || len(dups) > 0 || len(seen) != len(want) {
			t.Errorf("reader %d saw %d of %d documents: missing %v, duplicated %v", r, len(seen), len(want), missing, dups)
			for _, id := range missing {
				var d docRec
				stores[0].docs.FindOne(ctx, bson.D{{Key: "_id", Value: docKeyID(org, "customer_notes", id)}}).Decode(&d)
				var f feedRec
				stores[0].feed.FindOne(ctx, bson.D{{Key: "_id", Value: feedID(org, scope, "customer_notes", id)}}).Decode(&f)
				var m seqRec
				stores[0].seqlog.FindOne(ctx, bson.D{{Key: "_id", Value: seqID(org, f.Seq)}}).Decode(&m)
				var m2 seqRec
				stores[0].seqlog.FindOne(ctx, bson.D{{Key: "_id", Value: seqID(org, d.Seq)}}).Decode(&m2)
				t.Logf("%s as stored: doc seq %d feed %s; feed row seq %d; marker at feed seq %+v; at doc seq %+v", id, d.Seq, d.Feed, f.Seq, m, m2)
			}
		}
	}
	// The slow writer's change moved past the seq a reader voided under it.
	var d docRec
	if err := stores[0].docs.FindOne(ctx, bson.D{{Key: "_id", Value: docKeyID(org, "customer_notes", slowDoc)}}).Decode(&d); err != nil {
		t.Fatalf("the slow writer's document: %v", err)
	}
	if first := slowSeq.Load(); first == 0 || d.Seq == first {
		t.Errorf("the slow writer's document is at seq %d; it was first handed seq %d, which a reader voided", d.Seq, first)
	} else {
		t.Logf("the slow writer's document moved from voided seq %d to seq %d", first, d.Seq)
	}
	// The abandoned seq and the slow writer's first seq were voided, not
	// waited for forever.
	n, err := stores[0].seqlog.CountDocuments(ctx, bson.D{{Key: "org", Value: org}, {Key: "void", Value: true}})
	if err != nil {
		t.Fatal(err)
	}
	if n < 2 {
		t.Errorf("%d seqs voided; want at least the abandoned one and the slow writer's", n)
	}
	t.Logf("%d seqs voided", n)
}

// waitVoid polls org's seqlog until seq holds a void record, for at most
// limit, and reports whether it got one.
func waitVoid(ctx context.Context, s *Store, org string, seq int64, limit time.Duration) bool {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); {
		var r seqRec
		err := s.seqlog.FindOne(ctx, bson.D{{Key: "_id", Value: seqID(org, seq)}}).Decode(&r)
		if err == nil {
			return r.Void
		}
		if !errors.Is(err, mongo.ErrNoDocuments) {
			return false
		}
		time.Sleep(2 * time.Millisecond) // the poll interval, not the condition
	}
	return false
}

// TestCrashedWriterGapsClosedAtOnce: a writer allocates a block of 50 seqs
// and dies before writing anything; another change commits after them.
// A reader in a process started after the crash (nothing in its memory of
// the gaps), once the organisation has allocated nothing for the grace
// period, delivers the later change in its first pull: every gap of the
// dead block is voided at once, timed by the counter's record of the last
// allocation, not by when the reader's process first saw them.
func TestCrashedWriterGapsClosedAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := freshDB()
	var now atomic.Int64
	t0 := time.Date(2026, 12, 4, 6, 0, 0, 0, time.UTC)
	now.Store(t0.UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	type crashKey struct{}
	opt := Options{Grace: 2 * time.Second, Now: clock, Timeout: patience.Of(t)}
	opt.afterAllocate = func(ctx context.Context, org string, seqs []int64) {
		if ctx.Value(crashKey{}) != nil {
			runtime.Goexit() // the writer dies between allocating and writing
		}
	}
	w := openT(t, db, opt)
	t.Cleanup(func() { w.Close() })
	const org, scope = "o", "user:u"
	push := func(ctx context.Context, ids ...string) error {
		b := engine.PushBatch{Actor: engine.Actor{Org: org, User: "u"}, Device: "d"}
		for _, id := range ids {
			b.Mutations = append(b.Mutations, engine.Mutation{ID: "m-" + id, Collection: "customer_notes", DocID: id, Op: engine.OpCreate})
		}
		_, err := w.Push(ctx, b, func(i int, cur *engine.Document) (*engine.Document, engine.Outcome) {
			m := b.Mutations[i]
			return &engine.Document{Org: org, Collection: "customer_notes", ID: m.DocID, Owner: "u", Version: 1,
					Body: []byte(`{"text":"` + m.DocID + `"}`), Fields: map[string]engine.FieldMeta{"text": {Version: 1}},
					Scopes: []string{scope}, UpdatedBy: "u"},
				engine.Outcome{MutationID: m.ID, Status: engine.StatusApplied, Version: 1}
		})
		return err
	}
	if err := push(ctx, "before"); err != nil {
		t.Fatal(err)
	}
	var dead []string
	for i := range 50 {
		dead = append(dead, fmt.Sprintf("dead-%02d", i))
	}
	died := make(chan struct{})
	go func() {
		defer close(died)
		push(context.WithValue(ctx, crashKey{}, true), dead...)
		t.Error("the dying push returned")
	}()
	<-died
	if err := push(ctx, "after"); err != nil {
		t.Fatal(err)
	}
	// Past the grace period, and nothing allocated since: a fresh reader.
	now.Add(int64(3 * time.Second))
	r := openT(t, db, Options{Grace: 2 * time.Second, Now: clock, Timeout: patience.Of(t)})
	t.Cleanup(func() { r.Close() })
	pg, err := r.Pull(ctx, engine.PullQuery{Org: org, Scopes: []string{scope}, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range pg.Changes {
		got = append(got, c.ID)
	}
	if !slices.Equal(got, []string{"before", "after"}) || pg.More {
		t.Fatalf("the first pull after the crash delivered %v (more %v); want before and after", got, pg.More)
	}
	voids, err := r.seqlog.CountDocuments(ctx, bson.D{{Key: "org", Value: org}, {Key: "void", Value: true}})
	if err != nil || voids < 50 {
		t.Errorf("%d seqs voided (%v); want the dead block's 50", voids, err)
	}
}
