package identity_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/jwtauth"
	"github.com/fieldsync/fieldsync/sqlite"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// clock is the injected clock: tests move it instead of sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fastHash keeps tests quick: the parameters, not the algorithm, change.
var fastHash = identity.HashParams{Memory: 1024, Time: 1, Threads: 1}

// env is one service over a fresh store, with its clock and keys.
type env struct {
	t     *testing.T
	ctx   context.Context
	svc   *identity.Service
	store identity.Store
	keys  *jwtauth.Keys
	clock *clock
}

// opener returns a fresh, empty store that is closed when the test ends.
type opener func(t *testing.T) identity.Store

func openSQLite(t *testing.T) identity.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "fieldsync.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func newEnv(t *testing.T, open opener, tweak func(*identity.Config)) *env {
	t.Helper()
	keys, err := jwtauth.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)}
	keys.SetClock(c.Now)
	e := &env{t: t, ctx: context.Background(), store: open(t), keys: keys, clock: c}
	cfg := identity.Config{Store: e.store, Tokens: keys, Now: c.Now, Hash: fastHash,
		AccountFailures: 3, AddressFailures: 5, FailureWindow: 15 * time.Minute}
	if tweak != nil {
		tweak(&cfg)
	}
	if e.svc, err = identity.New(cfg); err != nil {
		t.Fatal(err)
	}
	return e
}

const password = "correct horse battery"

// addUser creates a user of org acme with the password above.
func (e *env) addUser(id, email string, roles ...string) *identity.User {
	e.t.Helper()
	if len(roles) == 0 {
		roles = []string{identity.RoleRep}
	}
	u, err := e.svc.AddUser(e.ctx, "acme", identity.NewUser{ID: id, Email: email, Name: "Name " + id, Roles: roles, Password: password})
	if err != nil {
		e.t.Fatalf("AddUser(%s): %v", id, err)
	}
	return u
}

func (e *env) login(email, device string) *identity.Grant {
	e.t.Helper()
	g, err := e.svc.Login(e.ctx, email, password, device, "10.0.0.1")
	if err != nil {
		e.t.Fatalf("Login(%s, %s): %v", email, device, err)
	}
	return g
}

func (e *env) refresh(tok string) *identity.Grant {
	e.t.Helper()
	g, err := e.svc.Refresh(e.ctx, tok)
	if err != nil {
		e.t.Fatalf("Refresh: %v", err)
	}
	return g
}

func (e *env) session(id string) *identity.Session {
	e.t.Helper()
	s, err := e.store.Session(e.ctx, id)
	if err != nil {
		e.t.Fatalf("Session(%s): %v", id, err)
	}
	return s
}

// wantCode checks err's kind and code.
func wantCode(t *testing.T, what string, err error, kind engine.Kind, code string) {
	t.Helper()
	if engine.ErrorKind(err) != kind || engine.ErrorCode(err) != code {
		t.Errorf("%s: got %v (kind %v), want %v %s", what, err, engine.ErrorKind(err), kind, code)
	}
}

// TestService runs every scenario on the SQLite store; mongodb_test.go runs
// them on MongoDB (FerretDB).
func TestService(t *testing.T) { runService(t, openSQLite) }

// runService runs every scenario on the stores open returns.
func runService(t *testing.T, open opener) {
	for _, c := range []struct {
		name string
		fn   func(t *testing.T, open opener)
	}{
		{"Login", testLogin},
		{"RefreshRotation", testRefreshRotation},
		{"RefreshReuse", testRefreshReuse},
		{"RefreshGrace", testRefreshGrace},
		{"RefreshConcurrent", testRefreshConcurrent},
		{"RefreshExpired", testRefreshExpired},
		{"Logout", testLogout},
		{"RevokeDevice", testRevokeDevice},
		{"Disable", testDisable},
		{"RateLimitAccount", testRateLimitAccount},
		{"RateLimitAddress", testRateLimitAddress},
		{"Rehash", testRehash},
		{"Users", testUsers},
		{"TeamsAndOrg", testTeamsAndOrg},
		{"ConcurrentUpdates", testConcurrentUpdates},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, open)
		})
	}
}

