package identitytest

import (
	"fmt"
	"slices"
	"sync"

	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// testOrgs: an organisation round-trips, PutOrg replaces it whole, and an
// unknown id is not found.
func testOrgs(f *fixture) {
	t := f.t
	_, err := f.s.Org(f.ctx, orgA)
	wantNotFound(t, "Org of an empty store", err)

	o := &identity.Org{ID: orgA, Name: "Acme Motors", TimeZone: "Asia/Kolkata", Roles: []string{"warranty", "export_desk"}, Created: at(0)}
	if err := f.s.PutOrg(f.ctx, o); err != nil {
		t.Fatalf("PutOrg: %v", err)
	}
	if err := f.s.PutOrg(f.ctx, &identity.Org{ID: orgB, Name: "Globex", TimeZone: "UTC", Created: at(1)}); err != nil {
		t.Fatalf("PutOrg(%s): %v", orgB, err)
	}
	got, err := f.s.Org(f.ctx, orgA)
	if err != nil {
		t.Fatalf("Org: %v", err)
	}
	if got.ID != o.ID || got.Name != o.Name || got.TimeZone != o.TimeZone || !slices.Equal(got.Roles, o.Roles) || !sameTime(got.Created, o.Created) {
		t.Errorf("Org = %+v, want %+v", got, o)
	}

	// Replace: every field is the new one, including a role list emptied.
	o2 := &identity.Org{ID: orgA, Name: "Acme Motors Ltd", TimeZone: "Europe/Berlin", Created: at(0)}
	if err := f.s.PutOrg(f.ctx, o2); err != nil {
		t.Fatalf("PutOrg (replace): %v", err)
	}
	got, err = f.s.Org(f.ctx, orgA)
	if err != nil {
		t.Fatalf("Org after replace: %v", err)
	}
	if got.Name != o2.Name || got.TimeZone != o2.TimeZone || len(got.Roles) != 0 {
		t.Errorf("Org after replace = %+v, want %+v", got, o2)
	}
	if b, err := f.s.Org(f.ctx, orgB); err != nil || b.Name != "Globex" {
		t.Errorf("the other org after the replace = %+v, %v; want Globex untouched", b, err)
	}
	_, err = f.s.Org(f.ctx, "org-nope")
	wantNotFound(t, "Org of an unknown id", err)
}

// testCreateUser: a created user has version 1 and reads back field for
// field, by id and by email in any case; a second user at the same (org,
// id) is user_exists whatever its email.
func testCreateUser(f *fixture) {
	t := f.t
	_, err := f.s.User(f.ctx, orgA, "u-1")
	wantNotFound(t, "User of an empty store", err)
	_, err = f.s.UserByEmail(f.ctx, "asha@acme.example")
	wantNotFound(t, "UserByEmail of an empty store", err)

	u := newUser(orgA, "u-1", "Asha.Rao@Acme.Example")
	u.Roles = []string{identity.RoleManager, "order_desk"}
	u.Leads = []string{"t-north", "t-south"}
	u.Version = 7 // ignored: a new user is version 1
	f.createUser(u)
	if u.Version != 1 {
		t.Errorf("CreateUser left u.Version = %d, want 1", u.Version)
	}
	want := *u
	want.Email = "asha.rao@acme.example" // stores keep emails lower-case
	want.Version = 1
	wantUser(t, "User", f.user(orgA, "u-1"), &want)
	for _, email := range []string{"asha.rao@acme.example", "ASHA.RAO@ACME.EXAMPLE", "Asha.Rao@Acme.Example"} {
		got, err := f.s.UserByEmail(f.ctx, email)
		if err != nil {
			t.Errorf("UserByEmail(%s): %v", email, err)
			continue
		}
		wantUser(t, "UserByEmail("+email+")", got, &want)
	}

	// Empty lists, no password, disabled: all of it round-trips too.
	bare := &identity.User{Org: orgA, ID: "u-bare", Email: "bare@acme.example", Disabled: true}
	f.createUser(bare)
	wantUser(t, "bare user", f.user(orgA, "u-bare"), &identity.User{Org: orgA, ID: "u-bare", Email: "bare@acme.example", Disabled: true, Version: 1})

	err = f.s.CreateUser(f.ctx, newUser(orgA, "u-1", "someone.else@acme.example"))
	wantErr(t, "CreateUser at a taken (org, id)", err, engine.KindConflict, identity.CodeUserExists)
	// Both taken: the id answers first.
	err = f.s.CreateUser(f.ctx, newUser(orgA, "u-1", "asha.rao@acme.example"))
	wantErr(t, "CreateUser at a taken (org, id) and email", err, engine.KindConflict, identity.CodeUserExists)
	wantUser(t, "User after the refused creates", f.user(orgA, "u-1"), &want)
	if _, err := f.s.UserByEmail(f.ctx, "someone.else@acme.example"); engine.ErrorKind(err) != engine.KindNotFound {
		t.Errorf("the email of a refused create is taken: UserByEmail = %v", err)
	}
}

// testEmailUnique: an email is unique across the installation, whatever its
// case and whatever the organisation.
func testEmailUnique(f *fixture) {
	t := f.t
	f.createUser(newUser(orgA, "u-1", "asha@acme.example"))
	for _, c := range []struct{ org, id, email string }{
		{orgA, "u-2", "asha@acme.example"},
		{orgA, "u-3", "ASHA@acme.example"},
		{orgB, "u-1", "Asha@Acme.Example"},
		{orgB, "u-9", "asha@acme.example"},
	} {
		err := f.s.CreateUser(f.ctx, newUser(c.org, c.id, c.email))
		wantErr(t, fmt.Sprintf("CreateUser(%s/%s, %s)", c.org, c.id, c.email), err, engine.KindConflict, identity.CodeEmailTaken)
		if _, err := f.s.User(f.ctx, c.org, c.id); engine.ErrorKind(err) != engine.KindNotFound {
			t.Errorf("a refused create left %s/%s behind: User = %v", c.org, c.id, err)
		}
	}
	// The id that was refused in orgB is free there with another email.
	f.createUser(newUser(orgB, "u-1", "asha@globex.example"))
	got, err := f.s.UserByEmail(f.ctx, "asha@acme.example")
	if err != nil || got.Org != orgA || got.ID != "u-1" {
		t.Errorf("UserByEmail(asha@acme.example) = %+v, %v; want %s/u-1", got, err, orgA)
	}
}

// testEmailUniqueConcurrent: eight creates of one email at once, in two
// organisations, make exactly one user.
func testEmailUniqueConcurrent(f *fixture) {
	t := f.t
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		org := []string{orgA, orgB}[i%2]
		wg.Go(func() {
			errs[i] = f.s.CreateUser(f.ctx, newUser(org, fmt.Sprintf("u-%d", i), fmt.Sprintf("Same@Example%s", []string{".com", ".COM"}[i%2])))
		})
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		if err == nil {
			if won >= 0 {
				t.Errorf("creates %d and %d both took the email", won, i)
			}
			won = i
			continue
		}
		wantErr(t, fmt.Sprintf("create %d", i), err, engine.KindConflict, identity.CodeEmailTaken)
	}
	if won < 0 {
		t.Fatalf("no create took the email")
	}
	got, err := f.s.UserByEmail(f.ctx, "same@example.com")
	if err != nil || got.ID != fmt.Sprintf("u-%d", won) {
		t.Errorf("UserByEmail = %+v, %v; want the winner u-%d", got, err, won)
	}
}

