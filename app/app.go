// Package app wires fieldsync's parts into one running server: the store
// (SQLite or MongoDB), identity, the engine and workflow, the live stream,
// push, webhooks, retention, attachments, the console and the HTTP server, and stops
// them in order. It is the only package that imports every adapter;
// cmd/fieldsync reads its Config from flags, and the system tests beside it
// (package app_test, on the fixture internal/apptest) start it on port 0.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/fieldsync/fieldsync/attachment"
	"github.com/fieldsync/fieldsync/console"
	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/internal/storemetrics"
	"github.com/fieldsync/fieldsync/jwtauth"
	"github.com/fieldsync/fieldsync/kpi"
	"github.com/fieldsync/fieldsync/mongodb"
	"github.com/fieldsync/fieldsync/openapi"
	"github.com/fieldsync/fieldsync/schemas"
	"github.com/fieldsync/fieldsync/server"
	"github.com/fieldsync/fieldsync/sqlite"
	"github.com/fieldsync/fieldsync/stream"
	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/webhook"
)

// DBFile is the embedded store's file inside the data directory.
const DBFile = "fieldsync.db"

// Config is everything a server is started with; cmd/fieldsync reads it
// from flags and the environment (docs/operations.md names each).
type Config struct {
	Version         string // shown by /version and the banner
	Addr            string
	Data            string
	LogFormat       string
	LogLevel        string
	MaxBody         int
	RateLimit       int
	Limits          engine.Limits
	ShutdownTimeout time.Duration
	Synchronous     string
	MongoURI        string
	MongoDatabase   string
	MongoTimeout    time.Duration
	// CallTimeout bounds the store work of one request (0: the server's
	// default, 30 s). serve keeps the default; the system tests give a busy
	// machine more time (internal/patience).
	CallTimeout time.Duration
	Visits      fieldsales.VisitRules
	Stream      StreamConfig // stream.go
	// Workflows turns the field-sales workflow on (workflow.go);
	// EscalationInterval is how often its overdue sweep runs.
	Workflows          bool
	CORSOrigins        []string // browser origins allowed to call the API (none by default)
	EscalationInterval time.Duration

	// Sign-in (docs/access.md).
	AccessTTL       time.Duration
	SessionTTL      time.Duration
	AccountFailures int // failed sign-ins per email per window; 0: no limit
	AddressFailures int // failed sign-ins per client address per window; 0: no limit
	FailureWindow   time.Duration
	Hash            identity.HashParams

	Push      PushConfig      // push notifications (push.go)
	Webhooks  WebhookConfig   // outgoing webhooks (webhooks.go)
	Retention RetentionConfig // history compaction (retention.go)
	// Attachments are files on documents (attachments.go).
	Attachments AttachmentsConfig

	Console ConsoleConfig // the web console (console.go)

	// Clock is the time the server's business runs on: stamps, token and
	// session expiry, due times and escalations, the console's and the
	// KPIs' "today", notifications, webhooks, retention. nil: time.Now.
	// Timeouts, heartbeats and stream presence stay on real time. The
	// console's browser tests shift it to play another hour or weekday
	// (app/consoletest); serve never sets it.
	Clock func() time.Time
}

// Defaults is the configuration a server runs with where no flag or
// environment variable says otherwise; docs/operations.md explains each.
func Defaults() Config {
	return Config{
		Addr: "127.0.0.1:8080", Data: "./data", LogFormat: "text", LogLevel: "info",
		MaxBody: server.DefaultMaxBody, RateLimit: server.DefaultRateLimit, Limits: engine.DefaultLimits,
		ShutdownTimeout: 15 * time.Second, Synchronous: "FULL",
		MongoDatabase: "fieldsync", MongoTimeout: 10 * time.Second,
		Visits:    fieldsales.DefaultVisitRules,
		Workflows: true, EscalationInterval: time.Minute,
		AccessTTL: identity.DefaultAccessTTL, SessionTTL: identity.DefaultSessionTTL,
		AccountFailures: identity.DefaultAccountFailures, AddressFailures: identity.DefaultAddressFailures,
		FailureWindow: identity.DefaultFailureWindow, Hash: identity.DefaultHashParams,
		// Stream.Poll 0: 50ms on MongoDB, 1s on SQLite (startStream).
		Stream: StreamConfig{Heartbeat: stream.DefaultHeartbeat, Recheck: stream.DefaultRecheck,
			MaxPerUser: stream.DefaultMaxPerUser, MaxStreams: stream.DefaultMaxStreams},
		Push: PushConfig{Lease: time.Minute, Retention: 30 * 24 * time.Hour, MaxAge: 6 * time.Hour, Batch: 100, MaxAttempts: 8,
			Poll: time.Second},
		// Webhooks.Lease 0: the attempt timeout + 30s.
		Webhooks: WebhookConfig{Poll: time.Second, MaxAttempts: webhook.DefaultMaxAttempts, BaseBackoff: webhook.DefaultBaseBackoff,
			MaxBackoff: webhook.DefaultMaxBackoff, Timeout: webhook.DefaultTimeout, DisableAfter: webhook.DefaultDisableAfter,
			FailingFor: webhook.DefaultFailingFor, MaxAge: 6 * time.Hour},
		Retention: RetentionConfig{History: 90 * 24 * time.Hour, Sessions: 30 * 24 * time.Hour, Interval: time.Hour, Wait: 10 * time.Minute},
		Console:   ConsoleConfig{SessionTTL: console.DefaultSessionTTL, Poll: console.DefaultPollInterval},
		Attachments: AttachmentsConfig{Limits: attachment.DefaultLimits, Retention: 30 * 24 * time.Hour,
			Abandoned: 7 * 24 * time.Hour, Sweep: time.Hour},
	}
}