func testLogin(t *testing.T, open opener) {
	e := newEnv(t, open, nil)
	u := e.addUser("u-1", "Ann@Acme.example")
	if u.Email != "ann@acme.example" || !strings.HasPrefix(u.PasswordHash, "$argon2id$v=19$m=1024,t=1,p=1$") {
		t.Fatalf("stored user: email %q, hash %q", u.Email, u.PasswordHash)
	}
	g := e.login("  ANN@acme.example ", "phone-1")
	a, err := e.keys.VerifyAccess(g.AccessToken)
	if err != nil || a.Actor.Org != "acme" || a.Actor.User != "u-1" || !a.Actor.HasRole("rep") ||
		a.Session != g.Session || a.Device != "phone-1" {
		t.Fatalf("access token says %+v, %v", a, err)
	}
	if want := e.clock.Now().Add(identity.DefaultAccessTTL); !a.Expires.Equal(want) || !g.AccessExpires.Equal(want) {
		t.Errorf("access expiry %v / %v, want %v", a.Expires, g.AccessExpires, want)
	}
	if want := e.clock.Now().Add(identity.DefaultSessionTTL); !g.RefreshExpires.Equal(want) {
		t.Errorf("refresh expiry %v, want %v", g.RefreshExpires, want)
	}
	parts := strings.Split(g.RefreshToken, ".")
	if len(parts) != 4 || parts[0] != g.Session || parts[1] != "1" || len(parts[2]) != 43 || len(parts[3]) != 22 {
		t.Errorf("refresh token %q is not <session>.1.<43 chars of base64url>.<22 chars of mac>", g.RefreshToken)
	}
	s := e.session(g.Session)
	if s.Org != "acme" || s.User != "u-1" || s.Device != "phone-1" || s.Generation != 1 || len(s.TokenHash) != 32 {
		t.Errorf("stored session %+v", s)
	}
	if strings.Contains(fmt.Sprintf("%x", s.TokenHash), parts[2]) {
		t.Errorf("the session stores the secret")
	}

	_, errWrong := e.svc.Login(e.ctx, "ann@acme.example", "wrong password!", "phone-1", "10.0.0.1")
	_, errUnknown := e.svc.Login(e.ctx, "nobody@acme.example", password, "phone-1", "10.0.0.1")
	wantCode(t, "wrong password", errWrong, engine.KindUnauthorized, identity.CodeBadCredentials)
	wantCode(t, "unknown email", errUnknown, engine.KindUnauthorized, identity.CodeBadCredentials)
	if errWrong != nil && errUnknown != nil && errWrong.Error() != errUnknown.Error() {
		t.Errorf("wrong password and unknown email answer differently: %q vs %q", errWrong, errUnknown)
	}
	// A user without a password cannot sign in, whatever is sent.
	if _, err := e.svc.AddUser(e.ctx, "acme", identity.NewUser{ID: "u-nopw", Email: "nopw@acme.example", Roles: []string{"rep"}}); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Login(e.ctx, "nopw@acme.example", "", "phone-1", "10.0.0.2")
	wantCode(t, "user without password", err, engine.KindUnauthorized, identity.CodeBadCredentials)
	_, err = e.svc.Login(e.ctx, "ann@acme.example", password, "", "10.0.0.2")
	wantCode(t, "no device", err, engine.KindInvalid, engine.CodeInvalidRequest)

	// A second sign-in on the same device ends the first session; another
	// device's session is kept.
	other := e.login("ann@acme.example", "tablet-1")
	again := e.login("ann@acme.example", "phone-1")
	if s := e.session(g.Session); s.RevokedAt.IsZero() || s.RevokeCause != identity.CauseReplaced {
		t.Errorf("the replaced session: revoked %v cause %q", s.RevokedAt, s.RevokeCause)
	}
	_, err = e.svc.Refresh(e.ctx, g.RefreshToken)
	wantCode(t, "refresh of the replaced session", err, engine.KindUnauthorized, identity.CodeSessionRevoked)
	e.refresh(other.RefreshToken)
	e.refresh(again.RefreshToken)
}

