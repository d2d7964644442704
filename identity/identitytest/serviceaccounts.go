package identitytest

import (
	"bytes"
	"fmt"
	"slices"
	"sync"

	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// testServiceAccounts: an account round-trips field for field by its id
// alone, replacing it is a compare-and-swap on Version, creating a taken id
// fails, and listing stays inside the organisation.
func testServiceAccounts(f *fixture) {
	t := f.t
	st, ok := f.s.(identity.ServiceAccountStore)
	if !ok {
		t.Fatalf("%T does not implement identity.ServiceAccountStore", f.s)
	}
	_, err := st.ServiceAccount(f.ctx, "01JABCDEFGHJKMNPQRSTVWXYZ0")
	wantNotFound(t, "ServiceAccount of an empty store", err)

	a := &identity.ServiceAccount{Org: orgA, ID: "01JABCDEFGHJKMNPQRSTVWXYZ1", Name: "ERP connector",
		Roles: []string{"order_desk", "billing"}, KeyHash: hash("key-1"), Created: at(1), Updated: at(1)}
	if err := st.PutServiceAccount(f.ctx, a); err != nil {
		t.Fatalf("PutServiceAccount (create): %v", err)
	}
	if a.Version != 1 {
		t.Errorf("Version after create = %d, want 1", a.Version)
	}
	got, err := st.ServiceAccount(f.ctx, a.ID)
	if err != nil {
		t.Fatalf("ServiceAccount: %v", err)
	}
	wantAccount(t, "after create", got, a)

	dup := *a
	dup.Version = 0
	wantErr(t, "creating a taken id", st.PutServiceAccount(f.ctx, &dup), engine.KindConflict, identity.CodeVersionMismatch)

	// Rotate: the previous hash and its deadline round-trip; revoke too.
	next := *got
	next.PrevHash, next.PrevUntil, next.KeyHash, next.Updated = next.KeyHash, at(30), hash("key-2"), at(2)
	if err := st.PutServiceAccount(f.ctx, &next); err != nil {
		t.Fatalf("PutServiceAccount (rotate): %v", err)
	}
	if next.Version != 2 {
		t.Errorf("Version after rotate = %d, want 2", next.Version)
	}
	stale := *got // still at version 1
	stale.Name = "lost update"
	wantErr(t, "replacing from a stale version", st.PutServiceAccount(f.ctx, &stale), engine.KindConflict, identity.CodeVersionMismatch)
	got, err = st.ServiceAccount(f.ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantAccount(t, "after rotate", got, &next)
	got.RevokedAt = at(3)
	if err := st.PutServiceAccount(f.ctx, got); err != nil {
		t.Fatalf("PutServiceAccount (revoke): %v", err)
	}
	again, err := st.ServiceAccount(f.ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantAccount(t, "after revoke", again, got)

	missing := &identity.ServiceAccount{Org: orgA, ID: "01JABCDEFGHJKMNPQRSTVWXYZ9", Name: "x", Roles: []string{"billing"},
		KeyHash: hash("k"), Version: 3, Created: at(1), Updated: at(1)}
	if err := st.PutServiceAccount(f.ctx, missing); err == nil {
		t.Errorf("replacing a missing account succeeded")
	}

	b := &identity.ServiceAccount{Org: orgB, ID: "01JABCDEFGHJKMNPQRSTVWXYZ2", Name: "Helpdesk", Roles: []string{"logistics"},
		KeyHash: hash("key-b"), Created: at(4), Updated: at(4)}
	if err := st.PutServiceAccount(f.ctx, b); err != nil {
		t.Fatal(err)
	}
	for org, want := range map[string][]string{orgA: {a.ID}, orgB: {b.ID}, "org-nope": nil} {
		list, err := st.ServiceAccounts(f.ctx, org)
		if err != nil {
			t.Fatalf("ServiceAccounts(%s): %v", org, err)
		}
		var ids []string
		for _, x := range list {
			ids = append(ids, x.ID)
		}
		if !slices.Equal(ids, want) {
			t.Errorf("ServiceAccounts(%s) = %v, want %v", org, ids, want)
		}
	}
}

// testServiceAccountRace: of concurrent replacements from one version,
// exactly one wins.
func testServiceAccountRace(f *fixture) {
	st := f.s.(identity.ServiceAccountStore)
	a := &identity.ServiceAccount{Org: orgA, ID: "01JABCDEFGHJKMNPQRSTVWXYZ3", Name: "ERP", Roles: []string{"order_desk"},
		KeyHash: hash("k0"), Created: at(1), Updated: at(1)}
	if err := st.PutServiceAccount(f.ctx, a); err != nil {
		f.t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 8 {
		wg.Go(func() {
			n := *a
			n.KeyHash = hash(fmt.Sprintf("k%d", i+1))
			err := st.PutServiceAccount(f.ctx, &n)
			if err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			} else if engine.ErrorCode(err) != identity.CodeVersionMismatch {
				f.t.Errorf("losing replacement: %v, want version_mismatch", err)
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		f.t.Errorf("%d concurrent replacements won, want 1", wins)
	}
}

func wantAccount(t interface {
	Helper()
	Errorf(string, ...any)
}, what string, got, want *identity.ServiceAccount) {
	t.Helper()
	var d []string
	cmp := func(name string, ok bool, g, w any) {
		if !ok {
			d = append(d, fmt.Sprintf("%s = %v, want %v", name, g, w))
		}
	}
	cmp("Org", got.Org == want.Org, got.Org, want.Org)
	cmp("ID", got.ID == want.ID, got.ID, want.ID)
	cmp("Name", got.Name == want.Name, got.Name, want.Name)
	cmp("Roles", slices.Equal(got.Roles, want.Roles), got.Roles, want.Roles)
	cmp("KeyHash", bytes.Equal(got.KeyHash, want.KeyHash), got.KeyHash, want.KeyHash)
	cmp("PrevHash", bytes.Equal(got.PrevHash, want.PrevHash), got.PrevHash, want.PrevHash)
	cmp("PrevUntil", sameTime(got.PrevUntil, want.PrevUntil) && got.PrevUntil.IsZero() == want.PrevUntil.IsZero(), got.PrevUntil, want.PrevUntil)
	cmp("RevokedAt", sameTime(got.RevokedAt, want.RevokedAt) && got.RevokedAt.IsZero() == want.RevokedAt.IsZero(), got.RevokedAt, want.RevokedAt)
	cmp("Version", got.Version == want.Version, got.Version, want.Version)
	cmp("Created", sameTime(got.Created, want.Created), got.Created, want.Created)
	cmp("Updated", sameTime(got.Updated, want.Updated), got.Updated, want.Updated)
	if len(d) > 0 {
		t.Errorf("%s: %v", what, d)
	}
}
