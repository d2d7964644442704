package server

import (
	"context"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldsync/fieldsync/client"
	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// Users is the user management the admin API calls. Every method takes the
// organisation from the caller's token: a user of another organisation is
// not found.
type Users interface {
	AddUser(ctx context.Context, org string, nu identity.NewUser) (*identity.User, error)
	UpdateUser(ctx context.Context, org, id string, ch identity.UserChange) (*identity.User, error)
	User(ctx context.Context, org, id string) (*identity.User, error)
	ListUsers(ctx context.Context, org string, f identity.UserFilter) ([]*identity.User, error)
	DisableUser(ctx context.Context, org, id string) (*identity.User, error)
	EnableUser(ctx context.Context, org, id string) (*identity.User, error)
	Sessions(ctx context.Context, org, user string) ([]*identity.Session, error)
	RevokeDevice(ctx context.Context, org, user, device string) (int, error)
}

// Teams is the team management the admin API calls.
type Teams interface {
	AddTeam(ctx context.Context, org, id, name string) (*identity.Team, error)
	RenameTeam(ctx context.Context, org, id, name string) (*identity.Team, error)
	ListTeams(ctx context.Context, org string) ([]*identity.Team, error)
}

// Orgs reads and changes the caller's organisation.
type Orgs interface {
	Org(ctx context.Context, id string) (*identity.Org, error)
	PutOrg(ctx context.Context, id string, ch identity.OrgChange) (*identity.Org, error)
}

// Admin is everything the admin API needs.
type Admin interface {
	Users
	Teams
	Orgs
}

// adminRoutes registers the admin API. Every handler works in the caller's
// organisation, taken from the token, never from the path or the body.
func (s *Server) adminRoutes(r fiber.Router) {
	r.Get("/users", s.listUsers)
	r.Post("/users", s.addUser)
	r.Get("/users/:id", s.getUser)
	r.Patch("/users/:id", s.patchUser)
	r.Post("/users/:id/disable", s.setDisabled(true))
	r.Post("/users/:id/enable", s.setDisabled(false))
	r.Get("/users/:id/sessions", s.userSessions)
	r.Delete("/users/:id/devices/:device", s.revokeDevice)
	r.Get("/teams", s.listTeams)
	r.Post("/teams", s.addTeam)
	r.Patch("/teams/:id", s.renameTeam)
	r.Get("/org", s.getOrg)
	r.Put("/org", s.putOrg)
}

// requireAdmin lets through callers whose token holds the admin role. A
// token from a sign-in is also checked against the directory, so an admin
// who was disabled, demoted or signed out loses the admin API at once, not
// when the token expires. Operator tokens (no session) carry their roles.
func (s *Server) requireAdmin(c *fiber.Ctx) error {
	a := actorOf(c)
	forbidden := engine.Errorf(engine.KindForbidden, engine.CodeForbidden, "", "the admin API needs the admin role")
	if !a.HasRole(identity.RoleAdmin) {
		return forbidden
	}
	if s.cfg.Sessions == nil || s.cfg.Accounts == nil {
		return c.Next()
	}
	tok, _ := bearerToken(c.Get(fiber.HeaderAuthorization))
	sid, _, err := s.cfg.Sessions.SessionOf(tok)
	if err != nil {
		return err
	}
	if sid != "" {
		ctx, cancel := s.callCtx()
		defer cancel()
		u, err := s.cfg.Accounts.Active(ctx, a.Org, a.User, sid)
		if err != nil {
			return err
		}
		if !u.HasRole(identity.RoleAdmin) {
			return forbidden
		}
	}
	return c.Next()
}

// The admin API speaks the Go client's wire types (client.User ...).
type userJSON = client.User

func toUserJSON(u *identity.User) userJSON {
	return userJSON{ID: u.ID, Email: u.Email, Name: u.Name, Roles: nonNil(u.Roles), Teams: nonNil(u.Teams),
		Leads: nonNil(u.Leads), Disabled: u.Disabled, HasPassword: u.PasswordHash != "", Version: u.Version,
		Created: u.Created.UTC(), Updated: u.Updated.UTC()}
}

// param copies a path parameter out of Fiber's reused buffers.
func param(c *fiber.Ctx, name string) string { return strings.Clone(c.Params(name)) }

func (s *Server) callCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.cfg.CallTimeout)
}

func (s *Server) listUsers(c *fiber.Ctx) error {
	f := identity.UserFilter{Team: strings.Clone(c.Query("team")), Leads: strings.Clone(c.Query("leads")),
		Role: strings.Clone(c.Query("role")), After: strings.Clone(c.Query("after")), Limit: 100}
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return engine.Errorf(engine.KindInvalid, engine.CodeLimitOutOfRange, "/limit", "limit must be 1 to 1000")
		}
		f.Limit = n
	}
	ctx, cancel := s.callCtx()
	defer cancel()
	us, err := s.cfg.Admin.ListUsers(ctx, actorOf(c).Org, f)
	if err != nil {
		return err
	}
	out := struct {
		Users []userJSON `json:"users"`
		Next  string     `json:"next,omitempty"` // pass as ?after= for the next page
	}{Users: []userJSON{}}
	for _, u := range us {
		out.Users = append(out.Users, toUserJSON(u))
	}
	if len(us) == f.Limit {
		out.Next = us[len(us)-1].ID
	}
	return c.JSON(out)
}

type addUserRequest = client.NewUser

func (s *Server) addUser(c *fiber.Ctx) error {
	var req addUserRequest
	if err := decodeStrict(c.Body(), &req); err != nil {
		return err
	}
	ctx, cancel := s.callCtx()
	defer cancel()
	u, err := s.cfg.Admin.AddUser(ctx, actorOf(c).Org, identity.NewUser(req))
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(toUserJSON(u))
}

