package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// Admin calls the admin API (docs/access.md) with one bearer token: the
// operator tools (fieldsync user, team, assign, import ...) speak HTTP
// through it. Unlike the device it never retries: an operator sees the
// refusal and decides. A refusal is a *RequestError.
type Admin struct {
	server, token string
	hc            *http.Client
}

// AdminTimeout bounds one admin request.
const AdminTimeout = 30 * time.Second

// NewAdmin returns a client of the server at base URL server (like
// http://127.0.0.1:8080) that authenticates with token.
func NewAdmin(server, token string) *Admin {
	return &Admin{server: strings.TrimRight(server, "/"), token: token, hc: http.DefaultClient}
}

// Do sends one request with body as JSON (nil for none) and decodes the
// reply into out. The typed methods below use it; a script-like caller may
// too, for a route they do not cover.
func (a *Admin) Do(ctx context.Context, method, path string, body, out any) error {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, AdminTimeout)
	defer cancel()
	retry, _, err := send(ctx, a.hc, a.token, request{method: method, url: a.server + path, body: b}, out)
	var re *RequestError
	if err != nil && retry && !errors.As(err, &re) {
		return fmt.Errorf("cannot reach the server at %s (is \"fieldsync serve\" running?): %w", a.server, err)
	}
	return err
}

// call is Do decoding the reply into a new T.
func call[T any](ctx context.Context, a *Admin, method, path string, body any) (T, error) {
	var out T
	err := a.Do(ctx, method, path, body, &out)
	return out, err
}

// The admin API's wire types. The server encodes its replies with them, so
// a field added here is added to the API and to every tool at once.

// User is a user as the admin API shows it (never its password hash).
type User struct {
	ID          string    `json:"id"`
	Email       string    `json:"email"`
	Name        string    `json:"name"`
	Roles       []string  `json:"roles"`
	Teams       []string  `json:"teams"`
	Leads       []string  `json:"leads"`
	Disabled    bool      `json:"disabled"`
	HasPassword bool      `json:"has_password"`
	Version     int64     `json:"version"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
}

// NewUser is the body of POST /v1/admin/users. Without a password the user
// cannot sign in until one is set.
type NewUser struct {
	ID       string   `json:"id"`
	Email    string   `json:"email"`
	Name     string   `json:"name"`
	Roles    []string `json:"roles"`
	Teams    []string `json:"teams"`
	Leads    []string `json:"leads"`
	Password string   `json:"password,omitempty"`
}

// UserChange is the body of PATCH /v1/admin/users/:id: nil fields keep
// their value.
type UserChange struct {
	Email    *string   `json:"email,omitempty"`
	Name     *string   `json:"name,omitempty"`
	Roles    *[]string `json:"roles,omitempty"`
	Teams    *[]string `json:"teams,omitempty"`
	Leads    *[]string `json:"leads,omitempty"`
	Password *string   `json:"password,omitempty"`
	Disabled *bool     `json:"disabled,omitempty"`
}

// UserFilter narrows Users; empty fields do not filter.
type UserFilter struct {
	Team, Leads, Role string
}

// Session is one device's sign-in session of a user.
type Session struct {
	ID          string     `json:"id"`
	Device      string     `json:"device_id"`
	Live        bool       `json:"live"`
	Created     time.Time  `json:"created"`
	RotatedAt   time.Time  `json:"rotated_at"`
	ExpiresAt   time.Time  `json:"expires_at"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
	RevokeCause string     `json:"revoke_cause,omitempty"`
}

// Team is a team of the organisation.
type Team struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
}

// Org is the caller's organisation.
type Org struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	TimeZone string    `json:"time_zone"`
	Roles    []string  `json:"roles"`     // back-office roles the organisation added
	AllRoles []string  `json:"all_roles"` // every role a user may hold
	Created  time.Time `json:"created"`
}

// OrgChange is the body of PUT /v1/admin/org: nil fields keep their value.
type OrgChange struct {
	Name     *string   `json:"name,omitempty"`
	TimeZone *string   `json:"time_zone,omitempty"`
	Roles    *[]string `json:"roles,omitempty"`
}

