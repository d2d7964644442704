package main

import (
	"context"
	"flag"
	"log/slog"
	"time"

	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/webhook"
)

// webhookFlags configure outgoing webhooks (docs/integrations.md).
type webhookFlags struct {
	AllowLoopback bool
	Poll          time.Duration
	MaxAttempts   int
	BaseBackoff   time.Duration
	MaxBackoff    time.Duration
	Timeout       time.Duration
	Lease         time.Duration
	DisableAfter  int
	FailingFor    time.Duration
	MaxAge        time.Duration
	Off           bool
}

func (f *webhookFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.AllowLoopback, "webhooks-allow-loopback", false, "let webhook subscriptions deliver to loopback addresses over http, for development (env FIELDSYNC_WEBHOOKS_ALLOW_LOOPBACK=1)")
	fs.DurationVar(&f.Poll, "webhooks-poll", time.Second, "how often the change feed and the deliveries are polled (env FIELDSYNC_WEBHOOKS_POLL)")
	fs.IntVar(&f.MaxAttempts, "webhooks-max-attempts", webhook.DefaultMaxAttempts, "attempts before a delivery is dead (env FIELDSYNC_WEBHOOKS_MAX_ATTEMPTS)")
	fs.DurationVar(&f.BaseBackoff, "webhooks-backoff", webhook.DefaultBaseBackoff, "wait after the first failed attempt, doubled after each (env FIELDSYNC_WEBHOOKS_BACKOFF)")
	fs.DurationVar(&f.MaxBackoff, "webhooks-max-backoff", webhook.DefaultMaxBackoff, "longest wait between attempts, Retry-After included (env FIELDSYNC_WEBHOOKS_MAX_BACKOFF)")
	fs.DurationVar(&f.Timeout, "webhooks-timeout", webhook.DefaultTimeout, "time one attempt may take (env FIELDSYNC_WEBHOOKS_TIMEOUT)")
	fs.DurationVar(&f.Lease, "webhooks-lease", 0, "how long a claimed delivery stays with this instance; another sends it after that if this one died; 0: --webhooks-timeout + 30s (env FIELDSYNC_WEBHOOKS_LEASE)")
	fs.IntVar(&f.DisableAfter, "webhooks-disable-after", webhook.DefaultDisableAfter, "consecutive failed attempts (over --webhooks-failing-for) that disable a subscription (env FIELDSYNC_WEBHOOKS_DISABLE_AFTER)")
	fs.DurationVar(&f.FailingFor, "webhooks-failing-for", webhook.DefaultFailingFor, "how long a subscription must keep failing before it is disabled (env FIELDSYNC_WEBHOOKS_FAILING_FOR)")
	fs.DurationVar(&f.MaxAge, "webhooks-max-age", 6*time.Hour, "events older than this when the tailer reads them are not delivered (env FIELDSYNC_WEBHOOKS_MAX_AGE)")
	fs.BoolVar(&f.Off, "webhooks-off", false, "do not tail or deliver on this instance; the admin routes stay (env FIELDSYNC_WEBHOOKS_OFF=1)")
}

// webhookRunner is the webhook admin service and this instance's tailer and
// dispatcher.
type webhookRunner struct {
	svc    *webhook.Service
	cancel context.CancelFunc
	done   chan struct{}
}

// startWebhooks starts the tailer and dispatcher; a store that does not
// implement webhook.Store runs without webhooks (nil).
func startWebhooks(f webhookFlags, store engine.Store, log *slog.Logger) *webhookRunner {
	ws, ok := store.(webhook.Store)
	if !ok {
		return nil
	}
	r := &webhookRunner{svc: webhook.NewService(ws, f.AllowLoopback, nil), done: make(chan struct{})}
	if f.Off {
		close(r.done)
		return r
	}
	d := webhook.NewDispatcher(webhook.DispatcherConfig{Store: ws, Instance: instanceID(), MaxAttempts: f.MaxAttempts,
		BaseBackoff: f.BaseBackoff, MaxBackoff: f.MaxBackoff, Timeout: f.Timeout, Lease: f.Lease, DisableAfter: f.DisableAfter,
		FailingFor: f.FailingFor, AllowLoopback: f.AllowLoopback, Log: log})
	t := webhook.NewTailer(webhook.TailerConfig{Feed: store, Store: ws, MaxAge: f.MaxAge, Log: log, Enqueued: d.Wake})
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	tailDone := make(chan struct{})
	go func() { defer close(tailDone); t.Run(ctx, f.Poll) }()
	go func() { defer close(r.done); d.Run(ctx, f.Poll); <-tailDone }()
	return r
}

// stop ends the tailer and the dispatcher before the store closes.
func (r *webhookRunner) stop() {
	if r == nil || r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
}

// api is the admin API's side, nil when the store keeps no webhooks.
func (r *webhookRunner) api() *webhook.Service {
	if r == nil {
		return nil
	}
	return r.svc
}
