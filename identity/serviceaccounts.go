package identity

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// ServiceAccount is a non-person caller of one organisation (an ERP
// connector, a helpdesk): it holds roles like a user and authenticates with
// an API key instead of a password. Only SHA-256 hashes of keys are stored:
// a key is 32 random bytes, so a fast hash is enough (there is nothing to
// guess), and the key's account id lets the server find the record without
// a scan.
//
// Rotating keeps the previous key valid until PrevUntil (the overlap during
// which the integration switches keys); only the latest previous key is
// kept. Revoking ends every key at once.
type ServiceAccount struct {
	Org       string
	ID        string // a ULID, unique across the installation
	Name      string
	Roles     []string
	KeyHash   []byte // SHA-256 of the current key's secret
	PrevHash  []byte // SHA-256 of the previous key's secret, valid until PrevUntil
	PrevUntil time.Time
	RevokedAt time.Time // zero while the account is live
	Version   int64     // bumped by every write; stores compare it
	Created   time.Time
	Updated   time.Time
}

// UserID is the id the account acts under: every document, follow-up and
// log line it touches records it as the actor.
func (a *ServiceAccount) UserID() string { return ServiceAccountPrefix + a.ID }

// Revoked reports whether the account's keys were revoked.
func (a *ServiceAccount) Revoked() bool { return !a.RevokedAt.IsZero() }

// ServiceAccountPrefix starts the user id of every service account; a user
// id with it never names a person.
const ServiceAccountPrefix = "svc:"

// APIKeyPrefix starts every API key: "fsk_<account id>_<secret>".
const APIKeyPrefix = "fsk_"

// DefaultKeyOverlap is how long a rotated key keeps working when the admin
// does not say.
const DefaultKeyOverlap = 24 * time.Hour

// MaxKeyOverlap bounds the overlap of a rotation.
const MaxKeyOverlap = 30 * 24 * time.Hour

// ServiceAccountStore is what service accounts need from a database, next
// to Store. Errors are the sync engine's kinds.
type ServiceAccountStore interface {
	// PutServiceAccount creates a (a.Version 0) or replaces it if its
	// stored Version is a.Version, then sets a.Version to the new version.
	// Creating a taken id or replacing a changed account is
	// CodeVersionMismatch; replacing a missing one is not found.
	PutServiceAccount(ctx context.Context, a *ServiceAccount) error
	// ServiceAccount returns the account with this id, of any organisation.
	ServiceAccount(ctx context.Context, id string) (*ServiceAccount, error)
	// ServiceAccounts lists an organisation's accounts in id order.
	ServiceAccounts(ctx context.Context, org string) ([]*ServiceAccount, error)
}

// Codes of service accounts.
const (
	CodeServiceAccountRole    = "service_account_role"    // a role a service account may not hold
	CodeServiceAccountRevoked = "service_account_revoked" // a revoked account cannot get a new key
)

func (s *Service) accountStore() (ServiceAccountStore, error) {
	st, ok := s.store.(ServiceAccountStore)
	if !ok {
		return nil, engine.Errorf(engine.KindUnavailable, engine.CodeUnavailable, "", "this store keeps no service accounts")
	}
	return st, nil
}

// AddServiceAccount creates a service account in org and returns it with
// its API key, which is shown this once.
func (s *Service) AddServiceAccount(ctx context.Context, org, name string, roles []string) (*ServiceAccount, string, error) {
	st, err := s.accountStore()
	if err != nil {
		return nil, "", err
	}
	o, err := s.orgOrCreate(ctx, org)
	if err != nil {
		return nil, "", err
	}
	if err := checkName(name, true); err != nil {
		return nil, "", err
	}
	if err := checkAccountRoles(o, roles); err != nil {
		return nil, "", err
	}
	now := s.now()
	id, err := ulid.New(ulid.Timestamp(now), s.cfg.Rand)
	if err != nil {
		return nil, "", err
	}
	a := &ServiceAccount{Org: org, ID: id.String(), Name: strings.TrimSpace(name), Roles: roles, Created: now, Updated: now}
	key, hash, err := newAPIKey(s.cfg.Rand, a.ID)
	if err != nil {
		return nil, "", err
	}
	a.KeyHash = hash
	if err := st.PutServiceAccount(ctx, a); err != nil {
		return nil, "", err
	}
	return a, key, nil
}

func checkAccountRoles(o *Org, roles []string) error {
	if len(roles) == 0 {
		return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/roles", "a service account needs at least one role")
	}
	for i, r := range roles {
		ptr := "/roles/" + strconv.Itoa(i)
		if !o.KnownRole(r) {
			return engine.Errorf(engine.KindInvalid, CodeUnknownRole, ptr, "role %q does not exist in the organisation", r)
		}
		// An integration works queues and documents; administering the
		// organisation (and minting more keys) stays with people.
		if r == RoleAdmin {
			return engine.Errorf(engine.KindInvalid, CodeServiceAccountRole, ptr, "a service account cannot hold the admin role")
		}
	}
	return nil
}

