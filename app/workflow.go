package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/workflow"
)

// startWorkflow builds the workflow on the engine's store, registers it as
// the engine's after-push hook and starts the overdue sweep every
// --escalation-interval (0: no sweep on this instance). stop ends the sweep
// and waits for it, so the store can be closed after. With --workflows=false
// there is nothing: no hook, no follow-up API (api is nil), no sweep.
func startWorkflow(ctx context.Context, c Config, eng *engine.Engine, store engine.Store, ids *identity.Service,
	schemas workflow.Validator, log *slog.Logger) (api *workflow.Service, stop func(), err error) {
	if !c.Workflows {
		return nil, func() {}, nil
	}
	interval := c.EscalationInterval
	matrices, ok := store.(workflow.MatrixStore)
	if !ok {
		return nil, nil, fmt.Errorf("the %T store keeps no responsibility matrices", store)
	}
	wf, err := workflow.New(workflow.Config{Writer: eng, Docs: store, Store: matrices, Orgs: ids, Directory: ids, Schemas: schemas, Now: c.Clock})
	if err != nil {
		return nil, nil, err
	}
	eng.AddHook(wf)
	eng.AddEffects(wf)
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if interval > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sweepEvery(sctx, wf, interval, log)
		}()
	}
	return wf, func() { cancel(); wg.Wait() }, nil
}

// sweepTimeout bounds one sweep.
const sweepTimeout = time.Minute

// sweepEvery escalates overdue follow-ups and settles what crashes left
// unsettled, at start and then every interval until ctx ends. Several
// instances may sweep at once: each write is conditional.
func sweepEvery(ctx context.Context, wf *workflow.Service, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	// The first sweep at once: what a crash left unsettled (an order
	// without its follow-ups, a completion without its effects) is carried
	// out as the server starts, not an interval later.
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
		// Its own budget, not the interval: a short interval must not
		// starve a sweep of a slow store.
		cctx, cancel := context.WithTimeout(ctx, max(interval, sweepTimeout))
		n, err := wf.Sweep(cctx)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("overdue sweep", "err", err, "escalated", n)
		case n > 0:
			log.Info("overdue sweep", "escalated", n)
		}
	}
}
