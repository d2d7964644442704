package storetest

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// compactor is the retention run every store offers (the engine's
// retention.go).
type compactor interface {
	Compact(ctx context.Context, now time.Time, r engine.Retention) (engine.Compaction, error)
}

// testCompaction: history older than the retention goes (a tombstone, the
// evictions of a reassignment), in two runs (announce, then delete); a
// device whose checkpoint lies below the floor starts over and ends with
// exactly the live documents of its read set; a fresh device and a device
// that kept pulling see nothing change; writes go on after it.
func testCompaction(f *fixture) {
	t := f.t
	st, ok := f.store.(compactor)
	if !ok {
		t.Fatalf("%T does not compact its history", f.store)
	}
	_, old := f.pullAll(f.eng, rep1, f.start[actorKey(rep1)], 100)
	wantOutcome(t, f.push(f.eng, rep1, devA, createNoteOn("m-1", "keep", cust1, "stays"), createNoteOn("m-2", "gone", cust1, "deleted"))[1],
		"m-2", engine.StatusApplied, 1)
	wantOutcome(t, f.push(f.eng, admin, devA, create("m-3", customers, "moved", map[string]any{"name": "Moves away", "assigned_reps": []string{rep1.User}}))[0],
		"m-3", engine.StatusApplied, 1)
	// Two devices hold "gone" and "moved": one keeps pulling, one goes
	// away until after the compaction.
	_, stale := f.pullAll(f.eng, rep1, old, 100)
	kept := stale
	wantOutcome(t, f.push(f.eng, rep1, devA, del("m-4", notes, "gone", 1))[0], "m-4", engine.StatusApplied, 2)
	wantOutcome(t, f.push(f.eng, admin, devA, update("m-5", customers, "moved", 1, map[string]any{"assigned_reps": []string{rep2.User}}))[0],
		"m-5", engine.StatusApplied, 2)
	changes, kept := f.pullAll(f.eng, rep1, kept, 100)
	if got := ids(changes); !slices.Equal(got, []string{notes + "/gone", customers + "/moved"}) {
		t.Fatalf("rep1 before compaction pulled %v, want the delete and the eviction", got)
	}

	r := engine.Retention{History: time.Hour, Wait: 10 * time.Minute}
	t0 := time.Now().Add(time.Hour) // after every write above, by the stores' clocks too
	run := func(at time.Time) engine.Compaction {
		c, err := st.Compact(f.ctx, at, r)
		if err != nil {
			t.Fatalf("Compact at %v: %v", at, err)
		}
		return c
	}
	// The first run finds no mark older than the retention yet; the
	// recorded outcomes of the pushes above are older than t0 - 1h.
	if c := run(t0); c.Floor != 0 || c.Feed != 0 || c.Docs != 0 || c.Outcomes == 0 {
		t.Fatalf("first run: %+v; want no floor yet and the old recorded outcomes deleted", c)
	}
	// Two hours on, the first run's mark is past the retention: the floor
	// is announced, nothing is deleted yet.
	c := run(t0.Add(2 * time.Hour))
	if c.Floor == 0 || c.Feed != 0 || c.Docs != 0 {
		t.Fatalf("announcing run: %+v, want a floor and nothing deleted", c)
	}
	// Within the wait nothing goes; after it, the tombstone and the
	// evictions do.
	if c := run(t0.Add(2*time.Hour + time.Minute)); c.Feed != 0 || c.Docs != 0 {
		t.Fatalf("run within the wait deleted: %+v", c)
	}
	// Two instances sweep at the same moment (every instance runs the
	// sweep): between them they delete the tombstone once, neither fails,
	// and what follows finds the same store as after one run.
	var both [2]engine.Compaction
	var errs [2]error
	var wg sync.WaitGroup
	for i := range both {
		wg.Add(1)
		go func() {
			defer wg.Done()
			both[i], errs[i] = st.Compact(f.ctx, t0.Add(3*time.Hour), r)
		}()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("two deleting runs at once: %v, %v", errs[0], errs[1])
	}
	if docs, feed := both[0].Docs+both[1].Docs, both[0].Feed+both[1].Feed; docs != 1 || feed < 2 {
		t.Fatalf("two deleting runs at once: %+v and %+v, want the tombstone once, its feed row and the evictions", both[0], both[1])
	}
	if again := run(t0.Add(3*time.Hour + time.Second)); again.Docs != 0 || again.Feed != 0 {
		t.Errorf("a second run deleted more: %+v", again)
	}
	if _, err := f.store.Get(f.ctx, org, []engine.DocRef{{Collection: notes, ID: "gone"}}); err != nil {
		t.Fatalf("Get after compaction: %v", err)
	}

	// The device that went away before the delete: its checkpoint is below
	// the floor. It starts over and ends with the live documents only.
	res, err := f.eng.Pull(f.ctx, rep1, engine.PullRequest{Checkpoint: stale, Limit: 100})
	if err != nil || !res.Reset {
		t.Fatalf("pull from below the floor: reset %v, %v; want a reset", res.Reset, err)
	}
	got := ids(res.Changes)
	if slices.Contains(got, notes+"/gone") || slices.Contains(got, customers+"/moved") || !slices.Contains(got, notes+"/keep") ||
		!slices.Contains(got, customers+"/"+cust1) {
		t.Errorf("reset pull delivered %v; want keep and %s, not the deleted note nor the customer that moved away", got, cust1)
	}
	for _, ch := range res.Changes {
		if ch.Deleted || ch.Evicted {
			t.Errorf("reset pull delivered a %s/%s that is not live", ch.Collection, ch.ID)
		}
	}
	// The device that kept pulling is not reset, and writes go on.
	wantOutcome(t, f.push(f.eng, rep1, devA, createNoteOn("m-6", "after", cust1, "after compaction"))[0], "m-6", engine.StatusApplied, 1)
	res, err = f.eng.Pull(f.ctx, rep1, engine.PullRequest{Checkpoint: kept, Limit: 100})
	if err != nil || res.Reset || !slices.Equal(ids(res.Changes), []string{notes + "/after"}) {
		t.Fatalf("pull of a device that kept up: reset %v, %v, %v", res.Reset, ids(res.Changes), err)
	}
	// A fresh device gets the live documents, the same as the reset one
	// plus the new note.
	fresh, _ := f.pullAll(f.eng, rep1, "", 100)
	want := append(slices.Clone(got), notes+"/after")
	if g := ids(fresh); !sameSet(g, want) {
		t.Errorf("fresh pull after compaction = %v, want %v", g, want)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
