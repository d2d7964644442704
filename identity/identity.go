// Package identity owns who the callers of fieldsync are: organisations,
// users and their roles, teams, and the sign-in sessions of their devices. It
// knows nothing of HTTP or of any database: storage is reached through the
// Store interface declared here and implemented by the sqlite and mongodb
// packages, which both pass the contract suite in identity/identitytest.
//
// What a user may see follows from this package's data (the roles a user
// holds, the teams a manager leads) but is decided by the sync engine's scope
// rules; see docs/access.md.
package identity

import (
	"context"
	"slices"
	"time"
)

// Built-in roles. Organisations may add back-office roles of their own
// (Org.Roles); every role that is not rep, manager or admin is a back-office
// role that works a follow-up queue.
const (
	RoleRep     = "rep"
	RoleManager = "manager"
	RoleAdmin   = "admin"
)

// DefaultBackOfficeRoles are the back-office roles of the default
// responsibility matrix (../shared/product.md).
var DefaultBackOfficeRoles = []string{
	"order_desk", "credit_control", "demand_planning", "stores", "factory_planning", "logistics", "billing",
}

// Org is an organisation: the unit of tenancy. Nothing is ever shared
// between organisations.
type Org struct {
	ID       string
	Name     string
	TimeZone string   // IANA name; KPIs are computed in it
	Roles    []string // back-office roles added to the defaults
	Created  time.Time
}

// KnownRole reports whether role exists in the organisation.
func (o *Org) KnownRole(role string) bool {
	switch role {
	case RoleRep, RoleManager, RoleAdmin:
		return true
	}
	return slices.Contains(DefaultBackOfficeRoles, role) || slices.Contains(o.Roles, role)
}

// User is a person who signs in. Email is unique across the installation
// (stored lower-case) so that sign-in needs nothing else.
type User struct {
	Org          string
	ID           string
	Email        string
	Name         string
	Roles        []string
	Teams        []string // teams the user belongs to (reps)
	Leads        []string // teams the user leads (managers)
	PasswordHash string   // argon2id, PHC string format; "" means no password sign-in
	Disabled     bool
	Version      int64 // bumped by every update; stores compare it (optimistic locking)
	Created      time.Time
	Updated      time.Time
}

// HasRole reports whether the user holds role.
func (u *User) HasRole(role string) bool { return slices.Contains(u.Roles, role) }

// Team is a group of reps led by one or more managers. Membership and
// leadership are kept on the users (User.Teams, User.Leads).
type Team struct {
	Org     string
	ID      string
	Name    string
	Created time.Time
}

// Session is one device's sign-in: the refresh-token family of that device.
// Only hashes of refresh tokens are stored. Every refresh rotates the token
// (Generation+1); presenting an older generation is reuse and revokes the
// session, except for the immediately previous one within a short grace
// period (a reply lost on a bad network), see docs/access.md.
type Session struct {
	ID          string
	Org         string
	User        string
	Device      string
	Generation  int64
	TokenHash   []byte // SHA-256 of the current refresh token's secret
	PrevHash    []byte // SHA-256 of the previous generation's secret
	RotatedAt   time.Time
	Created     time.Time
	ExpiresAt   time.Time
	RevokedAt   time.Time // zero while the session is live
	RevokeCause string    // logout, admin, reuse, disabled
}

// Live reports whether the session may still refresh at now.
func (s *Session) Live(now time.Time) bool { return s.RevokedAt.IsZero() && now.Before(s.ExpiresAt) }

// UserFilter selects users in List. Zero fields select everything.
type UserFilter struct {
	Team  string // members of this team
	Leads string // managers of this team
	Role  string
	After string // users with ID > After, for paging
	Limit int    // at most this many (stores cap it at 1000)
}

// Store is what identity needs from a database. Errors are the sync
// engine's *Error kinds: KindNotFound for a missing record, KindConflict
// (codes below) for uniqueness and optimistic-locking failures.
type Store interface {
	PutOrg(ctx context.Context, o *Org) error // create or replace
	Org(ctx context.Context, id string) (*Org, error)

	// CreateUser inserts u with Version 1; CodeUserExists if (org, id) is
	// taken, CodeEmailTaken if the email is.
	CreateUser(ctx context.Context, u *User) error
	// UpdateUser replaces the user if its stored Version is u.Version, and
	// sets u.Version to the new version; CodeVersionMismatch otherwise.
	UpdateUser(ctx context.Context, u *User) error
	User(ctx context.Context, org, id string) (*User, error)
	UserByEmail(ctx context.Context, email string) (*User, error)
	Users(ctx context.Context, org string, f UserFilter) ([]*User, error)

	PutTeam(ctx context.Context, t *Team) error // create or rename
	Team(ctx context.Context, org, id string) (*Team, error)
	Teams(ctx context.Context, org string) ([]*Team, error)

	CreateSession(ctx context.Context, s *Session) error
	Session(ctx context.Context, id string) (*Session, error)
	// RotateSession replaces the session if its stored Generation is
	// fromGeneration and it is not revoked; CodeVersionMismatch otherwise.
	// It is the compare-and-swap that makes two concurrent refreshes with
	// one token produce one winner.
	RotateSession(ctx context.Context, s *Session, fromGeneration int64) error
	// RevokeSessions revokes the live sessions of a user (of one device
	// when device is not ""), returning how many it revoked.
	RevokeSessions(ctx context.Context, org, user, device, cause string, at time.Time) (int, error)
	RevokeSession(ctx context.Context, id, cause string, at time.Time) error
	Sessions(ctx context.Context, org, user string) ([]*Session, error)
	// PruneSessions deletes the sessions that expired or were revoked
	// before before, and, where a store keeps every rotation of a session,
	// the rotations superseded before it; it returns how many records it
	// deleted. A refresh token of a deleted session is then unknown
	// (refresh_token_invalid) rather than revoked.
	PruneSessions(ctx context.Context, before time.Time) (int, error)
}

// Stable error codes of this package (catalogued in docs/protocol.md).
const (
	CodeUserExists      = "user_exists"
	CodeEmailTaken      = "email_taken"
	CodeVersionMismatch = "version_mismatch"
	CodeUnknownRole     = "unknown_role"
	CodeUnknownTeam     = "unknown_team"
	CodeBadCredentials  = "bad_credentials"
	CodeUserDisabled    = "user_disabled"
	CodeSessionRevoked  = "session_revoked"
	CodeRefreshReused   = "refresh_token_reused"
	CodeLoginThrottled  = "login_rate_limited"

	CodeRefreshInvalid   = "refresh_token_invalid" // malformed, unknown or forged refresh token
	CodeRefreshConflict  = "refresh_conflict"      // refreshes of one session kept racing; retry
	CodeSessionExpired   = "session_expired"       // the session outlived its lifetime
	CodeNoSession        = "no_session"            // logout with a token that has no session
	CodePasswordTooShort = "password_too_short"
	CodeInvalidEmail     = "invalid_email"
	CodeTeamExists       = "team_exists"
	CodeUnknownTimeZone  = "unknown_time_zone"
)