func testRefreshRotation(t *testing.T, open opener) {
	e := newEnv(t, open, nil)
	e.addUser("u-1", "ann@acme.example")
	g1 := e.login("ann@acme.example", "phone-1")
	e.clock.Advance(10 * time.Minute)
	g2 := e.refresh(g1.RefreshToken)
	if g2.Session != g1.Session || g2.RefreshToken == g1.RefreshToken || !strings.HasPrefix(g2.RefreshToken, g1.Session+".2.") {
		t.Fatalf("rotation: %q -> %q", g1.RefreshToken, g2.RefreshToken)
	}
	if !g2.AccessExpires.Equal(e.clock.Now().Add(identity.DefaultAccessTTL)) || !g2.RefreshExpires.Equal(g1.RefreshExpires) {
		t.Errorf("expiries after refresh: access %v, refresh %v (the session's end does not move)", g2.AccessExpires, g2.RefreshExpires)
	}
	if a, err := e.keys.VerifyAccess(g2.AccessToken); err != nil || a.Session != g1.Session || a.Device != "phone-1" {
		t.Errorf("refreshed access token: %+v %v", a, err)
	}
	e.clock.Advance(10 * time.Minute)
	g3 := e.refresh(g2.RefreshToken)
	if s := e.session(g1.Session); s.Generation != 3 || !s.RevokedAt.IsZero() {
		t.Errorf("after two rotations: generation %d, revoked %v", s.Generation, s.RevokedAt)
	}
	// Roles come from the directory at every refresh.
	if _, err := e.svc.UpdateUser(e.ctx, "acme", "u-1", identity.UserChange{Roles: &[]string{"rep", "manager"}}); err != nil {
		t.Fatal(err)
	}
	g4 := e.refresh(g3.RefreshToken)
	if a, _ := e.keys.VerifyAccess(g4.AccessToken); !a.Actor.HasRole("manager") {
		t.Errorf("the refreshed token's roles %v miss the new role", a.Actor.Roles)
	}
	for _, bad := range []string{"", "x", g1.Session, g1.Session + ".4", g1.Session + ".x.abc", g1.Session + ".4.forged",
		g1.Session + ".9.forged", "nosuchsession.1.abc"} {
		_, err := e.svc.Refresh(e.ctx, bad)
		wantCode(t, fmt.Sprintf("refresh with %q", bad), err, engine.KindUnauthorized, identity.CodeRefreshInvalid)
	}
	e.refresh(g4.RefreshToken)
}

func testRefreshReuse(t *testing.T, open opener) {
	e := newEnv(t, open, nil)
	e.addUser("u-1", "ann@acme.example")
	g1 := e.login("ann@acme.example", "phone-1")
	g2 := e.refresh(g1.RefreshToken)
	g3 := e.refresh(g2.RefreshToken)
	// Forged from the session id (it is in every access token): generation
	// 1, a made-up secret, with and without a made-up mac. Never issued, so
	// never a reuse: refresh_token_invalid, and the session lives on.
	for _, forged := range []string{
		g1.Session + ".1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		g1.Session + ".1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA",
		g1.Session + ".2." + strings.Split(g1.RefreshToken, ".")[2] + "." + strings.Split(g1.RefreshToken, ".")[3],
	} {
		_, err := e.svc.Refresh(e.ctx, forged)
		wantCode(t, "a forged refresh token", err, engine.KindUnauthorized, identity.CodeRefreshInvalid)
		if s := e.session(g1.Session); !s.RevokedAt.IsZero() {
			t.Fatalf("a forged refresh token revoked the session: %+v", s)
		}
	}
	// g1 is two generations old: a copy someone kept.
	_, err := e.svc.Refresh(e.ctx, g1.RefreshToken)
	wantCode(t, "refresh with a stale token", err, engine.KindUnauthorized, identity.CodeRefreshReused)
	s := e.session(g1.Session)
	if s.RevokedAt.IsZero() || s.RevokeCause != identity.CauseReuse {
		t.Fatalf("after reuse the session is not revoked for reuse: %+v", s)
	}
	// The newest token dies with the session.
	_, err = e.svc.Refresh(e.ctx, g3.RefreshToken)
	wantCode(t, "refresh with the newest token after reuse", err, engine.KindUnauthorized, identity.CodeSessionRevoked)

	// The previous generation after the grace period is reuse too.
	h1 := e.login("ann@acme.example", "phone-2")
	e.refresh(h1.RefreshToken)
	e.clock.Advance(identity.DefaultRefreshGrace + time.Second)
	_, err = e.svc.Refresh(e.ctx, h1.RefreshToken)
	wantCode(t, "the previous token after the grace period", err, engine.KindUnauthorized, identity.CodeRefreshReused)
	if s := e.session(h1.Session); s.RevokeCause != identity.CauseReuse {
		t.Errorf("session %s: cause %q, want reuse", h1.Session, s.RevokeCause)
	}
}

