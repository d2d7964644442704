package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// RetentionConfig bound the history the store keeps (docs/operations.md,
// "Retention"; the engine's retention.go).
type RetentionConfig struct {
	History  time.Duration
	Sessions time.Duration
	Interval time.Duration
	Wait     time.Duration
}

// Compactor is the retention run of the stores (sqlite/retention.go,
// mongodb/retention.go).
type Compactor interface {
	Compact(ctx context.Context, now time.Time, r engine.Retention) (engine.Compaction, error)
}

// startRetention compacts history and prunes sessions every interval until
// stopped. Instances may run it at once: every deletion is idempotent and
// the floor's record is written conditionally.
func startRetention(ctx context.Context, f RetentionConfig, store engine.Store, dir identity.Store, now func() time.Time, log *slog.Logger) (stop func(), err error) {
	c, ok := store.(Compactor)
	if !ok {
		return nil, fmt.Errorf("the %T store does not compact its history", store)
	}
	if f.Interval == 0 {
		return func() {}, nil
	}
	r := engine.Retention{History: f.History, Wait: f.Wait}
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(f.Interval)
		defer t.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-t.C:
			}
			retain(sctx, c, dir, r, f.Sessions, now(), log)
		}
	}()
	return func() { cancel(); wg.Wait() }, nil
}

// retain runs one compaction and one session prune.
func retain(ctx context.Context, c Compactor, dir identity.Store, r engine.Retention, sessions time.Duration, now time.Time, log *slog.Logger) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	res, err := c.Compact(cctx, now, r)
	switch {
	case err != nil && ctx.Err() == nil:
		log.Warn("history compaction", "err", err)
	case res.Feed+res.Docs+res.Outcomes+res.Markers > 0:
		log.Info("history compaction", "floor", res.Floor, "feed_rows", res.Feed, "tombstones", res.Docs,
			"outcomes", res.Outcomes, "markers", res.Markers)
	}
	n, err := dir.PruneSessions(cctx, now.Add(-sessions))
	switch {
	case err != nil && ctx.Err() == nil:
		log.Warn("session prune", "err", err)
	case n > 0:
		log.Info("session prune", "records", n)
	}
}