// Instance is one running server with everything it owns.
type Instance struct {
	Store  engine.Store
	Engine *engine.Engine // the system tests write fixtures through it as the server would
	Server *server.Server
	Keys   *jwtauth.Keys
	ln     net.Listener
	cfg    Config
	log    *slog.Logger
	push   *pushRunner    // push.go: stopped before the store closes
	hooks  *webhookRunner // webhooks.go: stopped before the store closes
	// stopStream ends the live streams (before the store closes).
	stopStream func()
	// stopWorkflow ends the overdue sweep (before the store closes).
	stopWorkflow func()
	// stopRetention ends the history compaction (retention.go).
	stopRetention func()
	// stopAttachments ends the attachment sweep (attachments.go).
	stopAttachments func()
}

// Start wires the adapters together and binds the listener; ServeUntil is
// the caller's to run. This is the only place that knows every package.
func Start(ctx context.Context, c Config, log *slog.Logger) (*Instance, error) {
	sch, err := schemas.Load()
	if err != nil {
		return nil, err
	}
	keys, err := jwtauth.LoadOrCreate(c.Data)
	if err != nil {
		return nil, err
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	keys.SetClock(c.Clock)
	var store engine.Store
	var dir identity.Store
	if c.MongoURI != "" {
		// The URI carries credentials: it is never logged.
		var ms *mongodb.Store
		ms, err = mongodb.Open(ctx, c.MongoURI, c.MongoDatabase, mongodb.Options{Timeout: c.MongoTimeout})
		store, dir = ms, ms
	} else {
		var ss *sqlite.Store
		ss, err = sqlite.Open(ctx, filepath.Join(c.Data, DBFile), sqlite.Options{Synchronous: c.Synchronous})
		store, dir = ss, ss
	}
	if err != nil {
		return nil, err
	}
	// A limit of 0 on the command line means none; in identity.Config it
	// means the default.
	off := func(n int) int {
		if n <= 0 {
			return -1
		}
		return n
	}
	// Refresh tokens are signed with a key every instance on the store
	// shares (identity.Config.RefreshKey).
	refreshKey, err := store.Secret(ctx, "refresh-token-mac", 32)
	if err != nil {
		store.Close()
		return nil, err
	}
	ids, err := identity.New(identity.Config{Store: dir, Tokens: keys, RefreshKey: refreshKey, Hash: c.Hash, AccessTTL: c.AccessTTL,
		SessionTTL: c.SessionTTL, AccountFailures: off(c.AccountFailures), AddressFailures: off(c.AddressFailures),
		FailureWindow: c.FailureWindow, Now: c.Clock})
	if err != nil {
		store.Close()
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The engine's store calls are timed (fieldsync_store_call_*).
	eng, err := engine.New(ctx, engine.Config{Store: storemetrics.Wrap(store, reg), Schemas: sch, Directory: ids, Limits: c.Limits,
		Rules: fieldsales.New(c.Visits), Now: c.Clock})
	if err != nil {
		store.Close()
		return nil, err
	}
	// The library adapters speak WatermelonDB's and RxDB's wire formats
	// over the engine's push and pull (adapters.go).
	wmdb, rx, err := newAdapters(eng, sch.JSON())
	if err != nil {
		store.Close()
		return nil, err
	}
	// Workflows: the engine's after-push hook, the follow-up API, the
	// overdue sweep (workflow.go).
	wf, stopWorkflow, err := startWorkflow(ctx, c, eng, store, ids, sch, log)
	if err != nil {
		store.Close()
		return nil, err
	}
	// The live stream: GET /v1/sync/stream (stream.go).
	streamCfg, stopStream := startStream(c.Stream, store, eng, log)
	// Push notifications: the outbox tailer and dispatcher (push.go).
	pusher, err := startPush(c.Push, store, dir, reg, c.Clock, log)
	if err != nil {
		store.Close()
		return nil, err
	}
	// Files on documents (attachments.go).
	files, stopAttachments, err := startAttachments(ctx, c.Attachments, c.Data, eng, store, c.Clock, log)
	if err != nil {
		pusher.stop()
		stopStream()
		stopWorkflow()
		store.Close()
		return nil, err
	}
	hooks := startWebhooks(c.Webhooks, store, c.Clock, log) // webhooks.go
	var hooksAPI server.Webhooks
	if hooks != nil {
		hooksAPI = hooks.api()
	}
	// The web console at /console/ (console.go).
	kpis := kpi.NewService(store, ids, c.Clock)
	customers := fieldsales.Customers{Engine: eng, Directory: ids} // assignment, for the admin API and the console
	cons, err := startConsole(ctx, c.Console, store, ids, wf, kpis, eng, customers, pusher.devices, files, hooksAPI, c.Visits.RadiusM, c.Clock, log)
	if err != nil {
		hooks.stop()
		stopAttachments()
		pusher.stop()
		stopStream()
		stopWorkflow()
		store.Close()
		return nil, err
	}
	var wfAPI server.Workflow
	if wf != nil {
		wfAPI = wf
	}
	srv := server.New(server.Config{
		Sync: eng, Auth: keys, Store: store, Schemas: sch.JSON(), OpenAPI: openapi.JSON(), Logger: log, Registry: reg,
		Version: c.Version, MaxBody: c.MaxBody, RateLimit: c.RateLimit, Stream: streamCfg, CORSOrigins: c.CORSOrigins,
		CallTimeout: c.CallTimeout,
		Accounts:    ids, Sessions: keys, Admin: ids, Devices: pusher.devices, Directory: ids,
		Keys: ids, ServiceAccounts: ids, // API keys of service accounts
		Webhooks: hooksAPI,
		KPIs:     kpis, // GET /v1/kpis
		// The admin's document endpoints write through the engine (Upsert,
		// Limits) and read the store (Get).
		Docs: struct {
			fieldsales.Customers
			engine.Store
		}{customers, store},
		Workflow:     wfAPI,
		Attachments:  files,
		Console:      cons,
		WatermelonDB: wmdb,
		RxDB:         rx,
		Now:          c.Clock,
	})
	stopRetention, err := startRetention(ctx, c.Retention, store, dir, c.Clock, log)
	if err != nil {
		stopAttachments()
		hooks.stop()
		pusher.stop()
		stopStream()
		stopWorkflow()
		store.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		stopRetention()
		stopAttachments()
		hooks.stop()
		pusher.stop()
		stopStream()
		stopWorkflow()
		store.Close()
		return nil, fmt.Errorf("listen on %s: %w", c.Addr, err)
	}
	return &Instance{Store: store, Engine: eng, Server: srv, Keys: keys, ln: ln, cfg: c, log: log, stopWorkflow: stopWorkflow, stopStream: stopStream,
		push: pusher, hooks: hooks, stopRetention: stopRetention, stopAttachments: stopAttachments}, nil
}

// ServeUntil serves until ctx is done, then shuts down in order: stop
// accepting, let in-flight requests finish within the timeout, stop the
// background runners, close the store.
func (in *Instance) ServeUntil(ctx context.Context, timeout time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- in.Server.Serve(in.ln) }()
	in.log.Info("listening", "addr", in.ln.Addr().String(), "version", in.cfg.Version)
	var serveErr error
	select {
	case <-ctx.Done():
		in.log.Info("shutting down", "timeout", timeout.String())
	case serveErr = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	shutErr := in.Server.Shutdown(sctx)
	// Shutdown only stops listeners the server has started on; closing ours
	// also ends a Serve that had not reached Accept yet.
	in.ln.Close()
	if serveErr == nil {
		serveErr = <-errc
	}
	if errors.Is(serveErr, net.ErrClosed) {
		serveErr = nil
	}
	in.stopWorkflow()
	in.stopRetention()
	in.stopAttachments()
	if in.stopStream != nil {
		in.stopStream()
	}
	in.push.stop() // the dispatcher's pass in flight is recorded first
	in.hooks.stop()
	closeErr := in.Store.Close()
	in.log.Info("stopped")
	return errors.Join(serveErr, shutErr, closeErr)
}

// URL is where a client on this machine reaches the server.
func (in *Instance) URL() string { return LocalURL(in.ln.Addr().String()) }

// LocalURL is the URL a local client reaches a server listening on addr at.
func LocalURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://127.0.0.1:8080"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
