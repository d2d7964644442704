package mongodb

import (
	"context"
	"fmt"
	"os"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/fieldsync/fieldsync/internal/ferrettest"

	engine "github.com/fieldsync/fieldsync/sync"
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

// TestRace: eight writers over two Store instances on one database, a
// ninth that allocates a seq and never writes it (a server that died right
// after the $inc), and readers on both instances pulling small pages. The
// clock makes every gap expire after a few reader passes, so readers also
// void seqs of writers that are merely slow, and those writers must move
// their changes to new seqs. Every reader must see every document exactly
// once, in increasing seq, and must not stall on the abandoned seq.
func TestRace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := freshDB()
	clk := &stepClock{step: 50 * time.Millisecond}
	opt := Options{Grace: time.Second, Now: clk.Now}
	stores := []*Store{openT(t, db, opt), openT(t, db, opt)}
	t.Cleanup(func() {
		for _, s := range stores {
			s.Close()
		}
	})
	const org, scope = "o", "user:u"
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
	commits := make(chan struct{}, writers*batches+1)
	var wg gosync.WaitGroup
	for w := range writers {
		s := stores[w%2]
		var bs []engine.PushBatch
		for b := range batches {
			pb := engine.PushBatch{Actor: engine.Actor{Org: org, User: "u"}, Device: fmt.Sprintf("d%d", w)}
			for i := range perBatch {
				id := fmt.Sprintf("n-%d-%d-%d", w, b, i)
				pb.Mutations = append(pb.Mutations, engine.Mutation{ID: id, Collection: "customer_notes", DocID: id, Op: engine.OpCreate})
				want = append(want, id)
			}
			bs = append(bs, pb)
		}
		wg.Go(func() {
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
				commits <- struct{}{}
			}
		})
	}
	// The writer that dies after allocating.
	if _, err := stores[0].allocate(ctx, org, 1); err != nil {
		t.Fatal(err)
	}

	read := func(s *Store, limit int) map[string]int {
		seen := map[string]int{}
		var after int64
		for polls := 0; ; polls++ {
			if polls > 3000 {
				t.Errorf("reader stalled at seq %d after %d polls, saw %d of %d", after, polls, len(seen), len(want))
				return seen
			}
			finished := done.Load() == writers
			page, more, err := s.Pull(ctx, engine.PullQuery{Org: org, Scopes: []string{scope}, After: after, Limit: limit})
			if err != nil {
				t.Errorf("pull: %v", err)
				return seen
			}
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
	var rg gosync.WaitGroup
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
	// The abandoned seq was voided, not waited for forever.
	n, err := stores[0].seqlog.CountDocuments(ctx, bson.D{{Key: "org", Value: org}, {Key: "void", Value: true}})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Errorf("no seq was voided, yet one was abandoned")
	}
	t.Logf("%d seqs voided", n)
}
