package identity_test

import (
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// TestServiceAccountKeys: the overlap of a rotation ends with the clock,
// not later; the directory knows the account by its user id, with its
// roles, and disabled once revoked; malformed keys are refused alike.
func TestServiceAccountKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite, nil)
	a, key1, err := e.svc.AddServiceAccount(e.ctx, "acme", "ERP", []string{"order_desk"})
	if err != nil {
		t.Fatal(err)
	}
	actor, err := e.svc.VerifyKey(e.ctx, key1)
	if err != nil || actor.Org != "acme" || actor.User != "svc:"+a.ID || !actor.HasRole("order_desk") {
		t.Fatalf("VerifyKey = %+v, %v", actor, err)
	}
	m, ok, err := e.svc.Member(e.ctx, "acme", a.UserID())
	if err != nil || !ok || m.Disabled || len(m.Roles) != 1 || m.Roles[0] != "order_desk" {
		t.Fatalf("Member = %+v %v %v", m, ok, err)
	}
	if _, ok, _ := e.svc.Member(e.ctx, "beta", a.UserID()); ok {
		t.Fatalf("another organisation's directory knows the account")
	}

	_, key2, err := e.svc.RotateServiceAccountKey(e.ctx, "acme", a.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(59 * time.Minute)
	for _, k := range []string{key1, key2} {
		if _, err := e.svc.VerifyKey(e.ctx, k); err != nil {
			t.Fatalf("within the overlap: %v", err)
		}
	}
	e.clock.Advance(time.Minute)
	if _, err := e.svc.VerifyKey(e.ctx, key1); engine.ErrorCode(err) != engine.CodeUnauthenticated {
		t.Fatalf("the old key at the end of the overlap: %v", err)
	}
	if _, err := e.svc.VerifyKey(e.ctx, key2); err != nil {
		t.Fatalf("the new key: %v", err)
	}
	for _, bad := range []string{"", "fsk_", "fsk_" + a.ID, "fsk_" + a.ID + "_", "fsk_short_secret", "Bearer " + key2, key2 + "x"} {
		if _, err := e.svc.VerifyKey(e.ctx, bad); engine.ErrorCode(err) != engine.CodeUnauthenticated {
			t.Errorf("VerifyKey(%q) = %v, want unauthenticated", bad, err)
		}
	}

	if _, err := e.svc.RevokeServiceAccount(e.ctx, "acme", a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.VerifyKey(e.ctx, key2); engine.ErrorCode(err) != engine.CodeUnauthenticated {
		t.Fatalf("a revoked key: %v", err)
	}
	if m, ok, _ := e.svc.Member(e.ctx, "acme", a.UserID()); !ok || !m.Disabled {
		t.Fatalf("a revoked account in the directory: %+v %v", m, ok)
	}
	if _, _, err := e.svc.RotateServiceAccountKey(e.ctx, "acme", a.ID, 0); engine.ErrorKind(err) != engine.KindConflict {
		t.Fatalf("rotating a revoked account: %v", err)
	}
	if _, err := e.svc.ServiceAccount(e.ctx, "beta", a.ID); engine.ErrorKind(err) != engine.KindNotFound {
		t.Fatalf("another organisation reads the account: %v", err)
	}
}
