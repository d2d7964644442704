package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/webhook"
)

// WebhookConfig configure outgoing webhooks (docs/integrations.md).
type WebhookConfig struct {
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

// webhookRunner is the webhook admin service and this instance's tailer and
// dispatcher.
type webhookRunner struct {
	svc    *webhook.Service
	cancel context.CancelFunc
	done   chan struct{}
}

// startWebhooks starts the tailer and dispatcher; a store that does not
// implement webhook.Store runs without webhooks (nil).
func startWebhooks(f WebhookConfig, store engine.Store, now func() time.Time, log *slog.Logger) *webhookRunner {
	ws, ok := store.(webhook.Store)
	if !ok {
		return nil
	}
	r := &webhookRunner{svc: webhook.NewService(ws, f.AllowLoopback, now), done: make(chan struct{})}
	if f.Off {
		close(r.done)
		return r
	}
	d := webhook.NewDispatcher(webhook.DispatcherConfig{Store: ws, Instance: instanceID(), MaxAttempts: f.MaxAttempts,
		BaseBackoff: f.BaseBackoff, MaxBackoff: f.MaxBackoff, Timeout: f.Timeout, Lease: f.Lease, DisableAfter: f.DisableAfter,
		FailingFor: f.FailingFor, AllowLoopback: f.AllowLoopback, Log: log, Now: now})
	t := webhook.NewTailer(webhook.TailerConfig{Feed: store, Store: ws, MaxAge: f.MaxAge, Log: log, Enqueued: d.Wake, Now: now})
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