// testUpdateUser: an update applies only at the stored version, bumps it by
// one and reports it in u.Version; a stale version changes nothing.
func testUpdateUser(f *fixture) {
	t := f.t
	u := f.createUser(newUser(orgA, "u-1", "asha@acme.example"))
	stale := *u

	u.Name = "Asha Rao"
	u.Roles = []string{identity.RoleRep, "billing"}
	u.Teams = nil
	u.Leads = []string{"t-east"}
	u.PasswordHash = ""
	u.Disabled = true
	u.Updated = at(9)
	if err := f.s.UpdateUser(f.ctx, u); err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	if u.Version != 2 {
		t.Errorf("UpdateUser left u.Version = %d, want 2", u.Version)
	}
	wantUser(t, "User after the update", f.user(orgA, "u-1"), u)

	// A writer that read version 1 loses, and its change is not applied.
	stale.Name = "Lost update"
	err := f.s.UpdateUser(f.ctx, &stale)
	wantErr(t, "UpdateUser at a stale version", err, engine.KindConflict, identity.CodeVersionMismatch)
	if stale.Version != 1 {
		t.Errorf("a refused update changed u.Version to %d", stale.Version)
	}
	ahead := *u
	ahead.Version = 5
	err = f.s.UpdateUser(f.ctx, &ahead)
	wantErr(t, "UpdateUser at a version from the future", err, engine.KindConflict, identity.CodeVersionMismatch)
	wantUser(t, "User after the refused updates", f.user(orgA, "u-1"), u)

	// Again from the version it got back.
	u.Name = "Asha R."
	if err := f.s.UpdateUser(f.ctx, u); err != nil || u.Version != 3 {
		t.Fatalf("second UpdateUser: %v, version %d; want nil, 3", err, u.Version)
	}
	wantUser(t, "User after the second update", f.user(orgA, "u-1"), u)

	missing := newUser(orgA, "u-nope", "nope@acme.example")
	missing.Version = 1
	wantNotFound(t, "UpdateUser of an unknown user", f.s.UpdateUser(f.ctx, missing))
	// The same id in another organisation is another user: not found.
	other := *u
	other.Org = orgB
	wantNotFound(t, "UpdateUser of the same id in another org", f.s.UpdateUser(f.ctx, &other))
}

