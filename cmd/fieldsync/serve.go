package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/fieldsync/fieldsync/openapi"
	"io"
	"log/slog"
	"net"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/fieldsync/fieldsync/console"
	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/internal/storemetrics"
	"github.com/fieldsync/fieldsync/jwtauth"
	"github.com/fieldsync/fieldsync/kpi"
	"github.com/fieldsync/fieldsync/mongodb"
	"github.com/fieldsync/fieldsync/schemas"
	"github.com/fieldsync/fieldsync/server"
	"github.com/fieldsync/fieldsync/sqlite"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// serveConfig is everything serve reads from flags and the environment.
type serveConfig struct {
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
	Visits          visitFlags  // visits.go
	Stream          streamFlags // stream.go
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

	Push      pushFlags      // push notifications (push.go)
	Webhooks  webhookFlags   // outgoing webhooks (webhooks.go)
	Retention retentionFlags // history compaction (retention.go)

	Demo demoServeFlags // --demo: load the demo organisation first (demo.go)

	Console consoleFlags // the web console (console.go)

	Attachments attachmentFlags // files on documents (attachments.go)
}

func parseServe(args []string, stderr io.Writer) (serveConfig, error) {
	var c serveConfig
	d := engine.DefaultLimits
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { serveHelp(fs, stderr) }
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "listen address (env FIELDSYNC_ADDR)")
	fs.StringVar(&c.Data, "data", "./data", "data directory: SQLite database and signing keys (env FIELDSYNC_DATA)")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json (env FIELDSYNC_LOG_FORMAT)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn, error (env FIELDSYNC_LOG_LEVEL)")
	fs.IntVar(&c.MaxBody, "max-body", server.DefaultMaxBody, "request body limit in bytes (env FIELDSYNC_MAX_BODY)")
	fs.IntVar(&c.RateLimit, "rate-limit", server.DefaultRateLimit, "sync requests per user per minute on this instance, 0 for none (env FIELDSYNC_RATE_LIMIT)")
	fs.IntVar(&c.Limits.MaxMutations, "max-mutations", d.MaxMutations, "mutations per push (env FIELDSYNC_MAX_MUTATIONS)")
	fs.IntVar(&c.Limits.MaxDocBytes, "max-doc", d.MaxDocBytes, "document size limit in bytes (env FIELDSYNC_MAX_DOC)")
	fs.IntVar(&c.Limits.PageSize, "page-size", d.PageSize, "default pull page size (env FIELDSYNC_PAGE_SIZE)")
	fs.IntVar(&c.Limits.MaxPageSize, "max-page-size", d.MaxPageSize, "largest pull page a client may ask for (env FIELDSYNC_MAX_PAGE_SIZE)")
	fs.IntVar(&c.Limits.PageBytes, "page-bytes", d.PageBytes, "pull page byte budget (env FIELDSYNC_PAGE_BYTES)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "how long in-flight requests may take to finish on shutdown (env FIELDSYNC_SHUTDOWN_TIMEOUT)")
	fs.StringVar(&c.Synchronous, "sqlite-synchronous", "FULL", "SQLite synchronous pragma; FULL makes every acknowledged push survive power loss (env FIELDSYNC_SQLITE_SYNCHRONOUS)")
	fs.StringVar(&c.MongoURI, "mongodb-uri", "", "MongoDB connection string; empty keeps the embedded SQLite store (env FIELDSYNC_MONGODB_URI)")
	fs.StringVar(&c.MongoDatabase, "mongodb-database", "fieldsync", "MongoDB database name (env FIELDSYNC_MONGODB_DATABASE)")
	fs.DurationVar(&c.MongoTimeout, "mongodb-timeout", 10*time.Second, "how long one MongoDB command may take before the request gets 503 unavailable (env FIELDSYNC_MONGODB_TIMEOUT)")
	fs.BoolVar(&c.Workflows, "workflows", true, "route submitted orders and follow-ups by the responsibility matrix; false serves plain sync (env FIELDSYNC_WORKFLOWS)")
	fs.DurationVar(&c.EscalationInterval, "escalation-interval", time.Minute, "how often overdue follow-ups are escalated, 0 for never on this instance (env FIELDSYNC_ESCALATION_INTERVAL)")
	fs.DurationVar(&c.AccessTTL, "access-ttl", identity.DefaultAccessTTL, "lifetime of the access tokens sign-in issues (env FIELDSYNC_ACCESS_TTL)")
	fs.DurationVar(&c.SessionTTL, "session-ttl", identity.DefaultSessionTTL, "lifetime of a device's sign-in session, from sign-in (env FIELDSYNC_SESSION_TTL)")
	fs.IntVar(&c.AccountFailures, "login-account-limit", identity.DefaultAccountFailures, "failed sign-ins per email per --login-window on this instance, 0 for none (env FIELDSYNC_LOGIN_ACCOUNT_LIMIT)")
	fs.IntVar(&c.AddressFailures, "login-address-limit", identity.DefaultAddressFailures, "failed sign-ins per client address per --login-window on this instance, 0 for none (env FIELDSYNC_LOGIN_ADDRESS_LIMIT)")
	fs.DurationVar(&c.FailureWindow, "login-window", identity.DefaultFailureWindow, "sliding window of the sign-in failure limits (env FIELDSYNC_LOGIN_WINDOW)")
	h := identity.DefaultHashParams
	var mem, passes, threads int
	fs.IntVar(&mem, "password-memory", int(h.Memory), "argon2id memory of new password hashes, KiB (env FIELDSYNC_PASSWORD_MEMORY)")
	fs.IntVar(&passes, "password-time", int(h.Time), "argon2id passes of new password hashes (env FIELDSYNC_PASSWORD_TIME)")
	fs.IntVar(&threads, "password-threads", int(h.Threads), "argon2id lanes of new password hashes (env FIELDSYNC_PASSWORD_THREADS)")
	var cors string
	fs.StringVar(&cors, "cors-origins", "", "comma-separated browser origins (https://app.example.com) allowed to call the API; empty for none, * for any (env FIELDSYNC_CORS_ORIGINS)")
	c.Stream.register(fs)    // stream.go
	c.Visits.register(fs)    // visits.go
	c.Push.register(fs)      // push.go
	c.Webhooks.register(fs)  // webhooks.go
	c.Retention.register(fs) // retention.go
	c.Demo.register(fs)      // demo.go
	c.Console.register(fs)   // console.go

	c.Attachments.register(fs) // attachments.go
	if err := parseFlags(fs, args); err != nil {
		return c, err
	}
	if mem < 8*threads || mem > 4<<20 || passes < 1 || passes > 100 || threads < 1 || threads > 255 {
		return c, usageError("--password-memory must be 8*threads to 4194304 KiB, --password-time 1 to 100, --password-threads 1 to 255")
	}
	c.Hash = identity.HashParams{Memory: uint32(mem), Time: uint32(passes), Threads: uint8(threads), SaltLen: h.SaltLen, KeyLen: h.KeyLen}
	if fs.NArg() > 0 {
		return c, usageError(fmt.Sprintf("serve takes no arguments, got %q", fs.Args()))
	}
	if err := c.Retention.check(); err != nil {
		return c, err
	}
	if err := c.Attachments.check(c.MaxBody); err != nil {
		return c, err
	}
	if c.Console.Tiles != "" {
		if err := console.CheckTiles(c.Console.Tiles); err != nil {
			return c, usageError("--console-tiles (FIELDSYNC_CONSOLE_TILES): " + err.Error())
		}
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return c, usageError("--log-format (FIELDSYNC_LOG_FORMAT) must be text or json")
	}
	origins, err := server.ParseOrigins(cors)
	if err != nil {
		return c, usageError("--cors-origins (FIELDSYNC_CORS_ORIGINS): " + err.Error())
	}
	c.CORSOrigins = origins
	return c, nil
}

