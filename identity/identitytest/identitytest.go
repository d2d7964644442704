// Package identitytest is the contract suite that every identity.Store
// adapter (SQLite and MongoDB) runs from one source: organisations, users
// with optimistic locking and installation-wide unique emails, teams, and
// device sessions whose rotation is a compare-and-swap with one winner.
//
// Stores keep times to the millisecond: the suite compares times with
// time.Equal after truncating both sides to a millisecond, and any location.
//
// It imports identity and the sync engine's error kinds, never a store
// adapter: adapters import it from their own tests.
package identitytest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// Run runs the contract suite; open returns a fresh, empty store that the
// adapter closes when the test ends.
func Run(t *testing.T, open func(t *testing.T) identity.Store) {
	cases := []struct {
		name string
		fn   func(f *fixture)
	}{
		{"Orgs", testOrgs},
		{"CreateUser", testCreateUser},
		{"EmailUnique", testEmailUnique},
		{"EmailUniqueConcurrent", testEmailUniqueConcurrent},
		{"UpdateUser", testUpdateUser},
		{"UpdateUserEmail", testUpdateUserEmail},
		{"TenantIsolation", testTenantIsolation},
		{"UsersFilter", testUsersFilter},
		{"UsersPaging", testUsersPaging},
		{"UsersCap", testUsersCap},
		{"Teams", testTeams},
		{"Sessions", testSessions},
		{"RotateSession", testRotateSession},
		{"RotateSessionRace", testRotateSessionRace},
		{"RevokeSession", testRevokeSession},
		{"RevokeSessions", testRevokeSessions},
		{"PruneSessions", testPruneSessions},
		{"ServiceAccounts", testServiceAccounts},
		{"ServiceAccountRace", testServiceAccountRace},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(&fixture{t: t, ctx: context.Background(), s: open(t)})
		})
	}
}

// The organisations of the scenarios.
const (
	orgA = "org-acme"
	orgB = "org-globex"
)

// fixture is one subtest's store.
type fixture struct {
	t   *testing.T
	ctx context.Context
	s   identity.Store
}

// at is a time with sub-millisecond digits in a zone other than UTC, so a
// store that loses the instant or keeps more than it promises shows.
func at(minute int) time.Time {
	return time.Date(2026, 11, 29, 10, minute, 7, 123_456_789, time.FixedZone("IST", 5*3600+1800))
}

func (f *fixture) createUser(u *identity.User) *identity.User {
	f.t.Helper()
	if err := f.s.CreateUser(f.ctx, u); err != nil {
		f.t.Fatalf("CreateUser(%s/%s): %v", u.Org, u.ID, err)
	}
	return u
}

func (f *fixture) user(org, id string) *identity.User {
	f.t.Helper()
	u, err := f.s.User(f.ctx, org, id)
	if err != nil {
		f.t.Fatalf("User(%s, %s): %v", org, id, err)
	}
	return u
}

// newUser is a user of org with every field set.
func newUser(org, id, email string) *identity.User {
	return &identity.User{Org: org, ID: id, Email: email, Name: "Name of " + id,
		Roles: []string{identity.RoleRep}, Teams: []string{"t-north"},
		PasswordHash: "$argon2id$v=19$m=65536,t=1,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
		Created:      at(1), Updated: at(2)}
}

func (f *fixture) createSession(s *identity.Session) *identity.Session {
	f.t.Helper()
	if err := f.s.CreateSession(f.ctx, s); err != nil {
		f.t.Fatalf("CreateSession(%s): %v", s.ID, err)
	}
	return s
}

func (f *fixture) session(id string) *identity.Session {
	f.t.Helper()
	s, err := f.s.Session(f.ctx, id)
	if err != nil {
		f.t.Fatalf("Session(%s): %v", id, err)
	}
	return s
}

// hash is a distinct 32-byte value, standing in for a SHA-256.
func hash(seed string) []byte {
	h := bytes.Repeat([]byte{0}, 32)
	copy(h, seed)
	h[31] = 0xff // a non-ASCII byte that must survive too
	return h
}

func newSession(id, org, user, device string) *identity.Session {
	return &identity.Session{ID: id, Org: org, User: user, Device: device, Generation: 1,
		TokenHash: hash("token-1-" + id), RotatedAt: at(3), Created: at(3), ExpiresAt: at(3).Add(30 * 24 * time.Hour)}
}

// Assertions.

func sameTime(a, b time.Time) bool {
	return a.Truncate(time.Millisecond).Equal(b.Truncate(time.Millisecond))
}

// wantErr checks that err is an *engine.Error of the kind and code.
func wantErr(t *testing.T, what string, err error, kind engine.Kind, code string) {
	t.Helper()
	var e *engine.Error
	if !errors.As(err, &e) {
		t.Errorf("%s: error = %v, want *engine.Error %s (kind %s)", what, err, code, kind)
		return
	}
	if e.Kind != kind || e.Code != code {
		t.Errorf("%s: error = %v (kind %s), want %s (kind %s)", what, err, e.Kind, code, kind)
	}
}

func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	wantErr(t, what, err, engine.KindNotFound, engine.CodeNotFound)
}