// testUpdateUserEmail: an email change to a taken email is email_taken and
// changes nothing; a successful change frees the old email.
func testUpdateUserEmail(f *fixture) {
	t := f.t
	u := f.createUser(newUser(orgA, "u-1", "asha@acme.example"))
	f.createUser(newUser(orgB, "u-2", "ravi@globex.example"))

	before := *u
	u.Email = "RAVI@globex.example"
	u.Name = "renamed"
	err := f.s.UpdateUser(f.ctx, u)
	wantErr(t, "UpdateUser to another user's email", err, engine.KindConflict, identity.CodeEmailTaken)
	wantUser(t, "User after the refused email change", f.user(orgA, "u-1"), &before)

	// Same email in another case: no change of owner, no conflict.
	u = f.user(orgA, "u-1")
	u.Email = "ASHA@ACME.EXAMPLE"
	if err := f.s.UpdateUser(f.ctx, u); err != nil {
		t.Fatalf("UpdateUser keeping the email in another case: %v", err)
	}

	u.Email = "Asha.Rao@Acme.Example"
	if err := f.s.UpdateUser(f.ctx, u); err != nil {
		t.Fatalf("UpdateUser to a free email: %v", err)
	}
	if got, err := f.s.UserByEmail(f.ctx, "asha.rao@acme.example"); err != nil || got.ID != "u-1" || got.Email != "asha.rao@acme.example" {
		t.Errorf("UserByEmail(new email) = %+v, %v; want u-1, stored lower-case", got, err)
	}
	_, err = f.s.UserByEmail(f.ctx, "asha@acme.example")
	wantNotFound(t, "UserByEmail(old email)", err)
	// The old email is free for anyone, in any organisation.
	f.createUser(newUser(orgB, "u-3", "asha@acme.example"))
}

