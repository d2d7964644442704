package push

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// Feed is the part of the sync store the tailer reads: the organisation's
// commit-ordered change feed (scope "org") and the stored documents (owner,
// last writer).
type Feed interface {
	Pull(ctx context.Context, q engine.PullQuery) (engine.PullPage, error)
	Get(ctx context.Context, org string, refs []engine.DocRef) (map[engine.DocRef]*engine.Document, error)
}

// TailerConfig wires a Tailer.
type TailerConfig struct {
	Feed      Feed
	Store     Store
	Directory Directory
	Instance  string        // this server instance, the lease owner
	Lease     time.Duration // how long one instance tails an organisation unchallenged (default 30 s)
	Page      int           // changes per read (default 500)
	// MaxAge skips changes written, and transitions made, longer ago than
	// this (default 6 h): a server upgraded onto an old database does not
	// notify its history, and an edit of an old document does not announce
	// its old transition again once the outbox row was pruned.
	MaxAge  time.Duration
	Now     func() time.Time
	Log     *slog.Logger
	Metrics *Metrics
	// Enqueued, when set, is called after notifications were inserted (to
	// wake a dispatcher).
	Enqueued func()
}

// Tailer turns committed changes into outbox rows, one organisation at a
// time, holding a per-organisation lease so that normally one instance
// tails an organisation. Two tailers on one organisation (a lease that
// expired under a slow instance) are harmless: ids are deterministic.
type Tailer struct{ cfg TailerConfig }

// NewTailer returns a tailer; Run or Pass drive it.
func NewTailer(cfg TailerConfig) *Tailer {
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
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
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(prometheus.NewRegistry())
	}
	return &Tailer{cfg: cfg}
}

