package identity

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// Minter signs access tokens; jwtauth.Keys is the one in production.
type Minter interface {
	MintSession(org, user string, roles []string, session, device string, ttl time.Duration) (string, error)
}

// Defaults of Config.
const (
	DefaultAccessTTL       = 15 * time.Minute
	DefaultSessionTTL      = 30 * 24 * time.Hour
	DefaultRefreshGrace    = 60 * time.Second
	DefaultAccountFailures = 10
	DefaultAddressFailures = 50
	DefaultFailureWindow   = 15 * time.Minute
)

// Causes recorded on revoked sessions (Session.RevokeCause).
const (
	CauseLogout   = "logout"
	CauseAdmin    = "admin"    // an admin revoked the device
	CauseReuse    = "reuse"    // an old refresh token came back
	CauseDisabled = "disabled" // the user was disabled
	CauseReplaced = "replaced" // the device signed in again
	CausePassword = "password" // the password was changed
)

// Config wires a Service. Zero values take the defaults above; a negative
// failure limit turns that limit off.
type Config struct {
	Store  Store
	Tokens Minter
	Now    func() time.Time // default time.Now
	Rand   io.Reader        // salts, secrets and ids; default crypto/rand
	Hash   HashParams       // for new hashes; default DefaultHashParams

	AccessTTL    time.Duration
	SessionTTL   time.Duration // from sign-in; refreshing does not extend it
	RefreshGrace time.Duration // how long the previous refresh token still rotates

	AccountFailures int           // failed sign-ins per email per window
	AddressFailures int           // failed sign-ins per client address per window
	FailureWindow   time.Duration // sliding
	// RefreshKey signs refresh tokens, so that only a token the server
	// issued can count as reused (and revoke its session): a session id is
	// not secret, it is in every access token. Every instance must share
	// it (serve takes it from the store); default: random per Service.
	RefreshKey []byte
	// MaxHashes bounds the argon2 computations running at once (each takes
	// Hash.Memory): a burst of sign-ins queues instead of exhausting memory.
	// Default: the number of CPUs.
	MaxHashes int
}

// Service is sign-in, sessions and the management of users, teams and
// organisations, over a Store. It is safe for concurrent use.
type Service struct {
	cfg      Config
	store    Store
	now      func() time.Time
	hashes   chan struct{}
	dummy    string // a hash verified when there is no user, so both cases take as long
	accounts *failureLimiter
	addrs    *failureLimiter
}

// New checks cfg and builds the service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Tokens == nil {
		return nil, errors.New("identity: Config needs a Store and a Minter")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	cfg.Hash = cfg.Hash.withDefaults()
	if cfg.RefreshKey == nil {
		cfg.RefreshKey = make([]byte, 32)
		if _, err := io.ReadFull(cfg.Rand, cfg.RefreshKey); err != nil {
			return nil, fmt.Errorf("identity: refresh key: %w", err)
		}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.AccessTTL, DefaultAccessTTL)
	def(&cfg.SessionTTL, DefaultSessionTTL)
	def(&cfg.RefreshGrace, DefaultRefreshGrace)
	def(&cfg.FailureWindow, DefaultFailureWindow)
	if cfg.AccountFailures == 0 {
		cfg.AccountFailures = DefaultAccountFailures
	}
	if cfg.AddressFailures == 0 {
		cfg.AddressFailures = DefaultAddressFailures
	}
	if cfg.MaxHashes <= 0 {
		cfg.MaxHashes = max(2, runtime.NumCPU())
	}
	s := &Service{cfg: cfg, store: cfg.Store, now: cfg.Now, hashes: make(chan struct{}, cfg.MaxHashes),
		accounts: newFailureLimiter(cfg.AccountFailures, cfg.FailureWindow),
		addrs:    newFailureLimiter(cfg.AddressFailures, cfg.FailureWindow)}
	secret := make([]byte, 16)
	if _, err := io.ReadFull(cfg.Rand, secret); err != nil {
		return nil, err
	}
	dummy, err := hashPassword(base64.RawURLEncoding.EncodeToString(secret), cfg.Hash, cfg.Rand)
	if err != nil {
		return nil, err
	}
	s.dummy = dummy
	// The hash's memory (64 MiB by default) is garbage now: hand it back to
	// the system rather than hold it until the next collection, so an idle
	// server is small. Sign-ins allocate it again while they run. A hash of
	// a few MiB is not worth a forced collection of the whole heap (a
	// process starting many services, as the tests do, pays for each).
	if cfg.Hash.Memory >= freeAfterHashKiB {
		debug.FreeOSMemory()
	}
	return s, nil
}