// testTenantIsolation: the same user id in two organisations is two
// records; reading one never answers with the other.
func testTenantIsolation(f *fixture) {
	t := f.t
	a := f.createUser(newUser(orgA, "u-1", "asha@acme.example"))
	_, err := f.s.User(f.ctx, orgB, "u-1")
	wantNotFound(t, "User(orgB, id of orgA)", err)

	b := newUser(orgB, "u-1", "asha@globex.example")
	b.Name = "Globex Asha"
	b.Roles = []string{identity.RoleAdmin}
	f.createUser(b)
	wantUser(t, "User(orgA)", f.user(orgA, "u-1"), a)
	wantUser(t, "User(orgB)", f.user(orgB, "u-1"), b)

	b.Name = "Globex Asha, updated"
	if err := f.s.UpdateUser(f.ctx, b); err != nil {
		t.Fatal(err)
	}
	wantUser(t, "User(orgA) after orgB's update", f.user(orgA, "u-1"), a)
	for _, org := range []string{orgA, orgB} {
		us, err := f.s.Users(f.ctx, org, identity.UserFilter{})
		if err != nil || len(us) != 1 || us[0].Org != org {
			t.Errorf("Users(%s) = %v, %v; want its own u-1 only", org, us, err)
		}
	}
	if us, err := f.s.Users(f.ctx, "org-nope", identity.UserFilter{}); err != nil || len(us) != 0 {
		t.Errorf("Users of an unknown org = %v, %v; want none", userIDs(us), err)
	}
}

// testUsersFilter: every filter field, alone and together, in id order,
// within one organisation.
func testUsersFilter(f *fixture) {
	t := f.t
	mk := func(org, id string, roles, teams, leads []string) {
		f.createUser(&identity.User{Org: org, ID: id, Email: id + "@" + org + ".example", Roles: roles, Teams: teams, Leads: leads})
	}
	rep, mgr := identity.RoleRep, identity.RoleManager
	// Created out of id order, so an answer in id order is the store's doing.
	mk(orgA, "u-5", []string{rep}, []string{"north", "south"}, nil)
	mk(orgA, "u-1", []string{rep}, []string{"north"}, nil)
	mk(orgA, "u-3", []string{mgr}, nil, []string{"north"})
	mk(orgA, "u-2", []string{rep, "billing"}, []string{"south"}, nil)
	mk(orgA, "u-4", []string{mgr, rep}, []string{"north"}, []string{"south", "north"})
	mk(orgA, "u-6", []string{"billing"}, nil, nil)
	// Another organisation with the same team, role and user names.
	mk(orgB, "u-1", []string{rep}, []string{"north"}, []string{"north"})
	mk(orgB, "u-7", []string{mgr}, []string{"south"}, []string{"north"})

	for _, c := range []struct {
		org  string
		f    identity.UserFilter
		want []string
	}{
		{orgA, identity.UserFilter{}, []string{"u-1", "u-2", "u-3", "u-4", "u-5", "u-6"}},
		{orgA, identity.UserFilter{Team: "north"}, []string{"u-1", "u-4", "u-5"}},
		{orgA, identity.UserFilter{Team: "south"}, []string{"u-2", "u-5"}},
		{orgA, identity.UserFilter{Leads: "north"}, []string{"u-3", "u-4"}},
		{orgA, identity.UserFilter{Leads: "south"}, []string{"u-4"}},
		{orgA, identity.UserFilter{Role: rep}, []string{"u-1", "u-2", "u-4", "u-5"}},
		{orgA, identity.UserFilter{Role: "billing"}, []string{"u-2", "u-6"}},
		{orgA, identity.UserFilter{Role: identity.RoleAdmin}, nil},
		{orgA, identity.UserFilter{Team: "east"}, nil},
		{orgA, identity.UserFilter{Team: "north", Role: rep}, []string{"u-1", "u-4", "u-5"}},
		{orgA, identity.UserFilter{Team: "north", Role: mgr}, []string{"u-4"}},
		{orgA, identity.UserFilter{Team: "north", Leads: "south"}, []string{"u-4"}},
		{orgA, identity.UserFilter{Team: "north", Leads: "north", Role: mgr}, []string{"u-4"}},
		{orgA, identity.UserFilter{Role: rep, After: "u-2"}, []string{"u-4", "u-5"}},
		{orgA, identity.UserFilter{Role: rep, Limit: 2}, []string{"u-1", "u-2"}},
		{orgA, identity.UserFilter{Role: rep, After: "u-1", Limit: 2}, []string{"u-2", "u-4"}},
		{orgA, identity.UserFilter{Team: "north", After: "u-5"}, nil},
		{orgB, identity.UserFilter{Team: "north"}, []string{"u-1"}},
		{orgB, identity.UserFilter{Leads: "north"}, []string{"u-1", "u-7"}},
		{orgB, identity.UserFilter{Role: rep}, []string{"u-1"}},
	} {
		got, err := f.s.Users(f.ctx, c.org, c.f)
		if err != nil {
			t.Errorf("Users(%s, %+v): %v", c.org, c.f, err)
			continue
		}
		if ids := userIDs(got); !slices.Equal(ids, c.want) && (len(ids) != 0 || len(c.want) != 0) {
			t.Errorf("Users(%s, %+v) = %v, want %v", c.org, c.f, ids, c.want)
		}
		for _, u := range got {
			if u.Org != c.org {
				t.Errorf("Users(%s, %+v) returned %s/%s", c.org, c.f, u.Org, u.ID)
			}
		}
	}
	// A listed user is the whole record.
	got, err := f.s.Users(f.ctx, orgA, identity.UserFilter{Leads: "south"})
	if err != nil || len(got) != 1 {
		t.Fatalf("Users(leads south) = %v, %v", got, err)
	}
	wantUser(t, "listed user", got[0], f.user(orgA, "u-4"))

	// An update moves the user between filters.
	u := f.user(orgA, "u-1")
	u.Teams, u.Roles = []string{"south"}, []string{mgr}
	if err := f.s.UpdateUser(f.ctx, u); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		f    identity.UserFilter
		want []string
	}{
		{identity.UserFilter{Team: "north"}, []string{"u-4", "u-5"}},
		{identity.UserFilter{Team: "south"}, []string{"u-1", "u-2", "u-5"}},
		{identity.UserFilter{Role: rep}, []string{"u-2", "u-4", "u-5"}},
		{identity.UserFilter{Role: mgr}, []string{"u-1", "u-3", "u-4"}},
	} {
		got, err := f.s.Users(f.ctx, orgA, c.f)
		if ids := userIDs(got); err != nil || !slices.Equal(ids, c.want) {
			t.Errorf("after the update, Users(%+v) = %v, %v; want %v", c.f, ids, err, c.want)
		}
	}
}

