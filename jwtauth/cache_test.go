package jwtauth

import (
	"fmt"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// TestVerifiedTokensAnswerAsVerification: a token remembered as verified is
// answered from the cache, and the cache never lets through what a full
// verification would refuse at that moment: expiry and issue time against
// the clock, another issuer or audience, other bytes than the ones verified.
func TestVerifiedTokensAnswerAsVerification(t *testing.T) {
	t.Parallel()
	k, clock := keysWithClock(t)
	tok, err := k.MintSession("org-1", "u-1", []string{"rep"}, "s-1", "phone", 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	a, err := k.VerifyAccess(tok)
	if err != nil || a.Actor.User != "u-1" || a.Session != "s-1" || a.Device != "phone" {
		t.Fatalf("first verification: %+v %v", a, err)
	}
	if len(k.verified.m) != 1 {
		t.Fatalf("the verified token is not remembered: %d entries", len(k.verified.m))
	}
	a.Actor.Roles[0] = "admin" // a caller's copy, not the cache's
	if b, err := k.VerifyAccess(tok); err != nil || !b.Actor.HasRole("rep") || b.Actor.HasRole("admin") || b.Expires != a.Expires {
		t.Fatalf("second verification: %+v %v", b, err)
	}

	refused := func(name, token, code string) {
		t.Helper()
		if _, err := k.VerifyAccess(token); engine.ErrorCode(err) != code || engine.ErrorKind(err) != engine.KindUnauthorized {
			t.Errorf("%s: got %v (%s), want %s", name, err, engine.ErrorCode(err), code)
		}
	}
	// A character in the middle of the signature changed (the last one may
	// only carry padding bits): other bytes, verified in full.
	i := len(tok) - 10
	swap := map[bool]string{true: "A", false: "B"}[tok[i] != 'A']
	refused("tampered", tok[:i]+swap+tok[i+1:], engine.CodeTokenInvalid)

	k.Issuer = "another"
	refused("another issuer", tok, engine.CodeTokenInvalid)
	k.Issuer = DefaultIssuer
	k.Audience = "another-api"
	refused("another audience", tok, engine.CodeTokenInvalid)
	k.Audience = DefaultAudience

	start := *clock
	*clock = start.Add(-5 * time.Minute)
	refused("issued in the future of a clock set back", tok, engine.CodeTokenInvalid)
	*clock = start.Add(15*time.Minute + leeway + time.Second)
	refused("expired", tok, engine.CodeTokenExpired)
	*clock = start.Add(15*time.Minute + leeway - 2*time.Second)
	if _, err := k.VerifyAccess(tok); err != nil {
		t.Errorf("within the leeway: %v", err)
	}
}

// TestVerifiedIsBounded: past verifiedCap tokens the cache drops entries
// instead of growing, expired ones first, and every token still verifies.
func TestVerifiedIsBounded(t *testing.T) {
	t.Parallel()
	k, clock := keysWithClock(t)
	short, err := k.Mint("org-1", "short", nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Verify(short); err != nil {
		t.Fatal(err)
	}
	*clock = clock.Add(2 * time.Minute) // short is expired from here on
	for i := range verifiedCap + 10 {
		tok, err := k.Mint("org-1", fmt.Sprintf("u-%d", i), nil, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if a, err := k.Verify(tok); err != nil || a.User != fmt.Sprintf("u-%d", i) {
			t.Fatalf("token %d: %+v %v", i, a, err)
		}
		if n := len(k.verified.m); n > verifiedCap {
			t.Fatalf("%d entries after %d tokens, cap %d", n, i+1, verifiedCap)
		}
	}
	for _, e := range k.verified.m {
		if e.access.Actor.User == "short" {
			t.Fatal("an expired entry outlived a sweep")
		}
	}
}

// keysWithClock returns new keys whose clock reads *clock (now, at first).
func keysWithClock(t *testing.T) (*Keys, *time.Time) {
	k, err := LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Now()
	k.SetClock(func() time.Time { return clock })
	return k, &clock
}