func testRefreshGrace(t *testing.T, open opener) {
	e := newEnv(t, open, nil)
	e.addUser("u-1", "ann@acme.example")
	g1 := e.login("ann@acme.example", "phone-1")
	e.refresh(g1.RefreshToken) // the reply is lost: the device still holds g1
	e.clock.Advance(20 * time.Second)
	retry := e.refresh(g1.RefreshToken) // within the grace period: rotates once more
	if !strings.HasPrefix(retry.RefreshToken, g1.Session+".3.") {
		t.Errorf("grace rotation gave %q, want generation 3", retry.RefreshToken)
	}
	e.clock.Advance(20 * time.Second)
	again := e.refresh(g1.RefreshToken) // lost again; still within 60 s of the first rotation
	e.clock.Advance(5 * time.Minute)
	next := e.refresh(again.RefreshToken)
	// After the grace period the device's old token is reuse.
	_, err := e.svc.Refresh(e.ctx, g1.RefreshToken)
	wantCode(t, "g1 after the grace period", err, engine.KindUnauthorized, identity.CodeRefreshReused)
	_, err = e.svc.Refresh(e.ctx, next.RefreshToken)
	wantCode(t, "the newest token after reuse", err, engine.KindUnauthorized, identity.CodeSessionRevoked)
}

// testRefreshConcurrent: eight refreshes with one token at once form one
// chain: every generation is handed out once, only the last token is
// current, and the session stays live.
func testRefreshConcurrent(t *testing.T, open opener) {
	e := newEnv(t, open, nil)
	e.addUser("u-1", "ann@acme.example")
	g1 := e.login("ann@acme.example", "phone-1")
	const n = 8
	grants := make([]*identity.Grant, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			grants[i], errs[i] = e.svc.Refresh(e.ctx, g1.RefreshToken)
		})
	}
	close(start)
	wg.Wait()
	gens := map[int64]bool{}
	var newest *identity.Grant
	var newestGen int64
	for i, err := range errs {
		if err != nil {
			wantCode(t, fmt.Sprintf("refresh %d", i), err, engine.KindConflict, identity.CodeRefreshConflict)
			continue
		}
		gen, _ := strconv.ParseInt(strings.Split(grants[i].RefreshToken, ".")[1], 10, 64)
		if gens[gen] {
			t.Fatalf("generation %d handed out twice: the family forked", gen)
		}
		gens[gen] = true
		if gen > newestGen {
			newest, newestGen = grants[i], gen
		}
	}
	t.Logf("%d of %d refreshes rotated (the others answered refresh_conflict)", len(gens), n)
	s := e.session(g1.Session)
	if len(gens) == 0 || s.Generation != int64(1+len(gens)) || !s.RevokedAt.IsZero() {
		t.Fatalf("%d refreshes succeeded; the session is at generation %d, revoked %v", len(gens), s.Generation, s.RevokedAt)
	}
	if !strings.HasPrefix(newest.RefreshToken, fmt.Sprintf("%s.%d.", g1.Session, s.Generation)) {
		t.Fatalf("the newest grant %q is not the session's generation %d", newest.RefreshToken, s.Generation)
	}
	// Exactly one token continues: the newest.
	final := e.refresh(newest.RefreshToken)
	for _, g := range grants {
		if g == nil || g == newest || len(gens) == 1 {
			continue
		}
		_, err := e.svc.Refresh(e.ctx, g.RefreshToken)
		wantCode(t, "a superseded sibling", err, engine.KindUnauthorized, identity.CodeRefreshReused)
		_, err = e.svc.Refresh(e.ctx, final.RefreshToken)
		wantCode(t, "after the sibling's reuse", err, engine.KindUnauthorized, identity.CodeSessionRevoked)
		break
	}
}

func testRefreshExpired(t *testing.T, open opener) {
	e := newEnv(t, open, func(c *identity.Config) { c.SessionTTL = time.Hour })
	e.addUser("u-1", "ann@acme.example")
	g := e.login("ann@acme.example", "phone-1")
	e.clock.Advance(59 * time.Minute)
	g = e.refresh(g.RefreshToken)
	e.clock.Advance(time.Minute)
	_, err := e.svc.Refresh(e.ctx, g.RefreshToken)
	wantCode(t, "refresh of an expired session", err, engine.KindUnauthorized, identity.CodeSessionExpired)
}

