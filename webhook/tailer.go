package webhook

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/fieldsync/fieldsync/fieldsales"
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
		if err := t.tailRegistrations(ctx, org, byOrg[org]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// deliveries appends to ds one delivery per event and subscription that
// wants it; seq is the feed position of the cause (0 when not the feed).
func (t *Tailer) deliveries(ds []Delivery, org string, subs []*Subscription, seq int64, evs []event, now time.Time) ([]Delivery, error) {
	for _, e := range evs {
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
				return nil, err
			}
			ds = append(ds, Delivery{ID: DeliveryID(org, s.ID, e.typ, e.collection, e.docID, e.state), Org: org, Sub: s.ID,
				Event: e.typ, Seq: seq, Body: b, Created: now, Due: now, Status: StatusPending})
		}
	}
	return ds, nil
}

// enqueue inserts ds (those not stored yet) and wakes the dispatcher.
func (t *Tailer) enqueue(ctx context.Context, ds []Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	n, err := t.cfg.Store.EnqueueDeliveries(ctx, ds)
	if err == nil && n > 0 && t.cfg.Enqueued != nil {
		t.cfg.Enqueued()
	}
	return err
}

// tailRegistrations turns org's pending device registrations into
// device.registered deliveries, then takes them: as with the feed, the
// deliveries are durable before their cause is marked done, and their ids
// are deterministic, so a crash between the two or a second instance only
// repeats idempotent inserts.
func (t *Tailer) tailRegistrations(ctx context.Context, org string, subs []*Subscription) error {
	for {
		rs, err := t.cfg.Store.PendingRegistrations(ctx, org, t.cfg.Page)
		if err != nil || len(rs) == 0 {
			return err
		}
		now := t.cfg.Now()
		var ds []Delivery
		for _, r := range rs {
			if ds, err = t.deliveries(ds, org, subs, 0, []event{registered(r)}, now); err != nil {
				return err
			}
		}
		if err := t.enqueue(ctx, ds); err != nil {
			return err
		}
		if err := t.cfg.Store.TakeRegistrations(ctx, rs); err != nil {
			return err
		}
		if len(rs) < t.cfg.Page {
			return nil
		}
	}
}

func (t *Tailer) tailOrg(ctx context.Context, org string, subs []*Subscription) error {
	cursor, err := t.cfg.Store.WebhookCursor(ctx, org)
	if err != nil {
		return err
	}
	for {
		pg, err := t.cfg.Feed.Pull(ctx, engine.PullQuery{Org: org, Scopes: []string{fieldsales.ScopeOrg}, After: cursor, Limit: t.cfg.Page})
		if err == nil && pg.Compacted {
			// Behind the history the store keeps: what was missed is older
			// than MaxAge; read on from the documents' latest changes.
			pg, err = t.cfg.Feed.Pull(ctx, engine.PullQuery{Org: org, Scopes: []string{fieldsales.ScopeOrg}, Limit: t.cfg.Page})
		}
		if err != nil || len(pg.Changes) == 0 {
			return err
		}
		now := t.cfg.Now()
		var ds []Delivery
		for _, c := range pg.Changes {
			var err error
			if ds, err = t.deliveries(ds, org, subs, c.Seq, events(c), now); err != nil {
				return err
			}
		}
		if err := t.enqueue(ctx, ds); err != nil {
			return err
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
