package webhook

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// Feed is the part of the sync store the tailer reads: the organisation's
// commit-ordered change feed (scope "org").
type Feed interface {
	Pull(ctx context.Context, q engine.PullQuery) (engine.PullPage, error)
}

// TailerConfig wires a Tailer.
type TailerConfig struct {
	Feed  Feed
	Store Store
	Page  int // changes per read (default 500)
	// MaxAge skips events older than this (default 6 h): a subscription
	// does not receive history, nor an old transition again after its
	// delivery was pruned.
	MaxAge time.Duration
	Now    func() time.Time
	Log    *slog.Logger
	// Enqueued, when set, is called after deliveries were inserted (to wake
	// the dispatcher).
	Enqueued func()
}

// Tailer turns committed changes into deliveries. It takes no lease: two
// instances tailing one organisation only repeat idempotent inserts, and
// the cursor only moves forward.
type Tailer struct{ cfg TailerConfig }

// NewTailer returns a tailer; Run or Pass drive it.
func NewTailer(cfg TailerConfig) *Tailer {
	if cfg.Page <= 0 {
		cfg.Page = 500
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 6 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Tailer{cfg: cfg}
}

// Run tails every organisation with subscriptions every poll until ctx is
// done.
func (t *Tailer) Run(ctx context.Context, poll time.Duration) {
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		if err := t.Pass(ctx); err != nil && ctx.Err() == nil {
			t.cfg.Log.Warn("webhook tailer", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Pass reads the feed of every organisation that has a subscription up to
// its end.
func (t *Tailer) Pass(ctx context.Context) error {
	subs, err := t.cfg.Store.Subscriptions(ctx, "")
	if err != nil {
		return err
	}
	byOrg := map[string][]*Subscription{}
	var orgs []string
	for _, s := range subs {
		if _, ok := byOrg[s.Org]; !ok {
			orgs = append(orgs, s.Org)
		}
		byOrg[s.Org] = append(byOrg[s.Org], s)
	}
	var errs []error
	for _, org := range orgs {
		if err := t.tailOrg(ctx, org, byOrg[org]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (t *Tailer) tailOrg(ctx context.Context, org string, subs []*Subscription) error {
	cursor, err := t.cfg.Store.WebhookCursor(ctx, org)
	if err != nil {
		return err
	}
	for {
		pg, err := t.cfg.Feed.Pull(ctx, engine.PullQuery{Org: org, Scopes: []string{engine.ScopeOrg}, After: cursor, Limit: t.cfg.Page})
		if err == nil && pg.Compacted {
			// Behind the history the store keeps: what was missed is older
			// than MaxAge; read on from the documents' latest changes.
			pg, err = t.cfg.Feed.Pull(ctx, engine.PullQuery{Org: org, Scopes: []string{engine.ScopeOrg}, Limit: t.cfg.Page})
		}
		if err != nil || len(pg.Changes) == 0 {
			return err
		}
		now := t.cfg.Now()
		var ds []Delivery
		for _, c := range pg.Changes {
			for _, e := range events(c) {
				if !e.at.IsZero() && now.Sub(e.at) > t.cfg.MaxAge {
					continue
				}
				for _, s := range subs {
					// A subscription hears of what happened after it was made.
					if !s.matches(e) || !e.at.IsZero() && e.at.Before(s.Created.Truncate(time.Millisecond)) {
						continue
					}
					b, err := body(e, now)
					if err != nil {
						return err
					}
					ds = append(ds, Delivery{ID: DeliveryID(org, s.ID, e.typ, e.collection, e.docID, e.state), Org: org, Sub: s.ID,
						Event: e.typ, Seq: c.Seq, Body: b, Created: now, Due: now, Status: StatusPending})
				}
			}
		}
		if len(ds) > 0 {
			n, err := t.cfg.Store.EnqueueDeliveries(ctx, ds)
			if err != nil {
				return err
			}
			if n > 0 && t.cfg.Enqueued != nil {
				t.cfg.Enqueued()
			}
		}
		// Only now, with the deliveries durable, does the cursor move.
		cursor = pg.Changes[len(pg.Changes)-1].Seq
		if err := t.cfg.Store.AdvanceWebhookCursor(ctx, org, cursor); err != nil {
			return err
		}
		if !pg.More {
			return nil
		}
	}
}
