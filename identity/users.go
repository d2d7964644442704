package identity

import (
	"context"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// NewUser is what an admin gives to create a user. ID may be empty: the
// service then makes a ULID. Password may be empty: the user then cannot
// sign in with a password until one is set.
type NewUser struct {
	ID       string
	Email    string
	Name     string
	Roles    []string
	Teams    []string
	Leads    []string
	Password string
}

// UserChange is a partial update of a user: nil fields keep their value.
type UserChange struct {
	Email    *string
	Name     *string
	Roles    *[]string
	Teams    *[]string
	Leads    *[]string
	Password *string
	Disabled *bool
}

// AddUser creates a user in org, creating the organisation with the
// defaults (time zone UTC) when it is the first.
func (s *Service) AddUser(ctx context.Context, org string, nu NewUser) (*User, error) {
	o, err := s.store.Org(ctx, org)
	newOrg := engine.ErrorKind(err) == engine.KindNotFound
	if newOrg {
		o = defaultOrg(org, s.now())
	} else if err != nil {
		return nil, err
	}
	now := s.now()
	u := &User{Org: org, ID: nu.ID, Email: normalizeEmail(nu.Email), Name: strings.TrimSpace(nu.Name),
		Roles: nu.Roles, Teams: nu.Teams, Leads: nu.Leads, Created: now, Updated: now}
	if u.ID == "" {
		id, err := ulid.New(ulid.Timestamp(now), s.cfg.Rand)
		if err != nil {
			return nil, err
		}
		u.ID = id.String()
	} else if err := checkID(u.ID, "/id"); err != nil {
		return nil, err
	}
	if err := s.checkUser(ctx, o, u); err != nil {
		return nil, err
	}
	if nu.Password != "" {
		if u.PasswordHash, err = s.newPasswordHash(ctx, nu.Password); err != nil {
			return nil, err
		}
	}
	if newOrg {
		if err := s.store.PutOrg(ctx, o); err != nil {
			return nil, err
		}
	}
	if err := s.store.CreateUser(ctx, u); err != nil {
		return nil, err
	}
	return u, nil
}

// UpdateUser applies ch to a user. Disabling ends the user's sessions, and
// so does a new password.
func (s *Service) UpdateUser(ctx context.Context, org, id string, ch UserChange) (*User, error) {
	o, err := s.Org(ctx, org)
	if err != nil {
		return nil, err
	}
	var phc string
	if ch.Password != nil {
		if phc, err = s.newPasswordHash(ctx, *ch.Password); err != nil {
			return nil, err
		}
	}
	// Optimistic locking: a concurrent update makes us read and apply again.
	for attempt := 0; ; attempt++ {
		u, err := s.User(ctx, org, id)
		if err != nil {
			return nil, err
		}
		nu := *u
		if ch.Email != nil {
			nu.Email = normalizeEmail(*ch.Email)
		}
		if ch.Name != nil {
			nu.Name = strings.TrimSpace(*ch.Name)
		}
		if ch.Roles != nil {
			nu.Roles = *ch.Roles
		}
		if ch.Teams != nil {
			nu.Teams = *ch.Teams
		}
		if ch.Leads != nil {
			nu.Leads = *ch.Leads
		}
		if ch.Password != nil {
			nu.PasswordHash = phc
		}
		if ch.Disabled != nil {
			nu.Disabled = *ch.Disabled
		}
		if err := s.checkUser(ctx, o, &nu); err != nil {
			return nil, err
		}
		nu.Updated = s.now()
		err = s.store.UpdateUser(ctx, &nu)
		if engine.ErrorCode(err) == CodeVersionMismatch && attempt < 4 {
			continue
		}
		if err != nil {
			return nil, err
		}
		cause := ""
		switch {
		case nu.Disabled && !u.Disabled:
			cause = CauseDisabled
		case ch.Password != nil:
			cause = CausePassword
		}
		if cause != "" {
			if _, err := s.store.RevokeSessions(ctx, org, id, "", cause, s.now()); err != nil {
				return nil, err
			}
		}
		return &nu, nil
	}
}

// DisableUser stops a user from signing in and ends all their sessions.
func (s *Service) DisableUser(ctx context.Context, org, id string) (*User, error) {
	t := true
	return s.UpdateUser(ctx, org, id, UserChange{Disabled: &t})
}

// EnableUser lets a disabled user sign in again.
func (s *Service) EnableUser(ctx context.Context, org, id string) (*User, error) {
	f := false
	return s.UpdateUser(ctx, org, id, UserChange{Disabled: &f})
}

// User returns one user of org; a user of another organisation is not found.
func (s *Service) User(ctx context.Context, org, id string) (*User, error) {
	u, err := s.store.User(ctx, org, id)
	if engine.ErrorKind(err) == engine.KindNotFound {
		return nil, engine.Errorf(engine.KindNotFound, engine.CodeNotFound, "", "no user %q", id)
	}
	return u, err
}

// ListUsers lists org's users in id order.
func (s *Service) ListUsers(ctx context.Context, org string, f UserFilter) ([]*User, error) {
	return s.store.Users(ctx, org, f)
}

// AddTeam creates a team; CodeTeamExists if the id is taken.
func (s *Service) AddTeam(ctx context.Context, org, id, name string) (*Team, error) {
	if err := checkID(id, "/id"); err != nil {
		return nil, err
	}
	if err := checkName(name, true); err != nil {
		return nil, err
	}
	if _, err := s.orgOrCreate(ctx, org); err != nil {
		return nil, err
	}
	if _, err := s.store.Team(ctx, org, id); err == nil {
		return nil, engine.Errorf(engine.KindConflict, CodeTeamExists, "/id", "team %q exists", id)
	} else if engine.ErrorKind(err) != engine.KindNotFound {
		return nil, err
	}
	t := &Team{Org: org, ID: id, Name: strings.TrimSpace(name), Created: s.now()}
	if err := s.store.PutTeam(ctx, t); err != nil {
		return nil, err
	}
	return t, nil
}

// RenameTeam renames an existing team.
func (s *Service) RenameTeam(ctx context.Context, org, id, name string) (*Team, error) {
	if err := checkName(name, true); err != nil {
		return nil, err
	}
	t, err := s.store.Team(ctx, org, id)
	if engine.ErrorKind(err) == engine.KindNotFound {
		return nil, engine.Errorf(engine.KindNotFound, engine.CodeNotFound, "", "no team %q", id)
	} else if err != nil {
		return nil, err
	}
	t.Name = strings.TrimSpace(name)
	if err := s.store.PutTeam(ctx, t); err != nil {
		return nil, err
	}
	return t, nil
}

// ListTeams lists org's teams.
func (s *Service) ListTeams(ctx context.Context, org string) ([]*Team, error) {
	return s.store.Teams(ctx, org)
}

// Org returns the organisation, or its defaults when nothing was stored yet.
func (s *Service) Org(ctx context.Context, id string) (*Org, error) {
	o, err := s.store.Org(ctx, id)
	if engine.ErrorKind(err) == engine.KindNotFound {
		return defaultOrg(id, time.Time{}), nil
	}
	return o, err
}

// OrgChange is a partial update of an organisation: nil fields keep their
// value.
type OrgChange struct {
	Name     *string
	TimeZone *string   // an IANA name
	Roles    *[]string // back-office roles added to the defaults
}

// PutOrg changes an organisation, creating it if needed.
func (s *Service) PutOrg(ctx context.Context, id string, ch OrgChange) (*Org, error) {
	o, err := s.orgOrCreate(ctx, id)
	if err != nil {
		return nil, err
	}
	if ch.Name != nil {
		if err := checkName(*ch.Name, true); err != nil {
			return nil, err
		}
		o.Name = strings.TrimSpace(*ch.Name)
	}
	if ch.TimeZone != nil {
		if _, err := time.LoadLocation(*ch.TimeZone); err != nil || *ch.TimeZone == "" || *ch.TimeZone == "Local" {
			return nil, engine.Errorf(engine.KindInvalid, CodeUnknownTimeZone, "/time_zone",
				"%q is not an IANA time zone name (like Europe/Berlin or Asia/Kolkata)", *ch.TimeZone)
		}
		o.TimeZone = *ch.TimeZone
	}
	if ch.Roles != nil {
		var roles []string
		for i, r := range *ch.Roles {
			if !validRoleName(r) {
				return nil, engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, fmt.Sprintf("/roles/%d", i),
					"a role name is 1 to 64 characters of a-z, 0-9 and _")
			}
			builtin := Org{}
			if !builtin.KnownRole(r) && !slices.Contains(roles, r) {
				roles = append(roles, r)
			}
		}
		o.Roles = roles
	}
	if err := s.store.PutOrg(ctx, o); err != nil {
		return nil, err
	}
	return o, nil
}

