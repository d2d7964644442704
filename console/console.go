// Package console is fieldsync's web console for the back office, managers
// and admins: server-rendered pages (html/template) with one small embedded
// script, served by the same binary under /console/.
//
// It owns only the pages: who may sign in and what a user may see or do is
// decided by the same services the API calls (identity for sign-in and
// sessions, workflow for queues and follow-ups), reached through the small
// interfaces declared here. It must not import a store, the JWT library or
// the server package; templates never touch a store.
package console

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/kpi"
	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/workflow"
)

// Accounts is the part of the identity service the console signs in with:
// the same password check, rate limits and sessions as POST /v1/auth/login.
type Accounts interface {
	Login(ctx context.Context, email, password, device, remoteAddr string) (*identity.Grant, error)
	Logout(ctx context.Context, org, user, session string) error
	// Active returns the user of a live session as the directory has it now;
	// a revoked or expired session, or a disabled user, is an error.
	Active(ctx context.Context, org, user, session string) (*identity.User, error)
	ListUsers(ctx context.Context, org string, f identity.UserFilter) ([]*identity.User, error)
	ListTeams(ctx context.Context, org string) ([]*identity.Team, error)
	Org(ctx context.Context, id string) (*identity.Org, error)
}

// Workflow is the part of the workflow service the back-office pages call;
// every method takes the caller and applies the API's authorization.
type Workflow interface {
	List(ctx context.Context, caller engine.Actor, q workflow.ListQuery) (workflow.Page, error)
	Act(ctx context.Context, caller engine.Actor, id string, act workflow.Action) (*workflow.FollowUp, error)
	FollowUp(ctx context.Context, caller engine.Actor, id string) (*workflow.Detail, error)
	Order(ctx context.Context, caller engine.Actor, id string) (*workflow.OrderDetail, error)
	Customers(ctx context.Context, caller engine.Actor, ids []string) (map[string]json.RawMessage, error)
	AllCustomers(ctx context.Context, caller engine.Actor, q, after string, limit int) (workflow.CustomerList, error)
	Matrix(ctx context.Context, org string) (raw []byte, version string, err error)
	PutMatrix(ctx context.Context, caller engine.Actor, raw []byte) (version string, err error)
}

// Assigner sets a customer's reps by the one rule of an assignment, the
// admin API's (engine.Engine.Assign).
type Assigner interface {
	Assign(ctx context.Context, actor engine.Actor, source, customer string, reps []string, ptr string) (int64, bool, error)
}

// PushDevices is the push device registry (package push, through the
// server's Devices).
type PushDevices interface {
	DeleteDevice(ctx context.Context, org, user, id string) (bool, error)
}

// Admin is the user administration of the identity service, as the admin
// API calls it (the organisation is always the signed-in admin's).
type Admin interface {
	User(ctx context.Context, org, id string) (*identity.User, error)
	AddUser(ctx context.Context, org string, nu identity.NewUser) (*identity.User, error)
	UpdateUser(ctx context.Context, org, id string, ch identity.UserChange) (*identity.User, error)
	DisableUser(ctx context.Context, org, id string) (*identity.User, error)
	EnableUser(ctx context.Context, org, id string) (*identity.User, error)
	Sessions(ctx context.Context, org, user string) ([]*identity.Session, error)
	RevokeDevice(ctx context.Context, org, user, device string) (int, error)
	AddTeam(ctx context.Context, org, id, name string) (*identity.Team, error)
	RenameTeam(ctx context.Context, org, id, name string) (*identity.Team, error)
	PutOrg(ctx context.Context, id string, ch identity.OrgChange) (*identity.Org, error)
}

// KPIs is the KPI service (package kpi): it decides which reps a manager
// may see, as GET /v1/kpis does.
type KPIs interface {
	Report(ctx context.Context, actor engine.Actor, q kpi.Query) (*kpi.Report, error)
	Visits(ctx context.Context, actor engine.Actor, q kpi.Query) ([]kpi.Visit, error)
	Visit(ctx context.Context, actor engine.Actor, id string) (*kpi.Visit, error)
}

// Syncer is the sync engine's push: a manager's review is written as their
// phone would write it, under the same write rules.
type Syncer interface {
	Push(ctx context.Context, actor engine.Actor, req engine.PushRequest) ([]engine.Outcome, error)
}