func testLogout(t *testing.T, open opener) {
	e := newEnv(t, open, nil)
	e.addUser("u-1", "ann@acme.example")
	e.addUser("u-2", "bob@acme.example")
	g := e.login("ann@acme.example", "phone-1")
	keep := e.login("ann@acme.example", "phone-2")
	wantCode(t, "logout of another user's session", e.svc.Logout(e.ctx, "acme", "u-2", g.Session), engine.KindNotFound, engine.CodeNotFound)
	wantCode(t, "logout without a session", e.svc.Logout(e.ctx, "acme", "u-1", ""), engine.KindInvalid, identity.CodeNoSession)
	if u, err := e.svc.Active(e.ctx, "acme", "u-1", g.Session); err != nil || u.ID != "u-1" {
		t.Errorf("Active before logout: %+v %v", u, err)
	}
	_, err := e.svc.Active(e.ctx, "acme", "u-2", g.Session)
	wantCode(t, "Active with another user's session", err, engine.KindUnauthorized, identity.CodeSessionRevoked)
	if err := e.svc.Logout(e.ctx, "acme", "u-1", g.Session); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Logout(e.ctx, "acme", "u-1", g.Session); err != nil {
		t.Errorf("a second logout: %v", err)
	}
	if s := e.session(g.Session); s.RevokeCause != identity.CauseLogout {
		t.Errorf("cause %q, want logout", s.RevokeCause)
	}
	_, err = e.svc.Active(e.ctx, "acme", "u-1", g.Session)
	wantCode(t, "Active after logout", err, engine.KindUnauthorized, identity.CodeSessionRevoked)
	_, err = e.svc.Refresh(e.ctx, g.RefreshToken)
	wantCode(t, "refresh after logout", err, engine.KindUnauthorized, identity.CodeSessionRevoked)
	e.refresh(keep.RefreshToken)
}

func testRevokeDevice(t *testing.T, open opener) {
	e := newEnv(t, open, nil)
	e.addUser("u-1", "ann@acme.example")
	g := e.login("ann@acme.example", "phone-1")
	keep := e.login("ann@acme.example", "phone-2")
	n, err := e.svc.RevokeDevice(e.ctx, "acme", "u-1", "phone-1")
	if err != nil || n != 1 {
		t.Fatalf("RevokeDevice = %d, %v; want 1", n, err)
	}
	_, err = e.svc.Refresh(e.ctx, g.RefreshToken)
	wantCode(t, "refresh on the revoked device", err, engine.KindUnauthorized, identity.CodeSessionRevoked)
	if s := e.session(g.Session); s.RevokeCause != identity.CauseAdmin {
		t.Errorf("cause %q, want admin", s.RevokeCause)
	}
	e.refresh(keep.RefreshToken)
	_, err = e.svc.RevokeDevice(e.ctx, "globex", "u-1", "phone-2")
	wantCode(t, "RevokeDevice in another organisation", err, engine.KindNotFound, engine.CodeNotFound)
	list, err := e.svc.Sessions(e.ctx, "acme", "u-1")
	if err != nil || len(list) != 2 {
		t.Fatalf("Sessions = %d, %v", len(list), err)
	}
}

func testDisable(t *testing.T, open opener) {
	e := newEnv(t, open, nil)
	e.addUser("u-1", "ann@acme.example")
	g1 := e.login("ann@acme.example", "phone-1")
	g2 := e.login("ann@acme.example", "phone-2")
	u, err := e.svc.DisableUser(e.ctx, "acme", "u-1")
	if err != nil || !u.Disabled {
		t.Fatalf("DisableUser: %+v %v", u, err)
	}
	for _, g := range []*identity.Grant{g1, g2} {
		_, err := e.svc.Refresh(e.ctx, g.RefreshToken)
		wantCode(t, "refresh of a disabled user", err, engine.KindUnauthorized, identity.CodeSessionRevoked)
		if s := e.session(g.Session); s.RevokeCause != identity.CauseDisabled {
			t.Errorf("cause %q, want disabled", s.RevokeCause)
		}
	}
	_, err = e.svc.Login(e.ctx, "ann@acme.example", password, "phone-1", "10.0.0.1")
	wantCode(t, "login of a disabled user", err, engine.KindForbidden, identity.CodeUserDisabled)
	_, err = e.svc.Login(e.ctx, "ann@acme.example", "not the password", "phone-1", "10.0.0.1")
	wantCode(t, "a disabled user with a wrong password", err, engine.KindUnauthorized, identity.CodeBadCredentials)
	if _, err := e.svc.EnableUser(e.ctx, "acme", "u-1"); err != nil {
		t.Fatal(err)
	}
	e.refresh(e.login("ann@acme.example", "phone-1").RefreshToken)
}

