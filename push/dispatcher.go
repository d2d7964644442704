package push

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Presence tells which devices of a user hold the live stream (GET
// /v1/sync/stream) on any server instance: they are poked there already, so
// their FCM push is skipped. The stores implement it from the stream's
// presence records.
type Presence interface {
	Online(ctx context.Context, org, user string) ([]string, error)
}

// DispatcherConfig wires a Dispatcher.
type DispatcherConfig struct {
	Store    Store
	Sender   Sender
	Instance string        // this server instance, the lease owner
	Lease    time.Duration // claim lease; longer than a send can take (default 60 s)
	Batch    int           // notifications claimed per pass (default 100)
	// MaxAttempts: after this many failed sends a notification is dead,
	// kept with its last error (default 8).
	MaxAttempts int
	BaseDelay   time.Duration // first retry delay before jitter (default 30 s)
	MaxDelay    time.Duration // backoff cap (default 1 h); a longer Retry-After is still honoured
	TTL         time.Duration // message time-to-live at FCM (default DefaultTTL)
	SendTimeout time.Duration // budget of one Send (default 30 s)
	// Retention is how long sent and dead notifications are kept (default
	// 30 days); Run prunes older ones every hour.
	Retention time.Duration
	Now       func() time.Time
	Rand      func() float64 // in [0, 1): the jitter (default math/rand/v2)
	Presence  Presence       // nil: every device is pushed
	Log       *slog.Logger
	Metrics   *Metrics
}

// maxSend is the largest batch handed to a Sender (FCM's SendEach limit).
const maxSend = 500

// Dispatcher drains the outbox: it claims due notifications with a lease,
// sends them to every device of their user in batches, and records the
// outcome (sent, retry at, dead).
type Dispatcher struct {
	cfg  DispatcherConfig
	kick chan struct{}
}

// NewDispatcher returns a dispatcher; Run or Pass drive it.
func NewDispatcher(cfg DispatcherConfig) *Dispatcher {
	if cfg.Lease <= 0 {
		cfg.Lease = 60 * time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 100
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 8
	}
	if cfg.BaseDelay <= 0 {
		cfg.BaseDelay = 30 * time.Second
	}
	if cfg.MaxDelay <= 0 {
		cfg.MaxDelay = time.Hour
	}
	if cfg.Retention <= 0 {
		cfg.Retention = 30 * 24 * time.Hour
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(prometheus.NewRegistry())
	}
	return &Dispatcher{cfg: cfg, kick: make(chan struct{}, 1)}
}

// Kick wakes Run before its next poll (new notifications were enqueued).
func (d *Dispatcher) Kick() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// Run dispatches until ctx is done. A pass in flight when ctx ends is
// finished (its sends recorded), so stopping never leaves a sent
// notification marked pending.
func (d *Dispatcher) Run(ctx context.Context, poll time.Duration) {
	tick := time.NewTicker(poll)
	defer tick.Stop()
	var pruned time.Time
	for {
		if now := d.cfg.Now(); now.Sub(pruned) >= time.Hour {
			pruned = now
			if n, err := d.cfg.Store.Prune(ctx, now.Add(-d.cfg.Retention)); err != nil {
				d.cfg.Log.Warn("push: prune the outbox", "err", err)
			} else if n > 0 {
				d.cfg.Log.Info("push: pruned the outbox", "notifications", n)
			}
		}
		for {
			n, err := d.Pass(context.WithoutCancel(ctx))
			if err != nil {
				d.cfg.Log.Warn("push dispatcher", "err", err)
			}
			if n < d.cfg.Batch || err != nil || ctx.Err() != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-d.kick:
		}
	}
}

// Delay is the backoff before attempt+1 after attempt failed sends: BaseDelay
// doubled per attempt, capped at MaxDelay, with equal jitter (between half
// and all of it), and never less than what the push service asked for.
func (d *Dispatcher) Delay(attempt int, retryAfter time.Duration) time.Duration {
	full := d.cfg.BaseDelay
	for i := 1; i < attempt && full < d.cfg.MaxDelay; i++ {
		full *= 2
	}
	full = min(full, d.cfg.MaxDelay)
	delay := full/2 + time.Duration(d.cfg.Rand()*float64(full/2))
	return max(delay, retryAfter)
}

// target is one message of a pass and the notification it belongs to.
type target struct {
	row    int
	device Device
}

// Pass claims one batch of due notifications and dispatches it, returning
// how many it claimed.
func (d *Dispatcher) Pass(ctx context.Context) (int, error) {
	now := d.cfg.Now()
	rows, err := d.cfg.Store.Claim(ctx, d.cfg.Instance, now, now.Add(d.cfg.Lease), d.cfg.Batch)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	var users []UserRef
	seen := map[UserRef]bool{}
	for _, n := range rows {
		if u := (UserRef{n.Org, n.User}); !seen[u] {
			seen[u] = true
			users = append(users, u)
		}
	}
	all, err := d.cfg.Store.UserDevices(ctx, users)
	if err != nil {
		return len(rows), err // the leases expire; another pass retries
	}
	devices := map[UserRef][]Device{}
	for _, dev := range all {
		u := UserRef{dev.Org, dev.User}
		devices[u] = append(devices[u], dev)
	}
	online := map[UserRef][]string{}
	if d.cfg.Presence != nil {
		for u := range devices {
			on, err := d.cfg.Presence.Online(ctx, u.Org, u.User)
			if err != nil {
				d.cfg.Log.Warn("push: read presence; pushing every device", "err", err)
			}
			online[u] = on
		}
	}
	var msgs []Message
	var targets []target
	for i := range rows {
		n := &rows[i]
		key := UserRef{n.Org, n.User}
		for _, dev := range devices[key] {
			if slices.Contains(n.Delivered, dev.ID) {
				continue
			}
			if slices.Contains(online[key], dev.ID) {
				n.Delivered = append(n.Delivered, dev.ID)
				d.cfg.Metrics.online.Inc()
				continue
			}
			msgs = append(msgs, NewMessage(*n, dev, d.cfg.TTL))
			targets = append(targets, target{row: i, device: dev})
		}
	}
	results := make([]Result, len(msgs))
	for start := 0; start < len(msgs); start += maxSend {
		end := min(start+maxSend, len(msgs))
		sctx, cancel := context.WithTimeout(ctx, d.cfg.SendTimeout)
		rs, err := d.cfg.Sender.Send(sctx, msgs[start:end])
		cancel()
		if err == nil && len(rs) != end-start {
			err = errShortResults
		}
		for i := start; i < end; i++ {
			if err != nil {
				results[i] = Result{Outcome: Retryable, Err: err.Error()}
			} else {
				results[i] = rs[i-start]
			}
		}
	}
	d.record(ctx, rows, targets, results)
	return len(rows), nil
}

type dispatchError string

func (e dispatchError) Error() string { return string(e) }

const errShortResults = dispatchError("the sender returned fewer results than messages")

// record applies the results to the claimed rows and completes them.
func (d *Dispatcher) record(ctx context.Context, rows []Notification, targets []target, results []Result) {
	type tally struct {
		ok, retry, permanent int
		retryAfter           time.Duration
		lastErr              string
	}
	t := make([]tally, len(rows))
	for i, r := range results {
		tg := targets[i]
		n, c := &rows[tg.row], &t[tg.row]
		switch r.Outcome {
		case OK:
			c.ok++
			n.Delivered = append(n.Delivered, tg.device.ID)
			d.cfg.Metrics.sent.Inc()
		case InvalidToken:
			n.Delivered = append(n.Delivered, tg.device.ID)
			c.lastErr = r.Err
			removed, err := d.cfg.Store.DeleteToken(ctx, n.Org, n.User, tg.device.ID, tg.device.Token)
			if err != nil {
				d.cfg.Log.Warn("push: remove invalid token", "org", n.Org, "user", n.User, "device", tg.device.ID, "err", err)
			} else if removed {
				d.cfg.Metrics.invalid.Inc()
			}
		case Retryable:
			c.retry++
			c.retryAfter = max(c.retryAfter, r.RetryAfter)
			c.lastErr = r.Err
		default:
			c.permanent++
			n.Delivered = append(n.Delivered, tg.device.ID)
			c.lastErr = r.Err
		}
	}
	now := d.cfg.Now()
	for i := range rows {
		n, c := &rows[i], t[i]
		if c.lastErr != "" {
			n.LastError = c.lastErr
		}
		n.Attempts++
		switch {
		case c.retry > 0 && n.Attempts < d.cfg.MaxAttempts:
			n.Due = now.Add(d.Delay(n.Attempts, c.retryAfter))
			d.cfg.Metrics.retried.Inc()
		case c.retry > 0, c.permanent > 0 && c.ok == 0:
			n.Status = StatusDead
			d.cfg.Metrics.failed.Inc()
		default:
			n.Status, n.SentAt = StatusSent, now
		}
	}
	if k, err := d.cfg.Store.Complete(ctx, d.cfg.Instance, rows); err != nil || k != len(rows) {
		d.cfg.Log.Warn("push: record dispatch", "notifications", len(rows), "recorded", k, "err", err)
	}
}