func newLogger(format, level string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError("--log-level (FIELDSYNC_LOG_LEVEL) must be debug, info, warn or error")
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

// instance is one running server with everything it owns.
type instance struct {
	store engine.Store
	eng   *engine.Engine // the system tests write fixtures through it as the server would
	srv   *server.Server
	ln    net.Listener
	keys  *jwtauth.Keys
	log   *slog.Logger
	push  *pushRunner    // push.go: stopped before the store closes
	hooks *webhookRunner // webhooks.go: stopped before the store closes
	// stopStream ends the live streams (before the store closes).
	stopStream func()
	// stopWorkflow ends the overdue sweep (before the store closes).
	stopWorkflow func()
	// stopRetention ends the history compaction (retention.go).
	stopRetention func()
	// stopAttachments ends the attachment sweep (attachments.go).
	stopAttachments func()
}

// start wires the adapters together and binds the listener; Serve is the
// caller's to run. This is the only place that knows every package.
func start(ctx context.Context, c serveConfig, log *slog.Logger) (*instance, error) {
	sch, err := schemas.Load()
	if err != nil {
		return nil, err
	}
	keys, err := jwtauth.LoadOrCreate(c.Data)
	if err != nil {
		return nil, err
	}
	var store engine.Store
	var dir identity.Store
	if c.MongoURI != "" {
		// The URI carries credentials: it is never logged.
		var ms *mongodb.Store
		ms, err = mongodb.Open(ctx, c.MongoURI, c.MongoDatabase, mongodb.Options{Timeout: c.MongoTimeout})
		store, dir = ms, ms
	} else {
		var ss *sqlite.Store
		ss, err = sqlite.Open(ctx, filepath.Join(c.Data, "fieldsync.db"), sqlite.Options{Synchronous: c.Synchronous})
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
		FailureWindow: c.FailureWindow})
	if err != nil {
		store.Close()
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The engine's store calls are timed (fieldsync_store_call_*).
	eng, err := engine.New(ctx, engine.Config{Store: storemetrics.Wrap(store, reg), Schemas: sch, Directory: ids, Limits: c.Limits,
		Visits: c.Visits.rules()})
	if err != nil {
		store.Close()
		return nil, err
	}
	// The library adapters speak WatermelonDB's and RxDB's wire formats
	// over the engine's push and pull (adapters.go).
	wmdb, rx, err := newAdapters(eng, sch.JSON(), store)
	if err != nil {
		store.Close()
		return nil, err
	}
	// Workflows: the engine's after-push hook, the follow-up API, the
	// overdue sweep (workflow.go).
	wf, stopWorkflow, err := startWorkflow(ctx, c, eng, store, ids, log)
	if err != nil {
		store.Close()
		return nil, err
	}
	// The live stream: GET /v1/sync/stream (stream.go).
	streamCfg, stopStream := startStream(c.Stream, store, eng, log)
	// Push notifications: the outbox tailer and dispatcher (push.go).
	pusher, err := startPush(c.Push, store, dir, reg, log)
	if err != nil {
		store.Close()
		return nil, err
	}
	files, stopAttachments, err := startAttachments(ctx, c.Attachments, c.Data, eng, store, log) // attachments.go
	if err != nil {
		pusher.stop()
		stopStream()
		stopWorkflow()
		store.Close()
		return nil, err
	}
	// The web console at /console/ (console.go).
	kpis := kpi.NewService(store, ids, nil)
	cons, err := startConsole(ctx, c.Console, store, ids, wf, kpis, eng, eng, pusher.devices, files, c.Visits.rules().RadiusM, log)
	if err != nil {
		stopAttachments()
		pusher.stop()
		stopStream()
		stopWorkflow()
		store.Close()
		return nil, err
	}
	hooks := startWebhooks(c.Webhooks, store, log) // webhooks.go
	var hooksAPI server.Webhooks
	if hooks != nil {
		hooksAPI = hooks.api()
	}
	var wfAPI server.Workflow
	if wf != nil {
		wfAPI = wf
	}
	srv := server.New(server.Config{
		Sync: eng, Auth: keys, Store: store, Schemas: sch.JSON(), OpenAPI: openapi.JSON(), Logger: log, Registry: reg,
		Version: version, MaxBody: c.MaxBody, RateLimit: c.RateLimit, Stream: streamCfg, CORSOrigins: c.CORSOrigins,
		Accounts: ids, Sessions: keys, Admin: ids, Devices: pusher.devices, Directory: ids,
		Keys: ids, ServiceAccounts: ids, // API keys of service accounts
		Webhooks: hooksAPI,
		KPIs:     kpis, // GET /v1/kpis
		// The admin's document endpoints write through the engine (Upsert,
		// Limits) and read the store (Get).
		Docs: struct {
			*engine.Engine
			engine.Store
		}{eng, store},
		Workflow:     wfAPI,
		Attachments:  files,
		Console:      cons,
		WatermelonDB: wmdb,
		RxDB:         rx,
	})
	stopRetention, err := startRetention(ctx, c.Retention, store, dir, log)
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
	return &instance{store: store, eng: eng, srv: srv, ln: ln, keys: keys, log: log, stopWorkflow: stopWorkflow, stopStream: stopStream,
		push: pusher, hooks: hooks, stopRetention: stopRetention, stopAttachments: stopAttachments}, nil
}

// serveUntil serves until ctx is done, then shuts down in order: stop
// accepting, let in-flight requests finish within the timeout, close the
// store.
func (in *instance) serveUntil(ctx context.Context, timeout time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- in.srv.Serve(in.ln) }()
	in.log.Info("listening", "addr", in.ln.Addr().String(), "version", versionString())
	var serveErr error
	select {
	case <-ctx.Done():
		in.log.Info("shutting down", "timeout", timeout.String())
	case serveErr = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	shutErr := in.srv.Shutdown(sctx)
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
	closeErr := in.store.Close()
	in.log.Info("stopped")
	return errors.Join(serveErr, shutErr, closeErr)
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseServe(args, stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(c.LogFormat, c.LogLevel, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := c.Demo.load(ctx, c, stdout, stderr); err != nil {
		return err
	}
	in, err := start(ctx, c, log)
	if err != nil {
		return err
	}
	in.banner(ctx, c, stdout)
	return in.serveUntil(ctx, c.ShutdownTimeout)
}