func testRateLimitAccount(t *testing.T, open opener) {
	e := newEnv(t, open, nil) // 3 failures per account, 5 per address, per 15 minutes
	e.addUser("u-1", "ann@acme.example")
	fail := func(addr string) error {
		_, err := e.svc.Login(e.ctx, "ann@acme.example", "wrong password", "phone-1", addr)
		return err
	}
	for i := range 3 {
		wantCode(t, fmt.Sprintf("failure %d", i), fail(fmt.Sprintf("10.0.1.%d", i)), engine.KindUnauthorized, identity.CodeBadCredentials)
		e.clock.Advance(time.Minute)
	}
	// The account is locked for every address, even with the right password.
	_, err := e.svc.Login(e.ctx, "ann@acme.example", password, "phone-1", "10.0.9.9")
	wantCode(t, "the fourth attempt", err, engine.KindRateLimited, identity.CodeLoginThrottled)
	var ra interface{ RetryAfter() time.Duration }
	if !asRetry(err, &ra) || ra.RetryAfter() != 12*time.Minute {
		t.Fatalf("retry after: %v, want 12m (the first failure leaves the window then)", err)
	}
	// Another account from the same addresses is not affected.
	e.addUser("u-2", "bob@acme.example")
	e.login("bob@acme.example", "phone-1")
	// Successful sign-ins do not count, and once the oldest failure leaves
	// the window one attempt is free again.
	e.clock.Advance(12 * time.Minute)
	e.login("ann@acme.example", "phone-1")
	wantCode(t, "a failure after the window slid", fail("10.0.2.1"), engine.KindUnauthorized, identity.CodeBadCredentials)
	wantCode(t, "over the limit again", fail("10.0.2.1"), engine.KindRateLimited, identity.CodeLoginThrottled)
	// Unknown emails are counted per email too.
	for range 3 {
		e.svc.Login(e.ctx, "ghost@acme.example", "x", "phone-1", fmt.Sprintf("10.0.3.%d", 1))
	}
	_, err = e.svc.Login(e.ctx, "ghost@acme.example", "x", "phone-1", "10.0.4.1")
	wantCode(t, "an unknown email over the limit", err, engine.KindRateLimited, identity.CodeLoginThrottled)
}

func testRateLimitAddress(t *testing.T, open opener) {
	e := newEnv(t, open, nil)
	e.addUser("u-1", "ann@acme.example")
	for i := range 5 {
		_, err := e.svc.Login(e.ctx, fmt.Sprintf("guess-%d@acme.example", i), "wrong password", "phone-1", "10.0.0.66")
		wantCode(t, fmt.Sprintf("failure %d", i), err, engine.KindUnauthorized, identity.CodeBadCredentials)
	}
	_, err := e.svc.Login(e.ctx, "ann@acme.example", password, "phone-1", "10.0.0.66")
	wantCode(t, "any account from the address", err, engine.KindRateLimited, identity.CodeLoginThrottled)
	var ra interface{ RetryAfter() time.Duration }
	if !asRetry(err, &ra) || ra.RetryAfter() != 15*time.Minute {
		t.Errorf("retry after: %v, want 15m", err)
	}
	e.login("ann@acme.example", "phone-1") // from another address
	e.clock.Advance(15 * time.Minute)
	if _, err := e.svc.Login(e.ctx, "ann@acme.example", password, "phone-1", "10.0.0.66"); err != nil {
		t.Errorf("after the window: %v", err)
	}

	off := newEnv(t, open, func(c *identity.Config) { c.AccountFailures, c.AddressFailures = -1, -1 })
	off.addUser("u-1", "ann@acme.example")
	for i := range 20 {
		_, err := off.svc.Login(off.ctx, "ann@acme.example", "wrong password", "phone-1", "10.0.0.66")
		wantCode(t, fmt.Sprintf("limits off, failure %d", i), err, engine.KindUnauthorized, identity.CodeBadCredentials)
	}
}