// userDiff lists the fields in which got differs from want.
func userDiff(got, want *identity.User) []string {
	var d []string
	cmp := func(name string, ok bool, g, w any) {
		if !ok {
			d = append(d, fmt.Sprintf("%s = %v, want %v", name, g, w))
		}
	}
	cmp("Org", got.Org == want.Org, got.Org, want.Org)
	cmp("ID", got.ID == want.ID, got.ID, want.ID)
	cmp("Email", got.Email == want.Email, got.Email, want.Email)
	cmp("Name", got.Name == want.Name, got.Name, want.Name)
	cmp("Roles", slices.Equal(got.Roles, want.Roles), got.Roles, want.Roles)
	cmp("Teams", slices.Equal(got.Teams, want.Teams), got.Teams, want.Teams)
	cmp("Leads", slices.Equal(got.Leads, want.Leads), got.Leads, want.Leads)
	cmp("PasswordHash", got.PasswordHash == want.PasswordHash, got.PasswordHash, want.PasswordHash)
	cmp("Disabled", got.Disabled == want.Disabled, got.Disabled, want.Disabled)
	cmp("Version", got.Version == want.Version, got.Version, want.Version)
	cmp("Created", sameTime(got.Created, want.Created), got.Created, want.Created)
	cmp("Updated", sameTime(got.Updated, want.Updated), got.Updated, want.Updated)
	return d
}

func wantUser(t *testing.T, what string, got, want *identity.User) {
	t.Helper()
	if d := userDiff(got, want); len(d) > 0 {
		t.Errorf("%s: %v", what, d)
	}
}

func sessionDiff(got, want *identity.Session) []string {
	var d []string
	cmp := func(name string, ok bool, g, w any) {
		if !ok {
			d = append(d, fmt.Sprintf("%s = %v, want %v", name, g, w))
		}
	}
	cmp("ID", got.ID == want.ID, got.ID, want.ID)
	cmp("Org", got.Org == want.Org, got.Org, want.Org)
	cmp("User", got.User == want.User, got.User, want.User)
	cmp("Device", got.Device == want.Device, got.Device, want.Device)
	cmp("Generation", got.Generation == want.Generation, got.Generation, want.Generation)
	cmp("TokenHash", bytes.Equal(got.TokenHash, want.TokenHash), got.TokenHash, want.TokenHash)
	cmp("PrevHash", bytes.Equal(got.PrevHash, want.PrevHash), got.PrevHash, want.PrevHash)
	cmp("RotatedAt", sameTime(got.RotatedAt, want.RotatedAt), got.RotatedAt, want.RotatedAt)
	cmp("Created", sameTime(got.Created, want.Created), got.Created, want.Created)
	cmp("ExpiresAt", sameTime(got.ExpiresAt, want.ExpiresAt), got.ExpiresAt, want.ExpiresAt)
	cmp("RevokedAt", sameTime(got.RevokedAt, want.RevokedAt) && got.RevokedAt.IsZero() == want.RevokedAt.IsZero(),
		got.RevokedAt, want.RevokedAt)
	cmp("RevokeCause", got.RevokeCause == want.RevokeCause, got.RevokeCause, want.RevokeCause)
	return d
}

func wantSession(t *testing.T, what string, got, want *identity.Session) {
	t.Helper()
	if d := sessionDiff(got, want); len(d) > 0 {
		t.Errorf("%s: %v", what, d)
	}
}

func userIDs(us []*identity.User) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.ID
	}
	return out
}

// testPruneSessions: sessions that ended before the mark go, live ones and
// their current state stay, even after many rotations.
func testPruneSessions(f *fixture) {
	live := f.createSession(newSession("s-live", orgA, "u-1", "d-1"))
	for g := int64(1); g <= 5; g++ {
		next := *f.session(live.ID)
		next.Generation, next.TokenHash, next.RotatedAt = g+1, hash(fmt.Sprintf("token-%d", g+1)), at(3+int(g))
		if err := f.s.RotateSession(f.ctx, &next, g); err != nil {
			f.t.Fatalf("RotateSession from %d: %v", g, err)
		}
	}
	revoked := f.createSession(newSession("s-revoked", orgA, "u-1", "d-2"))
	if err := f.s.RevokeSession(f.ctx, revoked.ID, "logout", at(4)); err != nil {
		f.t.Fatal(err)
	}
	expired := newSession("s-expired", orgA, "u-1", "d-3")
	expired.ExpiresAt = at(5)
	f.createSession(expired)
	late := f.createSession(newSession("s-revoked-late", orgA, "u-1", "d-4"))
	if err := f.s.RevokeSession(f.ctx, late.ID, "logout", at(40)); err != nil {
		f.t.Fatal(err)
	}
	n, err := f.s.PruneSessions(f.ctx, at(30))
	if err != nil || n < 2 {
		f.t.Fatalf("PruneSessions = %d, %v; want at least the revoked and the expired session", n, err)
	}
	for id, gone := range map[string]bool{"s-live": false, "s-revoked": true, "s-expired": true, "s-revoked-late": false} {
		_, err := f.s.Session(f.ctx, id)
		if gone != (engine.ErrorKind(err) == engine.KindNotFound) {
			f.t.Errorf("after PruneSessions, %s: %v (gone: %v)", id, err, gone)
		}
	}
	// The live session kept its current state, and rotates on from it.
	cur := f.session(live.ID)
	if cur.Generation != 6 || !bytes.Equal(cur.TokenHash, hash("token-6")) {
		f.t.Fatalf("live session after pruning: generation %d", cur.Generation)
	}
	next := *cur
	next.Generation, next.TokenHash, next.RotatedAt = 7, hash("token-7"), at(31)
	if err := f.s.RotateSession(f.ctx, &next, 5); err == nil {
		f.t.Errorf("a rotation from a superseded generation won after pruning")
	}
	if err := f.s.RotateSession(f.ctx, &next, 6); err != nil {
		f.t.Errorf("rotation from the current generation after pruning: %v", err)
	}
	if n, err := f.s.PruneSessions(f.ctx, at(30)); err != nil || n != 0 {
		f.t.Errorf("PruneSessions again = %d, %v; want nothing left to prune", n, err)
	}
}