// freeAfterHashKiB is the hash memory from which New hands the memory of its
// first hash back to the system at once.
const freeAfterHashKiB = 8 << 10

// Grant is what a sign-in or a refresh hands the device.
type Grant struct {
	AccessToken    string
	AccessTTL      time.Duration
	AccessExpires  time.Time
	RefreshToken   string // <session id>.<generation>.<secret>
	RefreshExpires time.Time
	Session        string
	User           *User
}

// Throttled is the cause of a login_rate_limited error: how long the
// client should wait. The server turns it into a Retry-After header.
type Throttled struct{ Wait time.Duration }

func (t *Throttled) Error() string { return "retry after " + t.Wait.String() }

// RetryAfter is how long to wait before trying again.
func (t *Throttled) RetryAfter() time.Duration { return t.Wait }

// Login signs a user in on a device: it checks the password and opens a
// session for the device, ending the device's previous one. An unknown
// email and a wrong password get the same answer in about the same time.
func (s *Service) Login(ctx context.Context, email, password, device, remoteAddr string) (*Grant, error) {
	email = normalizeEmail(email)
	if err := checkDevice(device); err != nil {
		return nil, err
	}
	if wait := max(s.accounts.blocked(email, s.now()), s.addrs.blocked(remoteAddr, s.now())); wait > 0 {
		secs := int((wait + time.Second - 1) / time.Second)
		return nil, &engine.Error{Kind: engine.KindRateLimited, Code: CodeLoginThrottled, Err: &Throttled{Wait: wait},
			Message: fmt.Sprintf("too many failed sign-ins; retry in %d seconds", secs)}
	}
	u, err := s.store.UserByEmail(ctx, email)
	if err != nil && engine.ErrorKind(err) != engine.KindNotFound {
		return nil, err
	}
	phc := s.dummy
	if u != nil && u.PasswordHash != "" {
		phc = u.PasswordHash
	}
	ok, stale, err := s.verify(ctx, phc, password)
	if err != nil {
		return nil, err
	}
	if !ok || phc == s.dummy {
		now := s.now()
		s.accounts.fail(email, now)
		s.addrs.fail(remoteAddr, now)
		return nil, engine.Errorf(engine.KindUnauthorized, CodeBadCredentials, "", "wrong email or password")
	}
	if u.Disabled {
		return nil, engine.Errorf(engine.KindForbidden, CodeUserDisabled, "", "this user is disabled")
	}
	if stale {
		s.rehash(ctx, u, password)
	}
	now := s.now()
	if _, err := s.store.RevokeSessions(ctx, u.Org, u.ID, device, CauseReplaced, now); err != nil {
		return nil, err
	}
	id, err := s.randomString(16)
	if err != nil {
		return nil, err
	}
	secret, err := s.randomString(32)
	if err != nil {
		return nil, err
	}
	sess := &Session{ID: id, Org: u.Org, User: u.ID, Device: device, Generation: 1, TokenHash: hashSecret(secret),
		RotatedAt: now, Created: now, ExpiresAt: now.Add(s.cfg.SessionTTL)}
	if err := s.store.CreateSession(ctx, sess); err != nil {
		return nil, err
	}
	return s.grant(sess, u, secret)
}

// rehash replaces a hash made with old parameters. It is best effort: the
// user signed in either way, and a concurrent update simply wins.
func (s *Service) rehash(ctx context.Context, u *User, password string) {
	phc, err := s.hash(ctx, password)
	if err != nil {
		return
	}
	nu := *u
	nu.PasswordHash, nu.Updated = phc, s.now()
	if s.store.UpdateUser(ctx, &nu) == nil {
		*u = nu
	}
}

func (s *Service) grant(sess *Session, u *User, secret string) (*Grant, error) {
	tok, err := s.cfg.Tokens.MintSession(u.Org, u.ID, u.Roles, sess.ID, sess.Device, s.cfg.AccessTTL)
	if err != nil {
		return nil, err
	}
	return &Grant{AccessToken: tok, AccessTTL: s.cfg.AccessTTL, AccessExpires: s.now().Add(s.cfg.AccessTTL),
		RefreshToken:   s.refreshToken(sess.ID, sess.Generation, secret),
		RefreshExpires: sess.ExpiresAt, Session: sess.ID, User: u}, nil
}

