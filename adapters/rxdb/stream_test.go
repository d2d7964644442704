package rxdb

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/adapters"
	"github.com/fieldsync/fieldsync/internal/patience"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// gatedEngine answers Pull when release is closed, and counts the pulls.
type gatedEngine struct {
	adapters.Engine
	started chan struct{}
	release chan struct{}
	pulls   atomic.Int32
}

func (e *gatedEngine) Pull(ctx context.Context, actor engine.Actor, req engine.PullRequest) (engine.PullResult, error) {
	n := e.pulls.Add(1)
	e.started <- struct{}{}
	<-e.release
	return engine.PullResult{Checkpoint: req.Checkpoint + "+", Changes: make([]engine.Change, n)}, nil
}

// The streams of one caller poked at once share one engine pull; a stream
// poked after a pull began does not join it (that pull may have read the
// feed before the change the stream was poked for), and a finished pull is
// never reused.
func TestSharedPulls(t *testing.T) {
	t.Parallel()
	e := &gatedEngine{started: make(chan struct{}, 8), release: make(chan struct{})}
	var p sharedPulls
	rep := engine.Actor{Org: "o", User: "u", Roles: []string{"rep"}}
	deadline := time.After(patience.Of(t))
	wait := func(ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-deadline:
			t.Fatal("nothing happened within the test's patience")
		}
	}
	poked := time.Now()
	type got struct {
		res engine.PullResult
		err error
	}
	results := make(chan got, 8)
	var wg sync.WaitGroup
	pull := func(a engine.Actor, notBefore time.Time) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := p.pull(context.Background(), e, a, "cp", 10, notBefore)
			results <- got{res, err}
		}()
	}
	pull(rep, poked)
	wait(e.started) // the first is in flight
	eventually := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			select {
			case <-deadline:
				t.Fatalf("%s: not within the test's patience", what)
			case <-time.After(time.Millisecond):
			}
		}
	}
	for range 3 {
		pull(rep, poked) // poked before it began: they join it
	}
	eventually("three streams joined the pull", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, f := range p.flights {
			return f.joined == 3
		}
		return false
	})
	later := time.Now().Add(time.Nanosecond)
	pull(rep, later)                                                       // poked after it began: a pull of its own
	pull(engine.Actor{Org: "o", User: "v", Roles: []string{"rep"}}, poked) // another caller
	wait(e.started)
	wait(e.started)
	close(e.release)
	wg.Wait()
	close(results)
	byPull := map[int]int{}
	for r := range results {
		if r.err != nil || r.res.Checkpoint != "cp+" {
			t.Fatalf("result %+v %v", r.res, r.err)
		}
		byPull[len(r.res.Changes)]++
	}
	if e.pulls.Load() != 3 || byPull[1] != 4 {
		t.Fatalf("%d engine pulls, results by pull %v: want 3 pulls, the first shared by 4 streams", e.pulls.Load(), byPull)
	}
	eventually("no flight left", func() bool { p.mu.Lock(); defer p.mu.Unlock(); return len(p.flights) == 0 })
	// Finished: the next asks the engine again.
	e.started = make(chan struct{}, 1)
	if _, err := p.pull(context.Background(), e, rep, "cp", 10, poked); err != nil || e.pulls.Load() != 4 {
		t.Fatalf("a pull after the flight ended: %v, %d engine pulls", err, e.pulls.Load())
	}
}
