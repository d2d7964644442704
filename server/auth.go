package server

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// Accounts is the sign-in part of the identity service.
type Accounts interface {
	Login(ctx context.Context, email, password, device, remoteAddr string) (*identity.Grant, error)
	Refresh(ctx context.Context, refreshToken string) (*identity.Grant, error)
	Logout(ctx context.Context, org, user, session string) error
	User(ctx context.Context, org, id string) (*identity.User, error)
	// Active returns the user of a live session, as the directory has it now.
	Active(ctx context.Context, org, user, session string) (*identity.User, error)
}

// SessionReader tells which sign-in session and device an access token was
// minted for ("" for operator tokens).
type SessionReader interface {
	SessionOf(token string) (session, device string, err error)
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	DeviceID string `json:"device_id"`
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

// grantReply is the body of a sign-in or refresh reply.
type grantReply struct {
	AccessToken      string    `json:"access_token"`
	TokenType        string    `json:"token_type"`
	ExpiresIn        int       `json:"expires_in"` // seconds
	AccessExpiresAt  time.Time `json:"access_expires_at"`
	RefreshToken     string    `json:"refresh_token"`
	RefreshExpiresAt time.Time `json:"refresh_expires_at"`
	SessionID        string    `json:"session_id"`
	User             meReply   `json:"user"`
}

// meReply says who the caller is.
type meReply struct {
	Org   string   `json:"org"`
	ID    string   `json:"id"`
	Email string   `json:"email,omitempty"`
	Name  string   `json:"name,omitempty"`
	Roles []string `json:"roles"`
	Teams []string `json:"teams"`
	Leads []string `json:"leads"`
}

func me(u *identity.User) meReply {
	return meReply{Org: u.Org, ID: u.ID, Email: u.Email, Name: u.Name, Roles: nonNil(u.Roles), Teams: nonNil(u.Teams),
		Leads: nonNil(u.Leads)}
}

func nonNil(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}

func (s *Server) login(c *fiber.Ctx) error {
	var req loginRequest
	if err := decodeStrict(c.Body(), &req); err != nil {
		return err
	}
	for _, f := range []struct{ ptr, val string }{{"/email", req.Email}, {"/password", req.Password}, {"/device_id", req.DeviceID}} {
		if f.val == "" {
			return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, f.ptr, "%s is required", f.ptr[1:])
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.CallTimeout)
	defer cancel()
	g, err := s.cfg.Accounts.Login(ctx, req.Email, req.Password, req.DeviceID, strings.Clone(c.IP()))
	if err != nil {
		return withRetryAfter(c, err)
	}
	return c.JSON(s.grantReply(g))
}

func (s *Server) refresh(c *fiber.Ctx) error {
	var req refreshRequest
	if err := decodeStrict(c.Body(), &req); err != nil {
		return err
	}
	if req.RefreshToken == "" {
		return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/refresh_token", "refresh_token is required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.CallTimeout)
	defer cancel()
	g, err := s.cfg.Accounts.Refresh(ctx, req.RefreshToken)
	if err != nil {
		return err
	}
	return c.JSON(s.grantReply(g))
}

func (s *Server) grantReply(g *identity.Grant) grantReply {
	return grantReply{AccessToken: g.AccessToken, TokenType: "Bearer",
		ExpiresIn:       int(g.AccessTTL / time.Second),
		AccessExpiresAt: g.AccessExpires.UTC(), RefreshToken: g.RefreshToken, RefreshExpiresAt: g.RefreshExpires.UTC(),
		SessionID: g.Session, User: me(g.User)}
}

func (s *Server) logout(c *fiber.Ctx) error {
	tok, _ := bearerToken(c.Get(fiber.HeaderAuthorization))
	sid, device, err := s.cfg.Sessions.SessionOf(tok)
	if err != nil {
		return err
	}
	a := actorOf(c)
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.CallTimeout)
	defer cancel()
	if err := s.cfg.Accounts.Logout(ctx, a.Org, a.User, sid); err != nil {
		return err
	}
	s.forgetDevice(a.Org, a.User, device) // no pushes to a signed-out phone
	return c.SendStatus(fiber.StatusNoContent)
}

// whoami answers GET /v1/me from the directory; an operator token names a
// user the directory may not know, who is then described by the token.
func (s *Server) whoami(c *fiber.Ctx) error {
	a := actorOf(c)
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.CallTimeout)
	defer cancel()
	u, err := s.cfg.Accounts.User(ctx, a.Org, a.User)
	if engine.ErrorKind(err) == engine.KindNotFound {
		return c.JSON(me(&identity.User{Org: a.Org, ID: a.User, Roles: a.Roles}))
	} else if err != nil {
		return err
	}
	return c.JSON(me(u))
}

// withRetryAfter sets the Retry-After header of an error that says how long
// to wait.
func withRetryAfter(c *fiber.Ctx, err error) error {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int((ra.RetryAfter()+time.Second-1)/time.Second)))
	}
	return err
}

// decodeStrict decodes a JSON object into the struct v points to,
// rejecting fields v does not name (a typo in an admin request must not be
// silently ignored) with their pointer. json.Unmarshal copies what it
// keeps, so nothing refers to Fiber's reused body buffer afterwards.
func decodeStrict(body []byte, v any) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		var te *json.UnmarshalTypeError
		if err == nil || errors.As(err, &te) {
			return engine.Errorf(engine.KindInvalid, engine.CodeMalformedJSON, "", "the body must be a JSON object")
		}
		return malformed(err)
	}
	known := jsonNames(reflect.TypeOf(v).Elem())
	names := slices.Sorted(maps.Keys(fields))
	for _, f := range names {
		if !slices.Contains(known, f) {
			return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/"+f, "unknown field %q", f)
		}
	}
	if err := json.Unmarshal(body, v); err != nil {
		return malformed(err)
	}
	return nil
}

// jsonNames lists the JSON names of a struct's fields.
func jsonNames(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}
