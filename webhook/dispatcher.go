package webhook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// Defaults of DispatcherConfig (docs/integrations.md, docs/operations.md).
const (
	DefaultMaxAttempts  = 12               // then the delivery is dead
	DefaultBaseBackoff  = 5 * time.Second  // doubled per attempt, with ±25 % jitter
	DefaultMaxBackoff   = 6 * time.Hour    // one wait never exceeds this (Retry-After included)
	DefaultTimeout      = 10 * time.Second // one attempt
	DefaultDisableAfter = 50               // consecutive failures...
	DefaultFailingFor   = 24 * time.Hour   // ...over at least this long disable a subscription
)

// DispatcherConfig wires a Dispatcher. Zero values take the defaults above.
type DispatcherConfig struct {
	Store         Store
	Instance      string        // this server instance, the lease owner
	Lease         time.Duration // how long a claimed delivery is this instance's (default Timeout+30 s)
	Batch         int           // deliveries per claim (default 50)
	Workers       int           // deliveries sent at once (default 8)
	MaxAttempts   int
	BaseBackoff   time.Duration
	MaxBackoff    time.Duration
	Timeout       time.Duration
	DisableAfter  int
	FailingFor    time.Duration
	AllowLoopback bool         // --webhooks-allow-loopback: deliveries may dial loopback addresses
	Client        *http.Client // default: one that dials only addresses CheckURL allows
	Now           func() time.Time
	Log           *slog.Logger
}

// Dispatcher sends due deliveries.
type Dispatcher struct {
	cfg  DispatcherConfig
	wake chan struct{}
}