// Config wires a Console.
type Config struct {
	Accounts Accounts
	Workflow Workflow
	Admin    Admin // nil: no admin pages
	// Assign sets customers' reps on the admin's customer pages (nil: no
	// customer pages).
	Assign Assigner
	// PushDevices forgets a revoked device's push registration, as the
	// admin API does (nil: no push).
	PushDevices PushDevices
	// ServiceAccounts and Webhooks serve the admin's integration pages
	// (nil: not registered).
	ServiceAccounts ServiceAccounts
	Webhooks        Webhooks
	// KPIs and Sync serve the managers' pages (KPIs, visit review, the map
	// of a rep's day); nil: not registered.
	KPIs KPIs
	Sync Syncer
	// Files shows the photos and PDFs on visits and orders (nil: none).
	Files Files
	// VisitRadius is the check-in radius around a customer's site, in
	// metres, drawn on the map (the engine's --visit-radius).
	VisitRadius float64
	// Tiles is the URL of the map tiles under a rep's day, with {z}, {x}
	// and {y} (OpenStreetMap's scheme: https://tile.openstreetmap.org/{z}/{x}/{y}.png,
	// or a tile server of your own); "" draws the map on a plain
	// background. Its origin is the only one the pages' CSP lets images
	// come from besides the console's.
	Tiles string
	// TileAttribution is shown under the map (tile servers require one).
	TileAttribution string
	// Key signs session cookies and CSRF tokens (at least 32 bytes); every
	// instance behind one load balancer must share it.
	Key []byte
	// SessionTTL is how long a console sign-in lasts at most (the identity
	// session's own lifetime and revocation apply as well).
	SessionTTL time.Duration
	// SecureCookie marks the cookies Secure even when the request did not
	// arrive over TLS (TLS ends at a proxy).
	SecureCookie bool
	// PollInterval is how often an open queue page refreshes its list while
	// its live stream (/console/live) is not open; ten times that while it is.
	PollInterval time.Duration
	CallTimeout  time.Duration
	Logger       *slog.Logger
	Now          func() time.Time
}

// Defaults of Config.
const (
	DefaultSessionTTL   = 12 * time.Hour
	DefaultPollInterval = 3 * time.Second
)