// ServiceAccount returns one of org's accounts; another organisation's is
// not found, exactly like a missing one.
func (s *Service) ServiceAccount(ctx context.Context, org, id string) (*ServiceAccount, error) {
	st, err := s.accountStore()
	if err != nil {
		return nil, err
	}
	a, err := st.ServiceAccount(ctx, id)
	if engine.ErrorKind(err) == engine.KindNotFound || (err == nil && a.Org != org) {
		return nil, engine.Errorf(engine.KindNotFound, engine.CodeNotFound, "", "no service account %q", id)
	}
	return a, err
}

// ServiceAccounts lists org's accounts.
func (s *Service) ServiceAccounts(ctx context.Context, org string) ([]*ServiceAccount, error) {
	st, err := s.accountStore()
	if err != nil {
		return nil, err
	}
	return st.ServiceAccounts(ctx, org)
}

// RotateServiceAccountKey gives the account a new key (returned, shown
// once); the current key keeps working for overlap (0: it stops at once).
func (s *Service) RotateServiceAccountKey(ctx context.Context, org, id string, overlap time.Duration) (*ServiceAccount, string, error) {
	if overlap < 0 || overlap > MaxKeyOverlap {
		return nil, "", engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/overlap_seconds",
			"the overlap must be 0 to %d seconds", int(MaxKeyOverlap/time.Second))
	}
	var key string
	a, err := s.updateAccount(ctx, org, id, func(a *ServiceAccount) error {
		if a.Revoked() {
			return engine.Errorf(engine.KindConflict, CodeServiceAccountRevoked, "", "the service account is revoked: create a new one")
		}
		k, hash, err := newAPIKey(s.cfg.Rand, a.ID)
		if err != nil {
			return err
		}
		key = k
		a.PrevHash, a.PrevUntil = a.KeyHash, s.now().Add(overlap)
		if overlap == 0 {
			a.PrevHash, a.PrevUntil = nil, time.Time{}
		}
		a.KeyHash = hash
		return nil
	})
	return a, key, err
}

// RevokeServiceAccount ends every key of the account at once.
func (s *Service) RevokeServiceAccount(ctx context.Context, org, id string) (*ServiceAccount, error) {
	return s.updateAccount(ctx, org, id, func(a *ServiceAccount) error {
		if !a.Revoked() {
			a.RevokedAt = s.now()
		}
		return nil
	})
}

func (s *Service) updateAccount(ctx context.Context, org, id string, change func(*ServiceAccount) error) (*ServiceAccount, error) {
	st, err := s.accountStore()
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		a, err := s.ServiceAccount(ctx, org, id)
		if err != nil {
			return nil, err
		}
		if err := change(a); err != nil {
			return nil, err
		}
		a.Updated = s.now()
		err = st.PutServiceAccount(ctx, a)
		if engine.ErrorCode(err) == CodeVersionMismatch && attempt < 4 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return a, nil
	}
}

// VerifyKey authenticates an API key: the caller is the account's user id
// with its roles. Every failure (malformed, unknown, wrong secret, expired
// overlap, revoked) is the same unauthenticated error, and the key is never
// part of an error or a log line.
func (s *Service) VerifyKey(ctx context.Context, key string) (engine.Actor, error) {
	bad := engine.Errorf(engine.KindUnauthorized, engine.CodeUnauthenticated, "", "the API key is not valid")
	id, secret, ok := strings.Cut(strings.TrimPrefix(key, APIKeyPrefix), "_")
	if !strings.HasPrefix(key, APIKeyPrefix) || !ok || len(id) != 26 || secret == "" {
		return engine.Actor{}, bad
	}
	st, err := s.accountStore()
	if err != nil {
		return engine.Actor{}, err
	}
	a, err := st.ServiceAccount(ctx, id)
	if engine.ErrorKind(err) == engine.KindNotFound {
		return engine.Actor{}, bad
	}
	if err != nil {
		return engine.Actor{}, err
	}
	h := sha256.Sum256([]byte(secret))
	cur := subtle.ConstantTimeCompare(h[:], a.KeyHash) == 1
	prev := len(a.PrevHash) > 0 && subtle.ConstantTimeCompare(h[:], a.PrevHash) == 1 && s.now().Before(a.PrevUntil)
	if a.Revoked() || !(cur || prev) {
		return engine.Actor{}, bad
	}
	return engine.Actor{Org: a.Org, User: a.UserID(), Roles: a.Roles}, nil
}

// serviceMember is Member for a service account's user id.
func (s *Service) serviceMember(ctx context.Context, org, user string) (engine.Member, bool, error) {
	a, err := s.ServiceAccount(ctx, org, strings.TrimPrefix(user, ServiceAccountPrefix))
	if engine.ErrorKind(err) == engine.KindNotFound {
		return engine.Member{}, false, nil
	}
	if err != nil {
		return engine.Member{}, false, err
	}
	return engine.Member{Roles: a.Roles, Disabled: a.Revoked()}, true, nil
}

func newAPIKey(r io.Reader, id string) (key string, hash []byte, err error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", nil, err
	}
	secret := base64.RawURLEncoding.EncodeToString(b)
	h := sha256.Sum256([]byte(secret))
	return APIKeyPrefix + id + "_" + secret, h[:], nil
}
