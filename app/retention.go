package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// retentionFlags bound the history the store keeps (docs/operations.md,
// "Retention"; the engine's retention.go).
type retentionFlags struct {
	History  time.Duration
	Sessions time.Duration
	Interval time.Duration
	Wait     time.Duration
}

func (f *retentionFlags) register(fs *flag.FlagSet) {
	fs.DurationVar(&f.History, "retention-history", 90*24*time.Hour, "how long deletes, evictions and the recorded outcomes of retried pushes are kept; a device that did not sync for longer starts over, keeping its unsynced changes (env FIELDSYNC_RETENTION_HISTORY)")
	fs.DurationVar(&f.Sessions, "retention-sessions", 30*24*time.Hour, "how long sign-in sessions are kept after they expired or were revoked (env FIELDSYNC_RETENTION_SESSIONS)")
	fs.DurationVar(&f.Interval, "retention-interval", time.Hour, "how often this instance compacts history and prunes sessions, 0 for never (env FIELDSYNC_RETENTION_INTERVAL)")
	fs.DurationVar(&f.Wait, "retention-wait", 10*time.Minute, "how long an announced history floor stands before the history below it is deleted; at least 5m (env FIELDSYNC_RETENTION_WAIT)")
}

func (f *retentionFlags) check() error {
	switch {
	case f.History < 24*time.Hour:
		return usageError("--retention-history (FIELDSYNC_RETENTION_HISTORY) must be at least 24h: devices offline over a weekend must not start over")
	case f.Sessions < 0 || f.Interval < 0:
		return usageError("--retention-sessions and --retention-interval must not be negative")
	case f.Wait < 5*time.Minute:
		// Instances cache a floor for a minute and a pull lasts at most
		// the store's call timeout: the wait must outlast both.
		return usageError("--retention-wait (FIELDSYNC_RETENTION_WAIT) must be at least 5m")
	}
	return nil
}

// compactor is the retention run of the stores (sqlite/retention.go,
// mongodb/retention.go).
type compactor interface {
	Compact(ctx context.Context, now time.Time, r engine.Retention) (engine.Compaction, error)
}

// startRetention compacts history and prunes sessions every interval until
// stopped. Instances may run it at once: every deletion is idempotent and
// the floor's record is written conditionally.
func startRetention(ctx context.Context, f retentionFlags, store engine.Store, dir identity.Store, log *slog.Logger) (stop func(), err error) {
	c, ok := store.(compactor)
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
			retain(sctx, c, dir, r, f.Sessions, log)
		}
	}()
	return func() { cancel(); wg.Wait() }, nil
}

// retain runs one compaction and one session prune.
func retain(ctx context.Context, c compactor, dir identity.Store, r engine.Retention, sessions time.Duration, log *slog.Logger) {
	now := time.Now()
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