// testUsersPaging: After and Limit walk an organisation in id order, each
// user once.
func testUsersPaging(f *fixture) {
	t := f.t
	var want []string
	for i := range 23 {
		id := fmt.Sprintf("u-%03d", (i*7)%23) // created out of order
		want = append(want, fmt.Sprintf("u-%03d", i))
		f.createUser(&identity.User{Org: orgA, ID: id, Email: id + "@acme.example", Roles: []string{identity.RoleRep}})
		f.createUser(&identity.User{Org: orgB, ID: id, Email: id + "@globex.example", Roles: []string{identity.RoleRep}})
	}
	for _, fl := range []identity.UserFilter{{Limit: 5}, {Limit: 5, Role: identity.RoleRep}} {
		var got []string
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatalf("paging %+v did not end", fl)
			}
			page, err := f.s.Users(f.ctx, orgA, fl)
			if err != nil {
				t.Fatalf("Users(%+v): %v", fl, err)
			}
			if len(page) > fl.Limit {
				t.Fatalf("Users(%+v) returned %d users", fl, len(page))
			}
			if len(page) == 0 {
				break
			}
			got = append(got, userIDs(page)...)
			fl.After = page[len(page)-1].ID
		}
		if !slices.Equal(got, want) {
			t.Errorf("paging with role %q = %v, want %v", fl.Role, got, want)
		}
	}
}