func testRehash(t *testing.T, open opener) {
	old := identity.HashParams{Memory: 512, Time: 2, Threads: 1}
	e := newEnv(t, open, func(c *identity.Config) { c.Hash = old })
	u := e.addUser("u-1", "ann@acme.example")
	if !strings.HasPrefix(u.PasswordHash, "$argon2id$v=19$m=512,t=2,p=1$") {
		t.Fatalf("hash %q", u.PasswordHash)
	}
	// The same store behind a service with new parameters.
	svc, err := identity.New(identity.Config{Store: e.store, Tokens: e.keys, Now: e.clock.Now, Hash: fastHash})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Login(e.ctx, "ann@acme.example", "wrong password", "phone-1", "10.0.0.1"); engine.ErrorCode(err) != identity.CodeBadCredentials {
		t.Fatalf("wrong password: %v", err)
	}
	if got, _ := e.store.User(e.ctx, "acme", "u-1"); got.PasswordHash != u.PasswordHash {
		t.Errorf("a failed sign-in re-hashed the password")
	}
	if _, err := svc.Login(e.ctx, "ann@acme.example", password, "phone-1", "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	got, _ := e.store.User(e.ctx, "acme", "u-1")
	if !strings.HasPrefix(got.PasswordHash, "$argon2id$v=19$m=1024,t=1,p=1$") {
		t.Fatalf("after sign-in the hash is %q, want the new parameters", got.PasswordHash)
	}
	if _, err := svc.Login(e.ctx, "ann@acme.example", password, "phone-1", "10.0.0.1"); err != nil {
		t.Errorf("sign-in with the re-hashed password: %v", err)
	}
	again, _ := e.store.User(e.ctx, "acme", "u-1")
	if again.PasswordHash != got.PasswordHash {
		t.Errorf("a hash with current parameters was replaced")
	}
}

func testUsers(t *testing.T, open opener) {
	e := newEnv(t, open, nil)
	ctx := e.ctx
	if o, err := e.svc.Org(ctx, "acme"); err != nil || o.TimeZone != "UTC" {
		t.Fatalf("the default org: %+v %v", o, err)
	}
	if _, err := e.svc.AddTeam(ctx, "acme", "north", "North"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		nu      identity.NewUser
		kind    engine.Kind
		code    string
		pointer string
	}{
		{identity.NewUser{Email: "a@acme.example", Roles: []string{"rep", "pilot"}}, engine.KindInvalid, identity.CodeUnknownRole, "/roles/1"},
		{identity.NewUser{Email: "a@acme.example", Roles: nil}, engine.KindInvalid, engine.CodeInvalidRequest, "/roles"},
		{identity.NewUser{Email: "a@acme.example", Roles: []string{"rep"}, Teams: []string{"north", "south"}}, engine.KindInvalid, identity.CodeUnknownTeam, "/teams/1"},
		{identity.NewUser{Email: "a@acme.example", Roles: []string{"manager"}, Leads: []string{"south"}}, engine.KindInvalid, identity.CodeUnknownTeam, "/leads/0"},
		{identity.NewUser{Email: "not an email", Roles: []string{"rep"}}, engine.KindInvalid, identity.CodeInvalidEmail, "/email"},
		{identity.NewUser{Email: "Ann <a@acme.example>", Roles: []string{"rep"}}, engine.KindInvalid, identity.CodeInvalidEmail, "/email"},
		{identity.NewUser{Email: "a@acme.example", Roles: []string{"rep"}, Password: "short"}, engine.KindInvalid, identity.CodePasswordTooShort, "/password"},
		{identity.NewUser{ID: "bad id", Email: "a@acme.example", Roles: []string{"rep"}}, engine.KindInvalid, engine.CodeInvalidRequest, "/id"},
	}
	for _, c := range cases {
		_, err := e.svc.AddUser(ctx, "acme", c.nu)
		var de *engine.Error
		if !asError(err, &de) || de.Kind != c.kind || de.Code != c.code || de.Pointer != c.pointer {
			t.Errorf("AddUser(%+v) = %v, want %s at %s", c.nu, err, c.code, c.pointer)
		}
	}
	if us, _ := e.svc.ListUsers(ctx, "acme", identity.UserFilter{}); len(us) != 0 {
		t.Fatalf("rejected users were stored: %d", len(us))
	}
	u, err := e.svc.AddUser(ctx, "acme", identity.NewUser{Email: "a@acme.example", Roles: []string{"rep", "rep"}, Teams: []string{"north"}})
	if err != nil || len(u.ID) != 26 || len(u.Roles) != 1 || u.Version != 1 || u.PasswordHash != "" {
		t.Fatalf("AddUser with a generated id: %+v %v", u, err)
	}
	_, err = e.svc.AddUser(ctx, "globex", identity.NewUser{Email: "A@acme.example", Roles: []string{"rep"}})
	wantCode(t, "an email taken in another org", err, engine.KindConflict, identity.CodeEmailTaken)
	// Back-office roles an organisation adds become valid.
	if _, err := e.svc.PutOrg(ctx, "acme", identity.OrgChange{Roles: &[]string{"pilot"}}); err != nil {
		t.Fatal(err)
	}
	name, email := "Ann", "ann@acme.example"
	u, err = e.svc.UpdateUser(ctx, "acme", u.ID, identity.UserChange{Name: &name, Email: &email, Roles: &[]string{"rep", "pilot"}})
	if err != nil || u.Name != "Ann" || u.Email != email || u.Version != 2 {
		t.Fatalf("UpdateUser: %+v %v", u, err)
	}
	short := "short"
	_, err = e.svc.UpdateUser(ctx, "acme", u.ID, identity.UserChange{Password: &short})
	wantCode(t, "a short password", err, engine.KindInvalid, identity.CodePasswordTooShort)
	_, err = e.svc.UpdateUser(ctx, "globex", u.ID, identity.UserChange{Name: &name})
	wantCode(t, "UpdateUser from another org", err, engine.KindNotFound, engine.CodeNotFound)
	// Setting a password lets the user sign in and ends older sessions.
	pw := password
	if _, err := e.svc.UpdateUser(ctx, "acme", u.ID, identity.UserChange{Password: &pw}); err != nil {
		t.Fatal(err)
	}
	g := e.login(email, "phone-1")
	pw2 := password + "!"
	if _, err := e.svc.UpdateUser(ctx, "acme", u.ID, identity.UserChange{Password: &pw2}); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Refresh(ctx, g.RefreshToken)
	wantCode(t, "refresh after a password change", err, engine.KindUnauthorized, identity.CodeSessionRevoked)
}

// testConcurrentUpdates: concurrent updates of one user all land, one after
// the other (the store's optimistic locking makes the losers read again).
func testConcurrentUpdates(t *testing.T, open opener) {
	e := newEnv(t, open, nil)
	u := e.addUser("u-1", "ann@acme.example")
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			n := fmt.Sprintf("name-%d", i)
			if _, err := e.svc.UpdateUser(e.ctx, "acme", u.ID, identity.UserChange{Name: &n}); err != nil {
				t.Errorf("concurrent UpdateUser: %v", err)
			}
		})
	}
	wg.Wait()
	if got, _ := e.svc.User(e.ctx, "acme", u.ID); got.Version != 5 {
		t.Errorf("after 4 concurrent updates the version is %d, want 5: an update was lost", got.Version)
	}
}