// Refresh trades a refresh token for a new access token and the next
// refresh token of the session (docs/access.md):
//   - the current generation rotates: the session moves to the next
//     generation and only the new token is current;
//   - the token the last rotation replaced, presented again within
//     RefreshGrace of that rotation (its reply was lost, or two requests
//     raced), rotates once more, and the token the lost reply carried dies;
//   - any other older generation is reuse: the session is revoked and the
//     answer is refresh_token_reused.
//
// Rotation is a compare-and-swap on the generation, so refreshes racing on
// one token, on one instance or several, form one chain: each generation is
// handed out once and exactly one token is current afterwards.
func (s *Service) Refresh(ctx context.Context, token string) (*Grant, error) {
	id, gen, secret, ok := parseRefresh(token)
	if !ok {
		return nil, refreshInvalid()
	}
	// Only a token this server signed can be a reuse: anyone who has seen
	// an access token knows the session id and could forge the rest.
	if !hmac.Equal([]byte(token), []byte(s.refreshToken(id, gen, secret))) {
		return nil, refreshInvalid()
	}
	h := hashSecret(secret)
	for attempt := 0; ; attempt++ {
		sess, err := s.store.Session(ctx, id)
		if engine.ErrorKind(err) == engine.KindNotFound {
			return nil, refreshInvalid()
		} else if err != nil {
			return nil, err
		}
		now := s.now()
		if err := sessionState(sess, now); err != nil {
			return nil, err
		}
		rot := *sess
		rot.Generation = sess.Generation + 1
		switch {
		case gen == sess.Generation && equalHash(h, sess.TokenHash):
			rot.PrevHash, rot.RotatedAt = sess.TokenHash, now
		case gen < sess.Generation && equalHash(h, sess.PrevHash) && now.Sub(sess.RotatedAt) <= s.cfg.RefreshGrace:
			// Rotate once more from the token the device certainly holds;
			// PrevHash and RotatedAt stay, so the grace period does not grow.
		case gen >= sess.Generation:
			return nil, refreshInvalid()
		default:
			// An older generation, or the previous one after the grace
			// period: someone kept a token the device has moved past.
			if err := s.store.RevokeSession(ctx, sess.ID, CauseReuse, now); err != nil {
				return nil, err
			}
			return nil, engine.Errorf(engine.KindUnauthorized, CodeRefreshReused, "",
				"this refresh token was already used; the session is revoked: sign in again")
		}
		u, err := s.store.User(ctx, sess.Org, sess.User)
		if engine.ErrorKind(err) == engine.KindNotFound {
			return nil, sessionRevoked()
		} else if err != nil {
			return nil, err
		}
		if u.Disabled {
			return nil, engine.Errorf(engine.KindForbidden, CodeUserDisabled, "", "this user is disabled")
		}
		next, err := s.randomString(32)
		if err != nil {
			return nil, err
		}
		rot.TokenHash = hashSecret(next)
		err = s.store.RotateSession(ctx, &rot, sess.Generation)
		if err == nil {
			return s.grant(&rot, u, next)
		}
		if engine.ErrorKind(err) != engine.KindConflict {
			return nil, err
		}
		// Another refresh won the compare-and-swap, or the session was
		// revoked meanwhile: look again. The token is now the one the
		// winner replaced, so within the grace period it rotates after the
		// winner's.
		if attempt == maxRotateAttempts {
			return nil, engine.Errorf(engine.KindConflict, CodeRefreshConflict, "",
				"too many concurrent refreshes of this session; retry")
		}
	}
}

// maxRotateAttempts bounds how often a refresh that loses the
// compare-and-swap looks again.
const maxRotateAttempts = 16

func sessionState(sess *Session, now time.Time) error {
	if !sess.RevokedAt.IsZero() {
		return sessionRevoked()
	}
	if !now.Before(sess.ExpiresAt) {
		return engine.Errorf(engine.KindUnauthorized, CodeSessionExpired, "", "the session has expired; sign in again")
	}
	return nil
}

func sessionRevoked() error {
	return engine.Errorf(engine.KindUnauthorized, CodeSessionRevoked, "", "the session has ended; sign in again")
}

func refreshInvalid() error {
	return engine.Errorf(engine.KindUnauthorized, CodeRefreshInvalid, "/refresh_token", "the refresh token is not valid")
}