// Console serves the pages.
type Console struct {
	cfg   Config
	pages map[string]*template.Template
	log   *slog.Logger

	mu    sync.Mutex
	orgs  map[string]*orgInfo // names and time zone per organisation, briefly cached
	files fs.FS
	csp   string // csp, with the tile server's origin when there is one
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// New parses the templates and returns the console.
func New(cfg Config) (*Console, error) {
	if cfg.Accounts == nil || cfg.Workflow == nil {
		return nil, errors.New("console: Accounts and Workflow are required")
	}
	if len(cfg.Key) < 32 {
		return nil, errors.New("console: the cookie key must be at least 32 bytes")
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
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
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	files, err := fs.Sub(assetFS, "assets")
	if err != nil {
		return nil, err
	}
	policy := csp
	if cfg.Tiles != "" {
		origin, err := tileOrigin(cfg.Tiles)
		if err != nil {
			return nil, err
		}
		policy = strings.Replace(csp, "img-src 'self' data:", "img-src 'self' data: "+origin, 1)
	}
	return &Console{cfg: cfg, pages: pages, log: cfg.Logger, orgs: map[string]*orgInfo{}, files: files, csp: policy}, nil
}

// Register adds the console's routes to app: /console/... and / leading
// there.
func (cs *Console) Register(app fiber.Router) {
	app.Get("/", func(c *fiber.Ctx) error { return c.Redirect("/console/", fiber.StatusFound) })
	g := app.Group("/console", cs.headers)
	// signedIn pages need a live session; managers' pages a manager or an
	// admin, admin pages an admin (others get the not-found page).
	signedIn := func(h fiber.Handler) fiber.Handler { return cs.page(cs.withUser(h)) }
	managers := func(h fiber.Handler) fiber.Handler {
		return signedIn(cs.only(h, identity.RoleManager, identity.RoleAdmin))
	}
	admins := func(h fiber.Handler) fiber.Handler { return signedIn(cs.only(h, identity.RoleAdmin)) }
	g.Get("/assets/:name", cs.asset)
	g.Get("/sign-in", cs.page(cs.signInPage))
	g.Post("/sign-in", cs.page(cs.signIn))
	g.Post("/sign-out", signedIn(cs.signOut))
	g.Get("/", signedIn(cs.home))
	g.Get("/queue", signedIn(cs.queuePage))
	g.Get("/queue/live", signedIn(cs.queueFragment))
	g.Get("/followups/:id", signedIn(cs.followUpPage))
	g.Post("/followups/:id/:action", signedIn(cs.act))
	g.Get("/orders/:id", signedIn(cs.orderPage))
	if cs.cfg.Files != nil {
		g.Get("/attachments/:id/thumbnail", signedIn(cs.thumbnail)) // attachments.go
		g.Get("/attachments/:id/content", signedIn(cs.original))
	}
	if cs.cfg.KPIs != nil && cs.cfg.Sync != nil {
		g.Get("/kpis", managers(cs.kpiPage))
		g.Get("/visits", managers(cs.visitsPage))
		g.Get("/visits/:id", managers(cs.visitPage))
		g.Post("/visits/review", managers(cs.review))
		g.Get("/map", managers(cs.mapPage))
	}
	if cs.cfg.Admin != nil {
		g.Get("/admin/users", admins(cs.usersPage))
		g.Post("/admin/users", admins(cs.addUser))
		g.Get("/admin/users/:id", admins(cs.userPage))
		g.Post("/admin/users/:id/:action", admins(cs.userAction))
		g.Get("/admin/teams", admins(cs.teamsPage))
		g.Post("/admin/teams", admins(cs.teamAction))
		g.Post("/admin/teams/:id", admins(cs.teamAction))
		g.Get("/admin/org", admins(cs.orgPage))
		g.Post("/admin/org", admins(cs.putOrg))
		g.Get("/admin/matrix", admins(cs.matrixPage))
		if cs.cfg.Assign != nil {
			g.Get("/admin/customers", admins(cs.customersPage))
			g.Get("/admin/customers/:id", admins(cs.customerPage))
			g.Post("/admin/customers/:id", admins(cs.assign))
		}
		g.Post("/admin/matrix", admins(cs.putMatrix))
	}
	if cs.cfg.ServiceAccounts != nil {
		g.Get("/admin/service-accounts", admins(cs.accountsPage))
		g.Post("/admin/service-accounts", admins(cs.addAccount))
		g.Get("/admin/service-accounts/:id", admins(cs.accountPage))
		g.Post("/admin/service-accounts/:id/:action", admins(cs.accountAction))
	}
	if cs.cfg.Webhooks != nil {
		g.Get("/admin/webhooks", admins(cs.webhooksPage))
		g.Post("/admin/webhooks", admins(cs.addWebhook))
		g.Get("/admin/webhooks/:id", admins(cs.webhookPage))
		g.Post("/admin/webhooks/:id/deliveries/:delivery/redeliver", admins(cs.redeliver))
		g.Post("/admin/webhooks/:id/:action", admins(cs.webhookAction))
	}
	g.Use(cs.page(func(c *fiber.Ctx) error { return errNotFound }))
}

// only lets h run for a user holding one of roles; anyone else gets the
// not-found page, as for a page that does not exist.
func (cs *Console) only(h fiber.Handler, roles ...string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if !slices.ContainsFunc(roles, userOf(c).HasRole) {
			return errNotFound
		}
		return h(c)
	}
}

// csp allows the console's own script and styles only: no inline script or
// style, no framing, forms post only here.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// headers sets the security headers of every console response. Pages carry
// personal data, so nothing but the assets may be stored by a cache.
func (cs *Console) headers(c *fiber.Ctx) error {
	c.Set("Content-Security-Policy", cs.csp)
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("X-Frame-Options", "DENY")
	c.Set("Referrer-Policy", "same-origin")
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Next()
}

func (cs *Console) asset(c *fiber.Ctx) error {
	name := c.Params("name")
	b, err := fs.ReadFile(cs.files, name)
	if err != nil || strings.Contains(name, "/") {
		return errNotFound
	}
	switch {
	case strings.HasSuffix(name, ".js"):
		c.Set(fiber.HeaderContentType, "text/javascript; charset=utf-8")
	case strings.HasSuffix(name, ".css"):
		c.Set(fiber.HeaderContentType, "text/css; charset=utf-8")
	default:
		return errNotFound
	}
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	return c.Send(b)
}

// errNotFound is the one answer for a missing id, another organisation's id
// and one the caller may not see.
var errNotFound = engine.Errorf(engine.KindNotFound, engine.CodeNotFound, "", "not found")

// page turns a handler's error into an HTML error page.
func (cs *Console) page(h fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		err := h(c)
		if err == nil {
			return nil
		}
		var e *engine.Error
		status, title, msg := http.StatusInternalServerError, "Something went wrong", "The server could not show this page. Try again in a moment."
		if errors.As(err, &e) {
			switch e.Kind {
			case engine.KindNotFound:
				status, title, msg = http.StatusNotFound, "Not found", "There is nothing here, or it is not yours to see."
			case engine.KindForbidden:
				status, title, msg = http.StatusForbidden, "Not allowed", e.Message
			case engine.KindInvalid, engine.KindConflict:
				status, title, msg = http.StatusUnprocessableEntity, "Not done", e.Message
			case engine.KindUnauthorized:
				return c.Redirect("/console/sign-in", fiber.StatusSeeOther)
			case engine.KindInternal:
			default:
				status, title, msg = http.StatusServiceUnavailable, "Try again", e.Message
			}
		}
		if status == http.StatusInternalServerError {
			cs.log.Error("console page", "path", c.Path(), "err", err)
		}
		return cs.render(c.Status(status), "error", view{Title: title, User: userOf(c), CSRF: csrfOf(c),
			Data: errorView{Title: title, Message: msg}})
	}
}

type errorView struct{ Title, Message string }

func (cs *Console) callCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), cs.cfg.CallTimeout)
}

// CheckTiles reports whether tmpl is a tile URL Config.Tiles accepts.
func CheckTiles(tmpl string) error {
	_, err := tileOrigin(tmpl)
	return err
}

// tileOrigin checks a tile URL template and returns its origin for the CSP.
func tileOrigin(tmpl string) (string, error) {
	for _, p := range []string{"{z}", "{x}", "{y}"} {
		if !strings.Contains(tmpl, p) {
			return "", fmt.Errorf("console: the tile URL %q lacks %s", tmpl, p)
		}
	}
	u, err := url.Parse(strings.NewReplacer("{z}", "0", "{x}", "0", "{y}", "0").Replace(tmpl))
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || strings.ContainsAny(u.Host, " ;'") {
		return "", fmt.Errorf("console: the tile URL %q is not an http(s) URL", tmpl)
	}
	return u.Scheme + "://" + u.Host, nil
}
