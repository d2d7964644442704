package mongodb

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

// TestAllocationsShareABlock: while one $inc of an organisation is in
// flight, the allocations queued behind it are served together by the next
// one: 20 pushes arriving during a slow $inc cost two round trips, and every
// push gets numbers of its own.
func TestAllocationsShareABlock(t *testing.T) {
	t.Parallel()
	var counter, calls atomic.Int64
	release := make(chan struct{})
	first := make(chan struct{})
	inc := func(ctx context.Context, n int64) (int64, error) {
		if calls.Add(1) == 1 {
			close(first)
			<-release // the first $inc is slow
		}
		return counter.Add(n), nil
	}
	var a orgAlloc
	const pushes, k = 20, 3
	his := make([]int64, pushes+1)
	var wg sync.WaitGroup
	wg.Go(func() {
		hi, err := a.take(context.Background(), k, inc)
		if err != nil {
			t.Error(err)
		}
		his[0] = hi
	})
	<-first
	var queued sync.WaitGroup
	for i := 1; i <= pushes; i++ {
		queued.Add(1)
		wg.Go(func() {
			queued.Done()
			hi, err := a.take(context.Background(), k, inc)
			if err != nil {
				t.Error(err)
			}
			his[i] = hi
		})
	}
	queued.Wait()
	// Every request is queued (a.queue) before the slow $inc returns.
	for {
		a.mu.Lock()
		n := len(a.queue)
		a.mu.Unlock()
		if n == pushes {
			break
		}
		waitABit()
	}
	close(release)
	wg.Wait()
	if got := calls.Load(); got != 2 {
		t.Errorf("%d $inc round trips for %d allocations; want 2", got, pushes+1)
	}
	slices.Sort(his)
	for i, hi := range his {
		if want := int64((i + 1) * k); hi != want {
			t.Fatalf("allocations end at %v; want disjoint blocks of %d", his, k)
		}
	}
}

// waitABit yields while another goroutine gets to its next step.
func waitABit() { runtime.Gosched() }