// refreshToken is <session id>.<generation>.<secret>.<mac>, the mac binding
// the three to this server's refresh key.
func (s *Service) refreshToken(id string, gen int64, secret string) string {
	body := id + "." + strconv.FormatInt(gen, 10) + "." + secret
	m := hmac.New(sha256.New, s.cfg.RefreshKey)
	m.Write([]byte(body))
	return body + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// parseRefresh splits <session id>.<generation>.<secret>.<mac>.
func parseRefresh(tok string) (id string, gen int64, secret string, ok bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 4 || parts[0] == "" || parts[2] == "" || len(tok) > 256 {
		return "", 0, "", false
	}
	gen, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || gen < 1 {
		return "", 0, "", false
	}
	return parts[0], gen, parts[2], true
}

func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func equalHash(a, b []byte) bool { return len(a) > 0 && subtle.ConstantTimeCompare(a, b) == 1 }

// Logout ends the session an access token was minted for. Ending a session
// that has ended already succeeds.
func (s *Service) Logout(ctx context.Context, org, user, session string) error {
	if session == "" {
		return engine.Errorf(engine.KindInvalid, CodeNoSession, "", "this access token belongs to no sign-in session (an operator token)")
	}
	sess, err := s.store.Session(ctx, session)
	if err != nil {
		return err
	}
	if sess.Org != org || sess.User != user {
		return engine.Errorf(engine.KindNotFound, engine.CodeNotFound, "", "no such session")
	}
	return s.store.RevokeSession(ctx, session, CauseLogout, s.now())
}

// Active checks that a sign-in session is still live and its user enabled,
// and returns the user as the directory has it now: an access token lives
// 15 minutes, and what it says may have changed since it was minted.
func (s *Service) Active(ctx context.Context, org, user, session string) (*User, error) {
	sess, err := s.store.Session(ctx, session)
	if engine.ErrorKind(err) == engine.KindNotFound {
		return nil, sessionRevoked()
	} else if err != nil {
		return nil, err
	}
	if sess.Org != org || sess.User != user {
		return nil, sessionRevoked()
	}
	if err := sessionState(sess, s.now()); err != nil {
		return nil, err
	}
	u, err := s.store.User(ctx, org, user)
	if engine.ErrorKind(err) == engine.KindNotFound {
		return nil, sessionRevoked()
	} else if err != nil {
		return nil, err
	}
	if u.Disabled {
		return nil, engine.Errorf(engine.KindForbidden, CodeUserDisabled, "", "this user is disabled")
	}
	return u, nil
}

// RevokeDevice ends a user's sessions on one device and returns how many
// were live.
func (s *Service) RevokeDevice(ctx context.Context, org, user, device string) (int, error) {
	if _, err := s.User(ctx, org, user); err != nil {
		return 0, err
	}
	if err := checkDevice(device); err != nil {
		return 0, err
	}
	return s.store.RevokeSessions(ctx, org, user, device, CauseAdmin, s.now())
}

// Sessions lists a user's sessions, ended ones included.
func (s *Service) Sessions(ctx context.Context, org, user string) ([]*Session, error) {
	if _, err := s.User(ctx, org, user); err != nil {
		return nil, err
	}
	return s.store.Sessions(ctx, org, user)
}

// verify checks a password against a PHC string, holding one of the hash
// slots for the duration.
func (s *Service) verify(ctx context.Context, phc, password string) (ok, stale bool, err error) {
	if err := s.acquire(ctx); err != nil {
		return false, false, err
	}
	defer func() { <-s.hashes }()
	ok, stale = verifyPassword(phc, password, s.cfg.Hash)
	return ok, stale, nil
}

func (s *Service) hash(ctx context.Context, password string) (string, error) {
	if err := s.acquire(ctx); err != nil {
		return "", err
	}
	defer func() { <-s.hashes }()
	return hashPassword(password, s.cfg.Hash, s.cfg.Rand)
}

func (s *Service) acquire(ctx context.Context) error {
	select {
	case s.hashes <- struct{}{}:
		return nil
	case <-ctx.Done():
		return engine.Wrap(ctx.Err(), engine.KindUnavailable, engine.CodeUnavailable, "the server is busy; retry")
	}
}

func (s *Service) randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.cfg.Rand, b); err != nil {
		return "", fmt.Errorf("identity: read random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func checkDevice(device string) error {
	if !engine.ValidID(device) {
		return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/device_id", "device_id must be 1-128 characters of A-Z a-z 0-9 _ . : -")
	}
	return nil
}
