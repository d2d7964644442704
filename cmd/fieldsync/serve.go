package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"syscall"

	"github.com/fieldsync/fieldsync/app"
	"github.com/fieldsync/fieldsync/console"
	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/server"
)

// serveConfig is everything serve reads from flags and the environment:
// what the app package wires, and whether to load the demo first.
type serveConfig struct {
	app.Config
	Demo demoServeFlags // --demo: load the demo organisation first (democmd.go)
}

func parseServe(args []string, stderr io.Writer) (serveConfig, error) {
	c := serveConfig{Config: app.Defaults()}
	c.Version = versionString()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { serveHelp(fs, stderr) }
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen address (env FIELDSYNC_ADDR)")
	fs.StringVar(&c.Data, "data", c.Data, "data directory: SQLite database and signing keys (env FIELDSYNC_DATA)")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: text or json (env FIELDSYNC_LOG_FORMAT)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn, error (env FIELDSYNC_LOG_LEVEL)")
	fs.IntVar(&c.MaxBody, "max-body", c.MaxBody, "request body limit in bytes (env FIELDSYNC_MAX_BODY)")
	fs.IntVar(&c.RateLimit, "rate-limit", c.RateLimit, "sync requests per user per minute on this instance, 0 for none (env FIELDSYNC_RATE_LIMIT)")
	fs.IntVar(&c.Limits.MaxMutations, "max-mutations", c.Limits.MaxMutations, "mutations per push (env FIELDSYNC_MAX_MUTATIONS)")
	fs.IntVar(&c.Limits.MaxDocBytes, "max-doc", c.Limits.MaxDocBytes, "document size limit in bytes (env FIELDSYNC_MAX_DOC)")
	fs.IntVar(&c.Limits.PageSize, "page-size", c.Limits.PageSize, "default pull page size (env FIELDSYNC_PAGE_SIZE)")
	fs.IntVar(&c.Limits.MaxPageSize, "max-page-size", c.Limits.MaxPageSize, "largest pull page a client may ask for (env FIELDSYNC_MAX_PAGE_SIZE)")
	fs.IntVar(&c.Limits.PageBytes, "page-bytes", c.Limits.PageBytes, "pull page byte budget (env FIELDSYNC_PAGE_BYTES)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long in-flight requests may take to finish on shutdown (env FIELDSYNC_SHUTDOWN_TIMEOUT)")
	fs.StringVar(&c.Synchronous, "sqlite-synchronous", c.Synchronous, "SQLite synchronous pragma; FULL makes every acknowledged push survive power loss (env FIELDSYNC_SQLITE_SYNCHRONOUS)")
	fs.StringVar(&c.MongoURI, "mongodb-uri", c.MongoURI, "MongoDB connection string; empty keeps the embedded SQLite store (env FIELDSYNC_MONGODB_URI)")
	fs.StringVar(&c.MongoDatabase, "mongodb-database", c.MongoDatabase, "MongoDB database name (env FIELDSYNC_MONGODB_DATABASE)")
	fs.DurationVar(&c.MongoTimeout, "mongodb-timeout", c.MongoTimeout, "how long one MongoDB command may take before the request gets 503 unavailable (env FIELDSYNC_MONGODB_TIMEOUT)")
	fs.BoolVar(&c.Workflows, "workflows", c.Workflows, "route submitted orders and follow-ups by the responsibility matrix; false serves plain sync (env FIELDSYNC_WORKFLOWS)")
	fs.DurationVar(&c.EscalationInterval, "escalation-interval", c.EscalationInterval, "how often overdue follow-ups are escalated, 0 for never on this instance (env FIELDSYNC_ESCALATION_INTERVAL)")
	fs.DurationVar(&c.AccessTTL, "access-ttl", c.AccessTTL, "lifetime of the access tokens sign-in issues (env FIELDSYNC_ACCESS_TTL)")
	fs.DurationVar(&c.SessionTTL, "session-ttl", c.SessionTTL, "lifetime of a device's sign-in session, from sign-in (env FIELDSYNC_SESSION_TTL)")
	fs.IntVar(&c.AccountFailures, "login-account-limit", c.AccountFailures, "failed sign-ins per email per --login-window on this instance, 0 for none (env FIELDSYNC_LOGIN_ACCOUNT_LIMIT)")
	fs.IntVar(&c.AddressFailures, "login-address-limit", c.AddressFailures, "failed sign-ins per client address per --login-window on this instance, 0 for none (env FIELDSYNC_LOGIN_ADDRESS_LIMIT)")
	fs.DurationVar(&c.FailureWindow, "login-window", c.FailureWindow, "sliding window of the sign-in failure limits (env FIELDSYNC_LOGIN_WINDOW)")
	h := c.Hash
	var mem, passes, threads int
	fs.IntVar(&mem, "password-memory", int(h.Memory), "argon2id memory of new password hashes, KiB (env FIELDSYNC_PASSWORD_MEMORY)")
	fs.IntVar(&passes, "password-time", int(h.Time), "argon2id passes of new password hashes (env FIELDSYNC_PASSWORD_TIME)")
	fs.IntVar(&threads, "password-threads", int(h.Threads), "argon2id lanes of new password hashes (env FIELDSYNC_PASSWORD_THREADS)")
	var cors string
	fs.StringVar(&cors, "cors-origins", "", "comma-separated browser origins (https://app.example.com) allowed to call the API; empty for none, * for any (env FIELDSYNC_CORS_ORIGINS)")
	registerStream(fs, &c.Stream) // serveflags.go
	registerVisits(fs, &c.Visits)
	registerPush(fs, &c.Push)
	registerWebhooks(fs, &c.Webhooks)
	registerRetention(fs, &c.Retention)
	registerConsole(fs, &c.Console)
	var attachmentTypes string
	registerAttachments(fs, &c.Attachments, &attachmentTypes)
	c.Demo.register(fs) // democmd.go
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
	if err := checkRetention(c.Retention); err != nil {
		return c, err
	}
	if err := checkAttachments(&c.Attachments, attachmentTypes, c.MaxBody); err != nil {
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
	in, err := app.Start(ctx, c.Config, log)
	if err != nil {
		return err
	}
	in.Banner(ctx, stdout)
	return in.ServeUntil(ctx, c.ShutdownTimeout)
}