func defaultOrg(id string, now time.Time) *Org {
	return &Org{ID: id, Name: id, TimeZone: "UTC", Created: now}
}

func (s *Service) orgOrCreate(ctx context.Context, id string) (*Org, error) {
	o, err := s.store.Org(ctx, id)
	if engine.ErrorKind(err) != engine.KindNotFound {
		return o, err
	}
	o = defaultOrg(id, s.now())
	return o, s.store.PutOrg(ctx, o)
}

// checkUser validates what an admin may set on a user.
func (s *Service) checkUser(ctx context.Context, o *Org, u *User) error {
	if err := checkEmail(u.Email); err != nil {
		return err
	}
	if err := checkName(u.Name, false); err != nil {
		return err
	}
	if len(u.Roles) == 0 {
		return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/roles", "a user needs at least one role")
	}
	for i, r := range u.Roles {
		if !o.KnownRole(r) {
			return engine.Errorf(engine.KindInvalid, CodeUnknownRole, fmt.Sprintf("/roles/%d", i),
				"%q is not a role of this organisation", r)
		}
	}
	for _, l := range []struct {
		field string
		ids   []string
	}{{"teams", u.Teams}, {"leads", u.Leads}} {
		for i, id := range l.ids {
			_, err := s.store.Team(ctx, u.Org, id)
			if engine.ErrorKind(err) == engine.KindNotFound {
				return engine.Errorf(engine.KindInvalid, CodeUnknownTeam, fmt.Sprintf("/%s/%d", l.field, i), "no team %q", id)
			} else if err != nil {
				return err
			}
		}
	}
	u.Roles, u.Teams, u.Leads = dedupe(u.Roles), dedupe(u.Teams), dedupe(u.Leads)
	return nil
}

