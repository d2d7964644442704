// Package server is fieldsync's HTTP transport on Fiber v2: it authenticates
// the caller, decodes requests, calls the sync engine and encodes replies,
// and serves health, readiness, metrics and the public key set.
//
// It owns nothing but the HTTP mapping: rules live in package sync, storage
// in the store adapters. It depends on small interfaces declared here, so it
// never imports a store or the JWT library. The admin API's replies and
// requests are the Go client's wire types (package client), declared once.
package server

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/compress"
	"github.com/gofiber/fiber/v2/middleware/limiter"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/gofiber/fiber/v2/middleware/requestid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// Syncer is the part of the sync engine the server calls.
type Syncer interface {
	Push(ctx context.Context, actor engine.Actor, req engine.PushRequest) ([]engine.Outcome, error)
	Pull(ctx context.Context, actor engine.Actor, req engine.PullRequest) (engine.PullResult, error)
}

// Verifier authenticates bearer tokens and publishes the keys that sign them.
type Verifier interface {
	Verify(token string) (engine.Actor, error)
	JWKS() []byte
}

// Pinger reports whether the store can serve requests.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Config wires a Server.
type Config struct {
	Sync    Syncer
	Auth    Verifier
	Store   Pinger
	Schemas []byte // the GET /v1/schemas document
	OpenAPI []byte // the GET /v1/openapi.json document (package openapi); nil: not registered
	// CORSOrigins are the browser origins allowed to call the API
	// (cors.go); none by default.
	CORSOrigins []string
	Logger      *slog.Logger
	Registry    *prometheus.Registry // where the server registers its metrics
	Version     string
	MaxBody     int           // request body limit in bytes
	RateLimit   int           // sync requests per user per minute, per instance; 0 turns the limit off
	CallTimeout time.Duration // budget of one engine call; the client disconnecting does not cancel it
	Stream      StreamConfig  // the live stream (stream.go); nil Hub: not registered

	// Accounts and Sessions serve sign-in, Admin the admin API; the routes
	// of a nil one are not registered.
	Accounts Accounts
	Sessions SessionReader
	Admin    Admin
	// Docs serves the admin's customer assignment and document writes
	// (with Admin; nil: not registered).
	Docs Documents

	// Devices serves push devices, mutes and quiet hours (devices.go);
	// nil: not registered.
	Devices Devices

	// Directory is asked on every authenticated request whether the caller
	// is still enabled, so a disabled user is refused everywhere alike
	// (nil: tokens are trusted until they expire).
	Directory engine.Directory

	KPIs KPIs // GET /v1/kpis (kpis.go); nil: not registered

	// WatermelonDB serves /v1/adapters/watermelondb (adapters.go); nil:
	// not registered.
	WatermelonDB WatermelonDB
	// RxDB serves /v1/adapters/rxdb (adapters.go); nil: not registered.
	RxDB RxDB
	// Workflow serves the follow-up queues and the matrix (nil: not
	// registered).
	Workflow Workflow

	// Keys authenticates service accounts' API keys (serviceaccounts.go);
	// nil: only JWTs are accepted. ServiceAccounts serves their admin
	// routes (with Admin; nil: not registered).
	Keys            KeyVerifier
	ServiceAccounts ServiceAccounts
	// Webhooks serves the webhook subscriptions of the admin API
	// (webhooks.go; with Admin; nil: not registered).
	Webhooks Webhooks

	// Attachments serves files on documents (attachments.go); nil: not
	// registered.
	Attachments Attachments

	// Console serves the web console's pages (package console) and / (nil:
	// not registered).
	Console Console

	// Now is the clock of what the server itself stamps (a device's
	// registration, whether a session is live); nil: time.Now.
	Now func() time.Time
}

// Console registers the web console's routes.
type Console interface {
	Register(app fiber.Router)
}

// DefaultMaxBody is the documented default request body limit.
const DefaultMaxBody = 4 << 20

// Server is the HTTP server.
type Server struct {
	cfg     Config
	app     *fiber.App
	metrics *metrics
	log     *slog.Logger
	streams streamState // stream.go
	// listeners is the listener Serve wraps (conns.go), for Shutdown.
	listeners atomic.Pointer[trackedListener]
}