// testUsersCap: stores answer at most 1000 users however many are asked
// for (Limit 0 means as many as the cap allows).
func testUsersCap(f *fixture) {
	t := f.t
	const n = 1003
	var wg sync.WaitGroup
	ids := make(chan int, n)
	for i := range n {
		ids <- i
	}
	close(ids)
	for range 8 {
		wg.Go(func() {
			for i := range ids {
				id := fmt.Sprintf("u-%04d", i)
				if err := f.s.CreateUser(f.ctx, &identity.User{Org: orgA, ID: id, Email: id + "@acme.example", Roles: []string{identity.RoleRep}}); err != nil {
					t.Errorf("CreateUser(%s): %v", id, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, fl := range []identity.UserFilter{{}, {Limit: 5000}, {Limit: -1}, {Role: identity.RoleRep}} {
		got, err := f.s.Users(f.ctx, orgA, fl)
		if err != nil {
			t.Fatalf("Users(%+v): %v", fl, err)
		}
		if len(got) != 1000 || got[0].ID != "u-0000" || got[999].ID != "u-0999" {
			t.Errorf("Users(%+v) = %d users, want the first 1000 in id order", fl, len(got))
		}
	}
	got, err := f.s.Users(f.ctx, orgA, identity.UserFilter{After: "u-0999"})
	if ids := userIDs(got); err != nil || !slices.Equal(ids, []string{"u-1000", "u-1001", "u-1002"}) {
		t.Errorf("the page after the cap = %v, %v", ids, err)
	}
}

// testTeams: create, rename (keeping the creation time), list in id order,
// per organisation.
func testTeams(f *fixture) {
	t := f.t
	_, err := f.s.Team(f.ctx, orgA, "t-north")
	wantNotFound(t, "Team of an empty store", err)
	if ts, err := f.s.Teams(f.ctx, orgA); err != nil || len(ts) != 0 {
		t.Errorf("Teams of an empty store = %v, %v", ts, err)
	}
	for _, tm := range []*identity.Team{
		{Org: orgA, ID: "t-south", Name: "South", Created: at(1)},
		{Org: orgA, ID: "t-north", Name: "North", Created: at(2)},
		{Org: orgB, ID: "t-north", Name: "Globex North", Created: at(3)},
		{Org: orgA, ID: "t-east", Name: "East", Created: at(4)},
	} {
		if err := f.s.PutTeam(f.ctx, tm); err != nil {
			t.Fatalf("PutTeam(%s/%s): %v", tm.Org, tm.ID, err)
		}
	}
	got, err := f.s.Team(f.ctx, orgA, "t-north")
	if err != nil || got.Org != orgA || got.ID != "t-north" || got.Name != "North" || !sameTime(got.Created, at(2)) {
		t.Errorf("Team = %+v, %v; want North created at %v", got, err, at(2))
	}

	// Rename: the name changes, the creation time stays.
	if err := f.s.PutTeam(f.ctx, &identity.Team{Org: orgA, ID: "t-north", Name: "North & Hills", Created: at(30)}); err != nil {
		t.Fatalf("PutTeam (rename): %v", err)
	}
	got, err = f.s.Team(f.ctx, orgA, "t-north")
	if err != nil || got.Name != "North & Hills" || !sameTime(got.Created, at(2)) {
		t.Errorf("Team after rename = %+v, %v; want North & Hills created at %v", got, err, at(2))
	}
	if b, err := f.s.Team(f.ctx, orgB, "t-north"); err != nil || b.Name != "Globex North" {
		t.Errorf("the other org's team after the rename = %+v, %v", b, err)
	}

	ts, err := f.s.Teams(f.ctx, orgA)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tm := range ts {
		names = append(names, tm.ID+"="+tm.Name)
		if tm.Org != orgA {
			t.Errorf("Teams(%s) returned %s/%s", orgA, tm.Org, tm.ID)
		}
	}
	if want := []string{"t-east=East", "t-north=North & Hills", "t-south=South"}; !slices.Equal(names, want) {
		t.Errorf("Teams = %v, want %v", names, want)
	}
	_, err = f.s.Team(f.ctx, orgB, "t-south")
	wantNotFound(t, "Team of another org's id", err)
}