// Run tails every organisation every poll until ctx is done.
func (t *Tailer) Run(ctx context.Context, poll time.Duration) {
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		if err := t.Pass(ctx); err != nil && ctx.Err() == nil {
			t.cfg.Log.Warn("push tailer", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// headHinter is a Feed that tells, for many organisations in one read, an
// upper bound of each one's feed head (the MongoDB store's counters).
type headHinter interface {
	HeadHints(ctx context.Context, orgs []string) (map[string]int64, error)
}

// hintBatch bounds the organisations of one HeadHints read.
const hintBatch = 1000

// Pass reads every organisation's feed up to its end. With a Feed that
// gives head hints, an idle pass costs three reads whatever the number of
// organisations: the organisations, every cursor, and the hints, and only
// organisations whose head passed their cursor are tailed.
func (t *Tailer) Pass(ctx context.Context) error {
	orgs, err := t.cfg.Store.Orgs(ctx)
	if err != nil {
		return err
	}
	if h, ok := t.cfg.Feed.(headHinter); ok && len(orgs) > 0 {
		if orgs, err = t.busy(ctx, h, orgs); err != nil {
			return err
		}
	}
	var errs []error
	for _, org := range orgs {
		if err := t.TailOrg(ctx, org); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// busy keeps the organisations whose feed head passed their cursor.
func (t *Tailer) busy(ctx context.Context, h headHinter, orgs []string) ([]string, error) {
	cursors, err := t.cfg.Store.TailCursors(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for start := 0; start < len(orgs); start += hintBatch {
		chunk := orgs[start:min(start+hintBatch, len(orgs))]
		hints, err := h.HeadHints(ctx, chunk)
		if err != nil {
			return nil, err
		}
		for _, o := range chunk {
			if hints[o] > cursors[o] {
				out = append(out, o)
			}
		}
	}
	return out, nil
}

// TailOrg reads org's feed from its cursor to the end, if this instance
// holds (or can take) the organisation's lease.
func (t *Tailer) TailOrg(ctx context.Context, org string) error {
	// Reads first: the lease (a write) is only taken when there is work.
	cursor, err := t.cfg.Store.TailCursor(ctx, org)
	if err != nil {
		return err
	}
	pull := func(after int64) ([]engine.Change, bool, error) {
		pg, err := t.cfg.Feed.Pull(ctx, engine.PullQuery{Org: org, Scopes: []string{fieldsales.ScopeOrg}, After: after, Limit: t.cfg.Page})
		if err == nil && pg.Compacted {
			// Behind the history the store keeps (retention): what it
			// missed is older than any notification it would still send
			// (--push-max-age), so it reads on from the start, where the
			// documents' latest changes are.
			pg, err = t.cfg.Feed.Pull(ctx, engine.PullQuery{Org: org, Scopes: []string{fieldsales.ScopeOrg}, Limit: t.cfg.Page})
		}
		return pg.Changes, pg.More, err
	}
	changes, more, err := pull(cursor)
	if err != nil || len(changes) == 0 {
		return err
	}
	now := t.cfg.Now()
	held, ok, err := t.cfg.Store.AcquireTail(ctx, org, t.cfg.Instance, now, now.Add(t.cfg.Lease))
	if err != nil || !ok {
		return err
	}
	var loc *time.Location
	var quiet QuietHours
	for first := true; ; first = false {
		if !first || held != cursor {
			cursor = held
			if changes, more, err = pull(cursor); err != nil {
				return err
			}
		}
		if len(changes) == 0 {
			return nil
		}
		if loc == nil {
			if loc, quiet, err = t.orgSettings(ctx, org); err != nil {
				return err
			}
		}
		ns, err := t.notifications(ctx, org, changes, loc, quiet)
		if err != nil {
			return err
		}
		if len(ns) > 0 {
			n, err := t.cfg.Store.Enqueue(ctx, ns)
			if err != nil {
				return err
			}
			t.cfg.Metrics.enqueued(n)
			if n > 0 && t.cfg.Enqueued != nil {
				t.cfg.Enqueued()
			}
		}
		// Only now, with the notifications durable, does the cursor move.
		held = changes[len(changes)-1].Seq
		now = t.cfg.Now()
		if ok, err := t.cfg.Store.AdvanceTail(ctx, org, t.cfg.Instance, held, now.Add(t.cfg.Lease)); err != nil || !ok {
			return err
		}
		if !more {
			return nil
		}
	}
}

func (t *Tailer) orgSettings(ctx context.Context, org string) (*time.Location, QuietHours, error) {
	loc := time.UTC
	o, err := t.cfg.Directory.Org(ctx, org)
	if err != nil && engine.ErrorKind(err) != engine.KindNotFound {
		return nil, QuietHours{}, err
	}
	if o != nil && o.TimeZone != "" {
		if l, err := time.LoadLocation(o.TimeZone); err == nil {
			loc = l
		}
	}
	q, err := t.cfg.Store.QuietHours(ctx, org)
	return loc, q, err
}

// notifications evaluates the triggers of a page of changes.
func (t *Tailer) notifications(ctx context.Context, org string, changes []engine.Change, loc *time.Location, quiet QuietHours) ([]Notification, error) {
	var refs []engine.DocRef
	for _, c := range changes {
		if slices.Contains(watched, c.Collection) && !c.Deleted && !c.Evicted {
			refs = append(refs, engine.DocRef{Collection: c.Collection, ID: c.ID})
		}
	}
	if len(refs) == 0 {
		return nil, nil
	}
	docs, err := t.cfg.Feed.Get(ctx, org, refs)
	if err != nil {
		return nil, err
	}
	now := t.cfg.Now()
	res := &resolver{dir: t.cfg.Directory, org: org, roles: map[string][]string{}}
	prefs := map[string]Prefs{}
	var out []Notification
	for _, c := range changes {
		doc := docs[engine.DocRef{Collection: c.Collection, ID: c.ID}]
		if doc == nil || doc.Version > c.Version {
			// A later change of the document is further on in the feed; it
			// is evaluated there, with the writer of that version.
			continue
		}
		if !doc.UpdatedAt.IsZero() && now.Sub(doc.UpdatedAt) > t.cfg.MaxAge {
			continue
		}
		for _, e := range evaluate(c, doc) {
			if !e.at.IsZero() && now.Sub(e.at) > t.cfg.MaxAge || !e.until.IsZero() && now.After(e.until) {
				continue
			}
			users, err := res.recipients(ctx, e)
			if err != nil {
				return nil, err
			}
			title, body := render(e.trigger, e.vars)
			for _, u := range users {
				p, ok := prefs[u]
				if !ok {
					if p, err = t.cfg.Store.Prefs(ctx, org, u); err != nil {
						return nil, err
					}
					prefs[u] = p
				}
				if slices.Contains(p.Muted, e.category) {
					t.cfg.Metrics.muted.Inc()
					continue
				}
				due := now
				if !e.urgent {
					due = quiet.After(now, loc)
				}
				out = append(out, Notification{
					ID: NotificationID(org, c.Collection, c.ID, e.trigger, e.state, u), Org: org, User: u,
					Trigger: e.trigger, Category: e.category, Collection: c.Collection, DocID: c.ID, Seq: c.Seq,
					Urgent: e.urgent, Title: title, Body: body, Created: now, Due: due, Status: StatusPending,
				})
			}
		}
	}
	return out, nil
}

// After returns when a non-urgent notification created at now may be sent:
// now outside quiet hours, the end of the quiet hours inside them.
func (q QuietHours) After(now time.Time, loc *time.Location) time.Time {
	if !q.Enabled() {
		return now
	}
	local := now.In(loc)
	midnight := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, loc)
	min := local.Hour()*60 + local.Minute()
	at := func(day time.Time, m int) time.Time {
		return time.Date(day.Year(), day.Month(), day.Day(), m/60, m%60, 0, 0, loc)
	}
	if q.Start < q.End {
		if min >= q.Start && min < q.End {
			return at(midnight, q.End)
		}
		return now
	}
	// Spanning midnight: quiet from Start to 24:00 and from 00:00 to End.
	switch {
	case min >= q.Start:
		return at(midnight.AddDate(0, 0, 1), q.End)
	case min < q.End:
		return at(midnight, q.End)
	}
	return now
}