func (s *Server) getUser(c *fiber.Ctx) error {
	ctx, cancel := s.callCtx()
	defer cancel()
	u, err := s.cfg.Admin.User(ctx, actorOf(c).Org, param(c, "id"))
	if err != nil {
		return err
	}
	return c.JSON(toUserJSON(u))
}

type patchUserRequest = client.UserChange

func (s *Server) patchUser(c *fiber.Ctx) error {
	var req patchUserRequest
	if err := decodeStrict(c.Body(), &req); err != nil {
		return err
	}
	ctx, cancel := s.callCtx()
	defer cancel()
	u, err := s.cfg.Admin.UpdateUser(ctx, actorOf(c).Org, param(c, "id"), identity.UserChange(req))
	if err != nil {
		return err
	}
	return c.JSON(toUserJSON(u))
}

func (s *Server) setDisabled(disabled bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ctx, cancel := s.callCtx()
		defer cancel()
		set := s.cfg.Admin.EnableUser
		if disabled {
			set = s.cfg.Admin.DisableUser
		}
		u, err := set(ctx, actorOf(c).Org, param(c, "id"))
		if err != nil {
			return err
		}
		return c.JSON(toUserJSON(u))
	}
}

type sessionJSON = client.Session

func (s *Server) userSessions(c *fiber.Ctx) error {
	ctx, cancel := s.callCtx()
	defer cancel()
	list, err := s.cfg.Admin.Sessions(ctx, actorOf(c).Org, param(c, "id"))
	if err != nil {
		return err
	}
	out := struct {
		Sessions []sessionJSON `json:"sessions"`
	}{Sessions: []sessionJSON{}}
	now := s.cfg.Now()
	for _, ss := range list {
		j := sessionJSON{ID: ss.ID, Device: ss.Device, Live: ss.Live(now), Created: ss.Created.UTC(),
			RotatedAt: ss.RotatedAt.UTC(), ExpiresAt: ss.ExpiresAt.UTC(), RevokeCause: ss.RevokeCause}
		if !ss.RevokedAt.IsZero() {
			t := ss.RevokedAt.UTC()
			j.RevokedAt = &t
		}
		out.Sessions = append(out.Sessions, j)
	}
	return c.JSON(out)
}

func (s *Server) revokeDevice(c *fiber.Ctx) error {
	ctx, cancel := s.callCtx()
	defer cancel()
	org, user, device := actorOf(c).Org, param(c, "id"), param(c, "device")
	n, err := s.cfg.Admin.RevokeDevice(ctx, org, user, device)
	if err != nil {
		return err
	}
	s.forgetDevice(org, user, device)
	return c.JSON(fiber.Map{"revoked": n})
}

type teamJSON = client.Team

func toTeamJSON(t *identity.Team) teamJSON {
	return teamJSON{ID: t.ID, Name: t.Name, Created: t.Created.UTC()}
}

func (s *Server) listTeams(c *fiber.Ctx) error {
	ctx, cancel := s.callCtx()
	defer cancel()
	ts, err := s.cfg.Admin.ListTeams(ctx, actorOf(c).Org)
	if err != nil {
		return err
	}
	out := struct {
		Teams []teamJSON `json:"teams"`
	}{Teams: []teamJSON{}}
	for _, t := range ts {
		out.Teams = append(out.Teams, toTeamJSON(t))
	}
	return c.JSON(out)
}

type teamRequest struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func (s *Server) addTeam(c *fiber.Ctx) error {
	var req teamRequest
	if err := decodeStrict(c.Body(), &req); err != nil {
		return err
	}
	ctx, cancel := s.callCtx()
	defer cancel()
	t, err := s.cfg.Admin.AddTeam(ctx, actorOf(c).Org, req.ID, req.Name)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(toTeamJSON(t))
}

type renameTeamRequest struct {
	Name string `json:"name"`
}

func (s *Server) renameTeam(c *fiber.Ctx) error {
	var req renameTeamRequest
	if err := decodeStrict(c.Body(), &req); err != nil {
		return err
	}
	ctx, cancel := s.callCtx()
	defer cancel()
	t, err := s.cfg.Admin.RenameTeam(ctx, actorOf(c).Org, param(c, "id"), req.Name)
	if err != nil {
		return err
	}
	return c.JSON(toTeamJSON(t))
}

type orgJSON = client.Org

func toOrgJSON(o *identity.Org) orgJSON {
	all := append([]string{identity.RoleRep, identity.RoleManager, identity.RoleAdmin}, identity.DefaultBackOfficeRoles...)
	all = append(all, o.Roles...)
	return orgJSON{ID: o.ID, Name: o.Name, TimeZone: o.TimeZone, Roles: nonNil(o.Roles), AllRoles: all, Created: o.Created.UTC()}
}

func (s *Server) getOrg(c *fiber.Ctx) error {
	ctx, cancel := s.callCtx()
	defer cancel()
	o, err := s.cfg.Admin.Org(ctx, actorOf(c).Org)
	if err != nil {
		return err
	}
	return c.JSON(toOrgJSON(o))
}

type putOrgRequest = client.OrgChange

func (s *Server) putOrg(c *fiber.Ctx) error {
	var req putOrgRequest
	if err := decodeStrict(c.Body(), &req); err != nil {
		return err
	}
	ctx, cancel := s.callCtx()
	defer cancel()
	o, err := s.cfg.Admin.PutOrg(ctx, actorOf(c).Org, identity.OrgChange(req))
	if err != nil {
		return err
	}
	return c.JSON(toOrgJSON(o))
}
