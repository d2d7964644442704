package jwtauth

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fieldsync/fieldsync/sync/engine"
)

func TestMintVerify(t *testing.T) {
	t.Parallel()
	k, err := LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := k.Mint("org-1", "u-1", []string{"rep"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	a, err := k.Verify(tok)
	if err != nil || a.Org != "org-1" || a.User != "u-1" || !a.HasRole("rep") {
		t.Fatalf("verify: %+v %v", a, err)
	}
}

// TestRejects covers every claim check: each token is signed with the real
// key, so only the named check can reject it.
func TestRejects(t *testing.T) {
	t.Parallel()
	k, err := LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sign := func(c Claims) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
		tok.Header["kid"] = k.signing.id
		s, err := tok.SignedString(k.signing.priv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := func() Claims {
		return Claims{Org: "o", RegisteredClaims: jwt.RegisteredClaims{Issuer: DefaultIssuer, Subject: "u",
			Audience: jwt.ClaimStrings{DefaultAudience}, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}}
	}
	if _, err := k.Verify(sign(good())); err != nil {
		t.Fatalf("the control token must verify: %v", err)
	}
	cases := map[string]struct {
		mut  func(*Claims)
		code string
	}{
		"wrong issuer":   {func(c *Claims) { c.Issuer = "evil" }, engine.CodeTokenInvalid},
		"wrong audience": {func(c *Claims) { c.Audience = jwt.ClaimStrings{"other-api"} }, engine.CodeTokenInvalid},
		"no expiry":      {func(c *Claims) { c.ExpiresAt = nil }, engine.CodeTokenInvalid},
		"expired":        {func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Hour)) }, engine.CodeTokenExpired},
		"issued later":   {func(c *Claims) { c.IssuedAt = jwt.NewNumericDate(now.Add(time.Hour)) }, engine.CodeTokenInvalid},
		"no org":         {func(c *Claims) { c.Org = "" }, engine.CodeTokenInvalid},
		"no subject":     {func(c *Claims) { c.Subject = "" }, engine.CodeTokenInvalid},
	}
	for name, c := range cases {
		cl := good()
		c.mut(&cl)
		_, err := k.Verify(sign(cl))
		if engine.ErrorCode(err) != c.code || engine.ErrorKind(err) != engine.KindUnauthorized {
			t.Errorf("%s: got %v (%s), want %s", name, err, engine.ErrorCode(err), c.code)
		}
	}
}

// TestKeyRotation: a newer key file signs, and tokens of the older key
// still verify until its file is removed.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	k1, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := k1.Mint("o", "u", nil, time.Hour)
	if _, err := createKey(filepath.Join(dir, "keys")); err != nil {
		t.Fatal(err)
	}
	k2, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if k2.signing.id == k1.signing.id || len(k2.byID) != 2 {
		t.Fatalf("the new key must sign: %d keys", len(k2.byID))
	}
	if _, err := k2.Verify(old); err != nil {
		t.Fatalf("a token of the older key must still verify: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "keys", "*.pem"))
	for _, f := range files {
		if fi, _ := os.Stat(f); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
}

// TestSessionClaims: a sign-in token carries its session and device, an
// operator token neither, and both verify as the same actor.
func TestSessionClaims(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	k, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := k.MintSession("org-1", "u-1", []string{"rep"}, "s-1", "phone-1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	a, err := k.VerifyAccess(tok)
	if err != nil || a.Actor.User != "u-1" || a.Session != "s-1" || a.Device != "phone-1" || time.Until(a.Expires) > time.Minute {
		t.Fatalf("VerifyAccess: %+v %v", a, err)
	}
	if sid, dev, err := k.SessionOf(tok); sid != "s-1" || dev != "phone-1" || err != nil {
		t.Errorf("SessionOf = %q %q %v", sid, dev, err)
	}
	op, _ := k.Mint("org-1", "u-1", []string{"admin"}, time.Minute)
	if sid, dev, err := k.SessionOf(op); sid != "" || dev != "" || err != nil {
		t.Errorf("SessionOf(operator token) = %q %q %v", sid, dev, err)
	}
	if _, _, err := k.SessionOf(tok + "x"); engine.ErrorCode(err) != engine.CodeTokenInvalid {
		t.Errorf("SessionOf(bad signature): %v", err)
	}

	// Load reads the same key and never creates one.
	k2, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k2.Verify(tok); err != nil {
		t.Errorf("a token minted before Load: %v", err)
	}
	empty := t.TempDir()
	if _, err := Load(empty); err == nil {
		t.Errorf("Load of a directory without keys succeeded")
	}
	if names, _ := filepath.Glob(filepath.Join(empty, "keys", "*")); len(names) != 0 {
		t.Errorf("Load created %v", names)
	}
}
