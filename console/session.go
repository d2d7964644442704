package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// Cookie names. The session cookie holds no secret of its own: it names an
// identity session and is signed with Config.Key, so it cannot be forged from
// a session id (which every access token carries).
const (
	sessionCookie = "fieldsync_console"
	loginCookie   = "fieldsync_console_login" // double-submit token of the sign-in form
	csrfField     = "_csrf"
)

// claims is what the session cookie says.
type claims struct {
	Org     string `json:"o"`
	User    string `json:"u"`
	Session string `json:"s"`
	Expires int64  `json:"e"` // unix seconds
}

func (cs *Console) mac(parts ...string) []byte {
	m := hmac.New(sha256.New, cs.cfg.Key)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

func (cs *Console) seal(cl claims) string {
	b, _ := json.Marshal(cl)
	body := base64.RawURLEncoding.EncodeToString(b)
	return body + "." + base64.RawURLEncoding.EncodeToString(cs.mac("session", body))
}

// open returns the claims of a cookie this console sealed; ok is false for
// a missing, malformed or forged one. Whether the session is still live is
// live's to say, so that an expired one can be told it ended.
func (cs *Console) open(v string) (claims, bool) {
	body, sig, ok := strings.Cut(v, ".")
	if !ok || len(v) > 1024 {
		return claims{}, false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, cs.mac("session", body)) {
		return claims{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	var cl claims
	if err != nil || json.Unmarshal(raw, &cl) != nil || cl.Session == "" {
		return claims{}, false
	}
	return cl, true
}

// live reports whether the session the claims name has not expired.
func (cs *Console) live(cl claims) bool { return cs.cfg.Now().Unix() < cl.Expires }

// csrfToken is the synchronizer token of a session: bound to it, so a token
// of another session (or none) fails, and checked in constant time.
func (cs *Console) csrfToken(session string) string {
	return base64.RawURLEncoding.EncodeToString(cs.mac("csrf", session))
}

func (cs *Console) csrfOK(c *fiber.Ctx, want string) bool {
	got := c.FormValue(csrfField)
	return got != "" && hmac.Equal([]byte(got), []byte(want))
}

func (cs *Console) secure(c *fiber.Ctx) bool { return cs.cfg.SecureCookie || c.Protocol() == "https" }

// setCookie sets a cookie that lasts until expires on the server's clock.
// A live cookie is sent with Max-Age (seconds from now), which browsers
// prefer to Expires, so a laptop whose clock is off keeps it exactly as
// long as the server does; a cleared one with an Expires long past.
func (cs *Console) setCookie(c *fiber.Ctx, name, value string, expires time.Time) {
	ck := &fiber.Cookie{Name: name, Value: value, Path: "/console", Expires: expires, HTTPOnly: true,
		Secure: cs.secure(c), SameSite: fiber.CookieSameSiteLaxMode}
	// Rounded up: the browser may hold the cookie a moment longer than the
	// server takes it (which then says the session ended), never shorter.
	if age := expires.Sub(cs.cfg.Now()); age > 0 {
		ck.MaxAge = int((age + time.Second - 1) / time.Second)
	}
	c.Cookie(ck)
}

func (cs *Console) clearCookie(c *fiber.Ctx, name string) {
	cs.setCookie(c, name, "", time.Unix(1, 0))
}

// Locals keys of a signed-in request.
const (
	userKey = "console.user"
	csrfKey = "console.csrf"
	sessKey = "console.session"
)

func userOf(c *fiber.Ctx) *identity.User {
	u, _ := c.Locals(userKey).(*identity.User)
	return u
}

func csrfOf(c *fiber.Ctx) string {
	s, _ := c.Locals(csrfKey).(string)
	return s
}

func actorOf(c *fiber.Ctx) engine.Actor {
	u := userOf(c)
	return engine.Actor{Org: u.Org, User: u.ID, Roles: u.Roles}
}

// consoleUser reports whether the console is for u: everyone but reps
// (who work on their phones).
func consoleUser(u *identity.User) bool {
	return slices.ContainsFunc(u.Roles, func(r string) bool { return r != identity.RoleRep })
}

// withUser lets h run for a signed-in console user: the session must be
// live and the user enabled as the directory says now (a disabled user's or
// a revoked session's next request ends here), and every POST must carry the
// session's CSRF token.
func (cs *Console) withUser(h fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		cl, ok := cs.open(c.Cookies(sessionCookie))
		if !ok {
			return cs.toSignIn(c, false)
		}
		if !cs.live(cl) {
			// A browser whose clock is behind the server's still sends it.
			cs.clearCookie(c, sessionCookie)
			return cs.toSignIn(c, true)
		}
		ctx, cancel := cs.callCtx()
		u, err := cs.cfg.Accounts.Active(ctx, cl.Org, cl.User, cl.Session)
		cancel()
		switch engine.ErrorKind(err) {
		case engine.KindUnauthorized, engine.KindForbidden:
			cs.clearCookie(c, sessionCookie)
			return cs.toSignIn(c, true)
		}
		if err != nil {
			return err
		}
		if !consoleUser(u) {
			cs.clearCookie(c, sessionCookie)
			return cs.refuseRep(c)
		}
		token := cs.csrfToken(cl.Session)
		c.Locals(userKey, u)
		c.Locals(csrfKey, token)
		c.Locals(sessKey, cl.Session)
		if c.Method() == fiber.MethodPost && !cs.csrfOK(c, token) {
			return cs.render(c.Status(fiber.StatusForbidden), "error", view{Title: "Not allowed", User: u, CSRF: token,
				Data: errorView{Title: "Not allowed", Message: "This form has expired or did not come from this console: nothing was changed. Reload the page and try again."}})
		}
		return h(c)
	}
}

// toSignIn sends a page request to the sign-in form (saying the session
// ended, when it did) and answers a live fragment 401, on which the page's
// script goes there.
func (cs *Console) toSignIn(c *fiber.Ctx, ended bool) error {
	if c.Get("X-Console-Fragment") != "" {
		return c.SendStatus(fiber.StatusUnauthorized)
	}
	if ended {
		return c.Redirect("/console/sign-in?ended=1", fiber.StatusSeeOther)
	}
	return c.Redirect("/console/sign-in", fiber.StatusSeeOther)
}

func (cs *Console) refuseRep(c *fiber.Ctx) error {
	return cs.render(c.Status(fiber.StatusForbidden), "error", view{Title: "The console is not for reps",
		Data: errorView{Title: "The console is not for reps",
			Message: "Reps work in the fieldsync app on their phone. The console is for the back office, managers and admins. Ask an administrator if you need another role."}})
}

type signInView struct {
	Email, Error, Token string
}

// sessionEnded is said on the sign-in page a revoked, expired or disabled
// session lands on.
const sessionEnded = "Your session has ended. Sign in again."

func (cs *Console) signInPage(c *fiber.Ctx) error {
	msg := ""
	if c.Query("ended") != "" {
		msg = sessionEnded
	}
	return cs.renderSignIn(c, "", msg)
}

// renderSignIn shows the form with a fresh double-submit token: the sign-in
// form has no session yet to bind a token to.
func (cs *Console) renderSignIn(c *fiber.Ctx, email, msg string) error {
	b := make([]byte, 16)
	rand.Read(b)
	tok := hex.EncodeToString(b)
	cs.setCookie(c, loginCookie, tok, cs.cfg.Now().Add(time.Hour))
	return cs.render(c, "signin", view{Title: "Sign in", Data: signInView{Email: email, Error: msg, Token: tok}})
}

func (cs *Console) signIn(c *fiber.Ctx) error {
	email, password := strings.TrimSpace(c.FormValue("email")), c.FormValue("password")
	want := c.Cookies(loginCookie)
	if want == "" || !hmac.Equal([]byte(c.FormValue(csrfField)), []byte(want)) {
		return cs.renderSignIn(c.Status(fiber.StatusForbidden), email, "The sign-in form expired. Try again.")
	}
	if email == "" || password == "" {
		return cs.renderSignIn(c.Status(fiber.StatusUnprocessableEntity), email, "Enter your email and password.")
	}
	b := make([]byte, 8)
	rand.Read(b)
	device := "console-" + hex.EncodeToString(b) // one identity session per browser sign-in
	ctx, cancel := cs.callCtx()
	defer cancel()
	g, err := cs.cfg.Accounts.Login(ctx, email, password, device, strings.Clone(c.IP()))
	if err != nil {
		var e *engine.Error
		if !errors.As(err, &e) || e.Kind == engine.KindInternal {
			return err
		}
		var ra interface{ RetryAfter() time.Duration }
		if errors.As(err, &ra) {
			c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int((ra.RetryAfter()+time.Second-1)/time.Second)))
		}
		status := fiber.StatusUnauthorized
		if e.Kind == engine.KindRateLimited {
			status = fiber.StatusTooManyRequests
		} else if e.Kind == engine.KindForbidden {
			status = fiber.StatusForbidden
		}
		return cs.renderSignIn(c.Status(status), email, e.Message)
	}
	if !consoleUser(g.User) {
		// Not a console user: the session just opened ends at once.
		if err := cs.cfg.Accounts.Logout(ctx, g.User.Org, g.User.ID, g.Session); err != nil {
			return err
		}
		return cs.refuseRep(c)
	}
	exp := cs.cfg.Now().Add(cs.cfg.SessionTTL)
	if g.RefreshExpires.Before(exp) {
		exp = g.RefreshExpires
	}
	cs.clearCookie(c, loginCookie)
	cs.setCookie(c, sessionCookie, cs.seal(claims{Org: g.User.Org, User: g.User.ID, Session: g.Session, Expires: exp.Unix()}), exp)
	return c.Redirect("/console/", fiber.StatusSeeOther)
}