// NewDispatcher returns a dispatcher; Run or Pass drive it.
func NewDispatcher(cfg DispatcherConfig) *Dispatcher {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.BaseBackoff, DefaultBaseBackoff)
	def(&cfg.MaxBackoff, DefaultMaxBackoff)
	def(&cfg.Timeout, DefaultTimeout)
	def(&cfg.FailingFor, DefaultFailingFor)
	def(&cfg.Lease, cfg.Timeout+30*time.Second)
	if cfg.Batch <= 0 {
		cfg.Batch = 50
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.DisableAfter <= 0 {
		cfg.DisableAfter = DefaultDisableAfter
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Client == nil {
		d := &net.Dialer{Timeout: cfg.Timeout, Control: func(network, address string, c syscall.RawConn) error {
			return DialControl(cfg.AllowLoopback)(network, address, c)
		}}
		cfg.Client = &http.Client{Timeout: cfg.Timeout, Transport: &http.Transport{DialContext: d.DialContext,
			Proxy: nil, MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second},
			// A redirect could lead anywhere: the endpoint is the URL given.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return &Dispatcher{cfg: cfg, wake: make(chan struct{}, 1)}
}

// Wake makes Run pass again at once (the tailer enqueued deliveries).
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run sends due deliveries every poll (or when woken) until ctx is done.
func (d *Dispatcher) Run(ctx context.Context, poll time.Duration) {
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		for {
			n, err := d.Pass(ctx)
			if err != nil && ctx.Err() == nil {
				d.cfg.Log.Warn("webhook dispatcher", "err", err)
			}
			if n < d.cfg.Batch || err != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-d.wake:
		}
	}
}

// Pass claims one batch of due deliveries and sends them, returning how
// many it claimed.
func (d *Dispatcher) Pass(ctx context.Context) (int, error) {
	now := d.cfg.Now()
	ds, err := d.cfg.Store.ClaimDeliveries(ctx, d.cfg.Instance, now, now.Add(d.cfg.Lease), d.cfg.Batch)
	if err != nil || len(ds) == 0 {
		return 0, err
	}
	subs := map[string]*Subscription{}
	var mu sync.Mutex
	sem := make(chan struct{}, d.cfg.Workers)
	var wg sync.WaitGroup
	errs := make([]error, len(ds))
	for i := range ds {
		key := ds[i].Org + "\x1f" + ds[i].Sub
		if _, ok := subs[key]; !ok {
			s, err := d.cfg.Store.Subscription(ctx, ds[i].Org, ds[i].Sub)
			if err != nil && engine.ErrorKind(err) != engine.KindNotFound {
				return len(ds), err
			}
			subs[key] = s
		}
		sub := subs[key] // read here: the loop writes the map while workers run
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = d.deliver(ctx, &ds[i], sub, &mu)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return len(ds), err
		}
	}
	return len(ds), nil
}

// deliver makes one attempt and records its outcome.
func (d *Dispatcher) deliver(ctx context.Context, dl *Delivery, shared *Subscription, mu *sync.Mutex) error {
	var s *Subscription
	if shared != nil {
		mu.Lock()
		snap := *shared // recordHealth of another worker may update it
		mu.Unlock()
		s = &snap
	}
	if s == nil || s.Disabled {
		dl.Status, dl.LastError = StatusDead, "the subscription is disabled or deleted"
		_, err := d.cfg.Store.CompleteDelivery(ctx, d.cfg.Instance, *dl)
		return err
	}
	now := d.cfg.Now()
	status, retryAfter, err := d.send(ctx, dl, s, now)
	dl.Attempts++
	ok := err == nil && status >= 200 && status < 300
	switch {
	case ok:
		dl.Status, dl.LastError, dl.SentAt = StatusSent, "", d.cfg.Now()
	case dl.Attempts >= d.cfg.MaxAttempts:
		dl.Status, dl.LastError = StatusDead, attemptError(status, err)
	default:
		dl.Status, dl.LastError = StatusPending, attemptError(status, err)
		dl.Due = d.cfg.Now().Add(d.backoff(dl.Attempts, retryAfter))
	}
	if _, err := d.cfg.Store.CompleteDelivery(ctx, d.cfg.Instance, *dl); err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	return d.recordHealth(ctx, shared, ok, dl.LastError)
}

func attemptError(status int, err error) string {
	if err != nil {
		// The transport error names the URL, never a secret.
		return err.Error()
	}
	return "HTTP " + strconv.Itoa(status)
}

// send posts the delivery; it returns the status and the Retry-After the
// endpoint asked for.
func (d *Dispatcher) send(ctx context.Context, dl *Delivery, s *Subscription, now time.Time) (int, time.Duration, error) {
	if err := CheckURL(s.URL, d.cfg.AllowLoopback); err != nil {
		return 0, 0, err
	}
	sig, err := Sign(dl.ID, now, dl.Body, s.Secrets(now)...)
	if err != nil {
		return 0, 0, err
	}
	cctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodPost, s.URL, bytes.NewReader(dl.Body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "fieldsync-webhooks/1")
	req.Header.Set(HeaderID, dl.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, sig)
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, retryAfter(resp.Header.Get("Retry-After"), now), nil
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// backoff is the wait before attempt n+1: BaseBackoff·2^(n-1) with ±25 %
// jitter, at least what Retry-After asked, at most MaxBackoff.
func (d *Dispatcher) backoff(n int, retryAfter time.Duration) time.Duration {
	w := d.cfg.BaseBackoff << min(n-1, 30)
	if w <= 0 || w > d.cfg.MaxBackoff {
		w = d.cfg.MaxBackoff
	}
	w = time.Duration(float64(w) * (0.75 + rand.Float64()/2))
	w = max(w, retryAfter)
	return min(w, d.cfg.MaxBackoff)
}

// recordHealth counts consecutive failures of a subscription and disables
// it, with the reason, once it has failed DisableAfter times in a row over
// at least FailingFor. A success resets the count.
func (d *Dispatcher) recordHealth(ctx context.Context, s *Subscription, ok bool, lastErr string) error {
	if ok && s.Failures == 0 {
		return nil
	}
	for attempt := 0; attempt < 5; attempt++ {
		cur, err := d.cfg.Store.Subscription(ctx, s.Org, s.ID)
		if err != nil {
			return nil // deleted meanwhile
		}
		now := d.cfg.Now()
		if ok {
			cur.Failures, cur.FailingSince = 0, time.Time{}
		} else {
			if cur.Failures == 0 {
				cur.FailingSince = now
			}
			cur.Failures++
			if !cur.Disabled && cur.Failures >= d.cfg.DisableAfter && now.Sub(cur.FailingSince) >= d.cfg.FailingFor {
				cur.Disabled = true
				cur.DisabledReason = fmt.Sprintf("%d consecutive failed deliveries since %s; last: %s",
					cur.Failures, cur.FailingSince.UTC().Format(time.RFC3339), lastErr)
				d.cfg.Log.Warn("webhook subscription disabled", "org", cur.Org, "subscription", cur.ID, "reason", cur.DisabledReason)
			}
		}
		cur.Updated = now
		err = d.cfg.Store.PutSubscription(ctx, cur)
		if engine.ErrorKind(err) == engine.KindConflict {
			continue
		}
		if err == nil {
			*s = *cur
		}
		return err
	}
	return nil
}