func (s *Service) newPasswordHash(ctx context.Context, password string) (string, error) {
	if utf8.RuneCountInString(password) < MinPasswordLen {
		return "", engine.Errorf(engine.KindInvalid, CodePasswordTooShort, "/password",
			"a password needs at least %d characters", MinPasswordLen)
	}
	if len(password) > 1024 {
		return "", engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/password", "a password has at most 1024 bytes")
	}
	return s.hash(ctx, password)
}

func normalizeEmail(e string) string { return strings.ToLower(strings.TrimSpace(e)) }

func checkEmail(e string) error {
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || a.Name != "" || len(e) > 254 || !strings.Contains(e[strings.LastIndex(e, "@")+1:], ".") {
		return engine.Errorf(engine.KindInvalid, CodeInvalidEmail, "/email", "%q is not an email address", e)
	}
	return nil
}

func checkName(n string, required bool) error {
	n = strings.TrimSpace(n)
	if (required && n == "") || utf8.RuneCountInString(n) > 200 {
		return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/name", "name must be 1 to 200 characters")
	}
	return nil
}

// checkID accepts the ids documents use: 1-128 of [A-Za-z0-9_.:-].
func checkID(id, pointer string) error {
	ok := id != "" && len(id) <= 128
	for i := 0; ok && i < len(id); i++ {
		c := id[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_.:-", c) >= 0
	}
	if !ok {
		return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, pointer, "an id is 1 to 128 characters of A-Z, a-z, 0-9, _ . : -")
	}
	return nil
}

func validRoleName(r string) bool {
	if r == "" || len(r) > 64 {
		return false
	}
	for i := 0; i < len(r); i++ {
		if c := r[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func dedupe(xs []string) []string {
	var out []string
	for _, x := range xs {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}