func (cs *Console) signOut(c *fiber.Ctx) error {
	u := userOf(c)
	ctx, cancel := cs.callCtx()
	defer cancel()
	if err := cs.cfg.Accounts.Logout(ctx, u.Org, u.ID, c.Locals(sessKey).(string)); err != nil {
		return err
	}
	cs.clearCookie(c, sessionCookie)
	return c.Redirect("/console/sign-in", fiber.StatusSeeOther)
}

// home sends a user to the first page their roles have.
func (cs *Console) home(c *fiber.Ctx) error {
	roles := cs.queueRolesOf(c)
	if len(roles) > 0 {
		return c.Redirect("/console/queue?role="+roles[0], fiber.StatusSeeOther)
	}
	return cs.render(c, "error", view{Title: "Console", User: userOf(c), CSRF: csrfOf(c),
		Data: errorView{Title: "Nothing to work yet", Message: "You hold no role with a queue."}})
}

// LiveActor authenticates a console page's live stream (GET /console/live,
// served by package server with the API's stream): the session cookie
// as every page checks it. check re-checks the session and the user while
// the stream is open (session expiry, sign-out, revocation, a disabled
// user), so the stream ends with the session; the page's next fragment
// fetch then goes to sign-in. A request without a live console session is
// answered 401 *engine.Error, as the API answers a bad token.
func (cs *Console) LiveActor(c *fiber.Ctx) (engine.Actor, func(ctx context.Context) error, error) {
	unauth := engine.Errorf(engine.KindUnauthorized, engine.CodeUnauthenticated, "", "no console session; sign in")
	cl, ok := cs.open(c.Cookies(sessionCookie))
	if !ok {
		return engine.Actor{}, nil, unauth
	}
	check := func(ctx context.Context) (*identity.User, error) {
		if cs.cfg.Now().Unix() >= cl.Expires {
			return nil, unauth
		}
		u, err := cs.cfg.Accounts.Active(ctx, cl.Org, cl.User, cl.Session)
		if err != nil {
			return nil, err
		}
		if !consoleUser(u) {
			return nil, engine.Errorf(engine.KindForbidden, engine.CodeForbidden, "", "the console is not for reps")
		}
		return u, nil
	}
	ctx, cancel := cs.callCtx()
	defer cancel()
	u, err := check(ctx)
	if err != nil {
		return engine.Actor{}, nil, err
	}
	return engine.Actor{Org: u.Org, User: u.ID, Roles: u.Roles}, func(ctx context.Context) error {
		_, err := check(ctx)
		return err
	}, nil
}