// ServiceAccount is an integration's account (docs/integrations.md): never
// a hash; the key only in the reply that made it (Key).
type ServiceAccount struct {
	ID          string     `json:"id"`
	UserID      string     `json:"user_id"` // the actor its actions record
	Name        string     `json:"name"`
	Roles       []string   `json:"roles"`
	Revoked     bool       `json:"revoked"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
	PrevKeyEnds *time.Time `json:"previous_key_valid_until,omitempty"`
	Version     int64      `json:"version"`
	Created     time.Time  `json:"created"`
	Updated     time.Time  `json:"updated"`
	Key         string     `json:"key,omitempty"`
}

// Assignment is the reply of POST /v1/admin/customers/:id/assign.
type Assignment struct {
	ID      string   `json:"id"`
	Reps    []string `json:"assigned_reps"`
	Version int64    `json:"version"`
	Changed bool     `json:"changed"`
}

// DocumentEntry is one document of POST /v1/admin/documents/:collection:
// the fields to set, created when the id is new.
type DocumentEntry struct {
	ID     string         `json:"id"`
	Fields map[string]any `json:"fields"`
}

// DocumentResult is the engine's outcome for one imported document, with
// its id and, when applied, what the write did: created, updated,
// unchanged.
type DocumentResult struct {
	ID     string `json:"id"`
	Change string `json:"change,omitempty"`
	engine.Outcome
}

// Org returns the caller's organisation.
func (a *Admin) Org(ctx context.Context) (Org, error) {
	return call[Org](ctx, a, "GET", "/v1/admin/org", nil)
}

// SetOrg changes the organisation.
func (a *Admin) SetOrg(ctx context.Context, ch OrgChange) (Org, error) {
	return call[Org](ctx, a, "PUT", "/v1/admin/org", ch)
}

// AddUser creates a user.
func (a *Admin) AddUser(ctx context.Context, u NewUser) (User, error) {
	return call[User](ctx, a, "POST", "/v1/admin/users", u)
}

// User returns one user.
func (a *Admin) User(ctx context.Context, id string) (User, error) {
	return call[User](ctx, a, "GET", "/v1/admin/users/"+url.PathEscape(id), nil)
}

// Users returns every user f selects, reading all pages.
func (a *Admin) Users(ctx context.Context, f UserFilter) ([]User, error) {
	all := []User{}
	after := ""
	for {
		q := url.Values{"limit": {"1000"}}
		for k, v := range map[string]string{"team": f.Team, "leads": f.Leads, "role": f.Role, "after": after} {
			if v != "" {
				q.Set(k, v)
			}
		}
		var page struct {
			Users []User `json:"users"`
			Next  string `json:"next"`
		}
		if err := a.Do(ctx, "GET", "/v1/admin/users?"+q.Encode(), nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Users...)
		if page.Next == "" {
			return all, nil
		}
		after = page.Next
	}
}

// UpdateUser changes what ch sets.
func (a *Admin) UpdateUser(ctx context.Context, id string, ch UserChange) (User, error) {
	return call[User](ctx, a, "PATCH", "/v1/admin/users/"+url.PathEscape(id), ch)
}

// SetUserDisabled disables a user (ending their sessions) or enables them.
func (a *Admin) SetUserDisabled(ctx context.Context, id string, disabled bool) (User, error) {
	verb := "enable"
	if disabled {
		verb = "disable"
	}
	return call[User](ctx, a, "POST", "/v1/admin/users/"+url.PathEscape(id)+"/"+verb, nil)
}

// Sessions lists a user's sign-in sessions.
func (a *Admin) Sessions(ctx context.Context, user string) ([]Session, error) {
	var out struct {
		Sessions []Session `json:"sessions"`
	}
	err := a.Do(ctx, "GET", "/v1/admin/users/"+url.PathEscape(user)+"/sessions", nil, &out)
	return out.Sessions, err
}

// RevokeDevice ends a user's sessions on one device and returns how many.
func (a *Admin) RevokeDevice(ctx context.Context, user, device string) (int, error) {
	var out struct {
		Revoked int `json:"revoked"`
	}
	err := a.Do(ctx, "DELETE", "/v1/admin/users/"+url.PathEscape(user)+"/devices/"+url.PathEscape(device), nil, &out)
	return out.Revoked, err
}

// AddTeam creates a team.
func (a *Admin) AddTeam(ctx context.Context, id, name string) (Team, error) {
	return call[Team](ctx, a, "POST", "/v1/admin/teams", map[string]string{"id": id, "name": name})
}

// Teams lists the organisation's teams.
func (a *Admin) Teams(ctx context.Context) ([]Team, error) {
	var out struct {
		Teams []Team `json:"teams"`
	}
	err := a.Do(ctx, "GET", "/v1/admin/teams", nil, &out)
	return out.Teams, err
}

// RenameTeam changes a team's display name.
func (a *Admin) RenameTeam(ctx context.Context, id, name string) (Team, error) {
	return call[Team](ctx, a, "PATCH", "/v1/admin/teams/"+url.PathEscape(id), map[string]string{"name": name})
}

// Assign sets the reps a customer is assigned to; its history moves with it.
func (a *Admin) Assign(ctx context.Context, customer string, reps []string) (Assignment, error) {
	return call[Assignment](ctx, a, "POST", "/v1/admin/customers/"+url.PathEscape(customer)+"/assign", map[string]any{"reps": reps})
}

// WriteDocuments creates or updates documents of an importable collection:
// one result per entry, in order.
func (a *Admin) WriteDocuments(ctx context.Context, coll string, docs []DocumentEntry) ([]DocumentResult, error) {
	var out struct {
		Results []DocumentResult `json:"results"`
	}
	err := a.Do(ctx, "POST", "/v1/admin/documents/"+url.PathEscape(coll), map[string]any{"docs": docs}, &out)
	return out.Results, err
}

// AddServiceAccount creates a service account; the reply holds its key,
// shown this once.
func (a *Admin) AddServiceAccount(ctx context.Context, name string, roles []string) (ServiceAccount, error) {
	return call[ServiceAccount](ctx, a, "POST", "/v1/admin/service-accounts", map[string]any{"name": name, "roles": roles})
}

// ServiceAccounts lists the organisation's service accounts.
func (a *Admin) ServiceAccounts(ctx context.Context) ([]ServiceAccount, error) {
	var out struct {
		ServiceAccounts []ServiceAccount `json:"service_accounts"`
	}
	err := a.Do(ctx, "GET", "/v1/admin/service-accounts", nil, &out)
	return out.ServiceAccounts, err
}

// RotateServiceAccount issues a new key; the current one keeps working for
// overlap. The reply holds the new key, shown this once.
func (a *Admin) RotateServiceAccount(ctx context.Context, id string, overlap time.Duration) (ServiceAccount, error) {
	return call[ServiceAccount](ctx, a, "POST", "/v1/admin/service-accounts/"+url.PathEscape(id)+"/rotate",
		map[string]any{"overlap_seconds": int64(overlap / time.Second)})
}

// RevokeServiceAccount ends a service account's keys at once.
func (a *Admin) RevokeServiceAccount(ctx context.Context, id string) (ServiceAccount, error) {
	return call[ServiceAccount](ctx, a, "POST", "/v1/admin/service-accounts/"+url.PathEscape(id)+"/revoke", nil)
}