func testTeamsAndOrg(t *testing.T, open opener) {
	e := newEnv(t, open, nil)
	ctx := e.ctx
	if _, err := e.svc.AddTeam(ctx, "acme", "north", "North"); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.AddTeam(ctx, "acme", "north", "Again")
	wantCode(t, "a second team north", err, engine.KindConflict, identity.CodeTeamExists)
	if _, err := e.svc.AddTeam(ctx, "globex", "north", "Globex North"); err != nil {
		t.Errorf("the same team id in another org: %v", err)
	}
	if tm, err := e.svc.RenameTeam(ctx, "acme", "north", "North-East"); err != nil || tm.Name != "North-East" {
		t.Errorf("RenameTeam: %+v %v", tm, err)
	}
	_, err = e.svc.RenameTeam(ctx, "acme", "south", "South")
	wantCode(t, "rename an unknown team", err, engine.KindNotFound, engine.CodeNotFound)
	ts, err := e.svc.ListTeams(ctx, "acme")
	if err != nil || len(ts) != 1 || ts[0].Name != "North-East" {
		t.Errorf("ListTeams: %+v %v", ts, err)
	}

	o, err := e.svc.Org(ctx, "acme") // created with defaults by AddTeam
	if err != nil || o.TimeZone != "UTC" || o.Name != "acme" {
		t.Fatalf("Org: %+v %v", o, err)
	}
	name, tz := "Acme Motors", "Asia/Kolkata"
	o, err = e.svc.PutOrg(ctx, "acme", identity.OrgChange{Name: &name, TimeZone: &tz, Roles: &[]string{"quality", "rep", "quality"}})
	if err != nil || o.Name != name || o.TimeZone != tz || len(o.Roles) != 1 || o.Roles[0] != "quality" {
		t.Fatalf("PutOrg: %+v %v", o, err)
	}
	bad := "Mars/Olympus"
	_, err = e.svc.PutOrg(ctx, "acme", identity.OrgChange{TimeZone: &bad})
	wantCode(t, "an unknown time zone", err, engine.KindInvalid, identity.CodeUnknownTimeZone)
	_, err = e.svc.PutOrg(ctx, "acme", identity.OrgChange{Roles: &[]string{"Bad Role"}})
	wantCode(t, "a bad role name", err, engine.KindInvalid, engine.CodeInvalidRequest)
	if o, _ := e.svc.Org(ctx, "acme"); o.TimeZone != tz || o.Name != name {
		t.Errorf("a rejected change changed the org: %+v", o)
	}
}

func asRetry(err error, target *interface{ RetryAfter() time.Duration }) bool {
	return errors.As(err, target)
}

func asError(err error, target **engine.Error) bool { return errors.As(err, target) }