// New builds the server and its routes.
func New(cfg Config) *Server {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	s := &Server{cfg: cfg, log: cfg.Logger, metrics: newMetrics(cfg.Registry)}
	s.app = fiber.New(fiber.Config{
		AppName:               "fieldsync",
		BodyLimit:             cfg.MaxBody,
		ErrorHandler:          s.handleError,
		DisableStartupMessage: true,
		ReadTimeout:           60 * time.Second,
		WriteTimeout:          60 * time.Second,
		IdleTimeout:           120 * time.Second,
	})
	s.app.Use(requestid.New())
	s.app.Use(recover.New(recover.Config{EnableStackTrace: true, StackTraceHandler: func(c *fiber.Ctx, e any) {
		s.log.Error("panic", "request_id", requestID(c), "panic", e)
	}}))
	s.app.Use(s.observe)
	if len(cfg.CORSOrigins) > 0 {
		s.app.Use(corsHandler(cfg.CORSOrigins)) // cors.go
	}
	s.app.Use(compress.New(compress.Config{Level: compress.LevelBestSpeed, Next: uncompressed}))

	s.app.Get("/healthz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	s.app.Get("/readyz", s.ready)
	s.app.Get("/metrics", s.metrics.handler(cfg.Registry))
	s.app.Get("/.well-known/jwks.json", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		c.Set(fiber.HeaderCacheControl, "public, max-age=300")
		return c.Send(cfg.Auth.JWKS())
	})
	s.app.Get("/version", func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"version": cfg.Version, "protocol": engine.ProtocolVersion})
	})

	v1 := s.app.Group("/v1")
	v1.Get("/schemas", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(cfg.Schemas)
	})
	if cfg.OpenAPI != nil {
		v1.Get("/openapi.json", func(c *fiber.Ctx) error {
			c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
			return c.Send(cfg.OpenAPI)
		})
	}
	limit := s.rateLimit()
	v1.Post("/sync/push", s.authenticate, limit, s.push)
	v1.Get("/sync/pull", s.authenticate, limit, s.pull)
	s.streamRoutes(v1, limit)  // stream.go
	s.adapterRoutes(v1, limit) // adapters.go
	if cfg.Accounts != nil {
		v1.Post("/auth/login", s.login)
		v1.Post("/auth/refresh", s.refresh)
		v1.Post("/auth/logout", s.authenticate, s.logout)
		v1.Get("/me", s.authenticate, s.whoami)
	}
	if cfg.Workflow != nil {
		s.workflowRoutes(v1) // followups.go
	}
	if cfg.KPIs != nil {
		s.kpiRoutes(v1)
	}
	s.deviceRoutes(v1) // devices.go
	if cfg.Attachments != nil {
		s.attachmentRoutes(v1) // attachments.go
	}
	if cfg.Console != nil {
		s.consoleLiveRoute() // stream.go
		cfg.Console.Register(s.app)
	}
	if cfg.Admin != nil {
		admin := v1.Group("/admin", s.authenticate, s.requireAdmin)
		s.adminRoutes(admin)
		if cfg.Docs != nil {
			s.documentRoutes(admin)
		}
		if cfg.ServiceAccounts != nil {
			s.serviceAccountRoutes(admin) // serviceaccounts.go
		}
		if cfg.Webhooks != nil {
			s.webhookRoutes(admin) // webhooks.go
		}
	}
	return s
}

// App exposes the Fiber app, for tests that drive it with app.Test.
func (s *Server) App() *fiber.App { return s.app }

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	tl := newTrackedListener(ln)
	s.listeners.Store(tl)
	return s.app.Listener(tl)
}

// Shutdown stops accepting connections and waits up to the context's
// deadline for in-flight requests to finish.
func (s *Server) Shutdown(ctx context.Context) error {
	s.endStreams() // stream.go
	if tl := s.listeners.Load(); tl != nil {
		tl.endFresh() // conns.go
	}
	if dl, ok := ctx.Deadline(); ok {
		return s.app.ShutdownWithTimeout(time.Until(dl))
	}
	return s.app.ShutdownWithContext(ctx)
}

func (s *Server) ready(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.cfg.Store.Ping(ctx); err != nil {
		s.log.Warn("store not ready", "request_id", requestID(c), "err", err)
		return engine.Wrap(err, engine.KindUnavailable, engine.CodeUnavailable, "the store is not reachable")
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

// DefaultRateLimit is the documented default of Config.RateLimit: far above
// what a phone needs (a first sync of 50,000 documents in pages of 100 is 500
// requests) and low enough that one runaway device cannot starve the writer.
const DefaultRateLimit = 6000

// rateLimit limits sync requests per (organisation, user) over a sliding
// minute. The counters live in this instance: behind a load balancer each
// instance allows the limit.
func (s *Server) rateLimit() fiber.Handler {
	if s.cfg.RateLimit <= 0 {
		return func(c *fiber.Ctx) error { return c.Next() }
	}
	return limiter.New(limiter.Config{
		Max:        s.cfg.RateLimit,
		Expiration: time.Minute,
		KeyGenerator: func(c *fiber.Ctx) string {
			a := actorOf(c)
			return a.Org + "\x00" + a.User
		},
		LimiterMiddleware: limiter.SlidingWindow{},
		LimitReached: func(c *fiber.Ctx) error {
			return engine.Errorf(engine.KindRateLimited, engine.CodeRateLimited, "",
				"more than %d sync requests in a minute; retry after the Retry-After header's seconds", s.cfg.RateLimit)
		},
	})
}

// actorKey is where authenticate leaves the caller for the handlers.
const actorKey = "fieldsync.actor"

func (s *Server) authenticate(c *fiber.Ctx) error {
	h := c.Get(fiber.HeaderAuthorization)
	if h == "" {
		return engine.Errorf(engine.KindUnauthorized, engine.CodeUnauthenticated, "", "an Authorization: Bearer <token> header is required")
	}
	tok, ok := bearerToken(h)
	if !ok {
		return engine.Errorf(engine.KindUnauthorized, engine.CodeUnauthenticated, "", "the Authorization header must be \"Bearer <token>\"")
	}
	var actor engine.Actor
	var err error
	if isAPIKey(tok) && s.cfg.Keys != nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.CallTimeout)
		actor, err = s.cfg.Keys.VerifyKey(ctx, tok) // serviceaccounts.go
		cancel()
	} else {
		actor, err = s.cfg.Auth.Verify(tok)
	}
	if err != nil {
		return err
	}
	if s.cfg.Directory != nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.CallTimeout)
		m, ok, err := s.cfg.Directory.Member(ctx, actor.Org, actor.User)
		cancel()
		if err != nil {
			return err
		}
		if ok && m.Disabled {
			return engine.Errorf(engine.KindForbidden, engine.CodeUserDisabled, "", "this user is disabled")
		}
	}
	c.Locals(actorKey, actor)
	return c.Next()
}

func bearerToken(h string) (string, bool) {
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	return strings.TrimSpace(h[len(prefix):]), true
}

func actorOf(c *fiber.Ctx) engine.Actor {
	a, _ := c.Locals(actorKey).(engine.Actor)
	return a
}

func requestID(c *fiber.Ctx) string {
	id, _ := c.Locals(requestid.ConfigDefault.ContextKey).(string)
	return id
}
