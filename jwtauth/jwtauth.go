// Package jwtauth mints and verifies fieldsync access tokens with
// golang-jwt/jwt/v5. Keys are Ed25519, kept as PEM files in the data
// directory, and published as a JWK set so other services (and, later,
// other fieldsync instances) can verify tokens without the private key.
//
// It owns the key files and the token format; it must not import HTTP or
// store packages. The verifier pins the algorithm to EdDSA: a token signed
// with "none" or HS256 (for example with the public key as the HMAC secret)
// is rejected before any key is used.
package jwtauth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// Defaults for the registered claims.
const (
	DefaultIssuer   = "fieldsync"
	DefaultAudience = "fieldsync-api"
)

// Claims are the access token's claims. Session and Device name the sign-in
// session and the device a token was minted for; operator tokens (Mint) have
// neither.
type Claims struct {
	Org     string   `json:"org"`
	Roles   []string `json:"roles"`
	Session string   `json:"sid,omitempty"`
	Device  string   `json:"dev,omitempty"`
	jwt.RegisteredClaims
}

type key struct {
	id   string
	priv ed25519.PrivateKey // nil for verification-only keys
	pub  ed25519.PublicKey
}

// Keys holds the signing key and every key that tokens may still be signed with.
type Keys struct {
	Issuer   string
	Audience string
	signing  *key
	byID     map[string]*key
	now      func() time.Time
	verified verified // cache.go
}

// leeway is the clock skew allowed on exp, iat and nbf.
const leeway = 30 * time.Second

// LoadOrCreate reads every ed25519-*.pem key in dir/keys and creates one if
// there is none. The newest file (by name, which embeds its creation time)
// signs; all verify, so a new key can be rolled in without invalidating
// tokens already issued.
func LoadOrCreate(dir string) (*Keys, error) {
	kdir := filepath.Join(dir, "keys")
	if err := os.MkdirAll(kdir, 0o700); err != nil {
		return nil, fmt.Errorf("jwtauth: create key directory: %w", err)
	}
	names, err := filepath.Glob(filepath.Join(kdir, "ed25519-*.pem"))
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		name, err := createKey(kdir)
		if err != nil {
			return nil, err
		}
		names = []string{name}
	}
	sort.Strings(names)
	k := &Keys{Issuer: DefaultIssuer, Audience: DefaultAudience, byID: map[string]*key{}, now: time.Now}
	for _, n := range names {
		kk, err := readKey(n)
		if err != nil {
			return nil, err
		}
		k.byID[kk.id] = kk
		k.signing = kk
	}
	return k, nil
}

// Load reads the keys like LoadOrCreate but never creates one: operator
// tools use it so that a mistyped directory is an error, not a new key that
// no server knows.
func Load(dir string) (*Keys, error) {
	names, err := filepath.Glob(filepath.Join(dir, "keys", "ed25519-*.pem"))
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("jwtauth: no signing key in %s", filepath.Join(dir, "keys"))
	}
	return LoadOrCreate(dir)
}

func createKey(dir string) (string, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", err
	}
	name := filepath.Join(dir, fmt.Sprintf("ed25519-%s.pem", time.Now().UTC().Format("20060102T150405.000000000Z")))
	tmp := name + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", fmt.Errorf("jwtauth: create key file: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return name, os.Rename(tmp, name)
}

func readKey(path string) (*key, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("jwtauth: read key: %w", err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, fmt.Errorf("jwtauth: %s is not a PEM file", path)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("jwtauth: parse %s: %w", path, err)
	}
	priv, ok := parsed.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("jwtauth: %s is not an Ed25519 key", path)
	}
	pub := priv.Public().(ed25519.PublicKey)
	return &key{id: thumbprint(pub), priv: priv, pub: pub}, nil
}

// thumbprint is the RFC 7638 JWK thumbprint of an Ed25519 public key, used as kid.
func thumbprint(pub ed25519.PublicKey) string {
	canon := `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(canon))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Mint signs an access token for user in org with roles, valid for ttl.
func (k *Keys) Mint(org, user string, roles []string, ttl time.Duration) (string, error) {
	return k.MintSession(org, user, roles, "", "", ttl)
}

// MintSession signs an access token like Mint that also names the sign-in
// session and device it belongs to (claims sid and dev), so that logout
// knows which session to end.
func (k *Keys) MintSession(org, user string, roles []string, session, device string, ttl time.Duration) (string, error) {
	if org == "" || user == "" {
		return "", errors.New("jwtauth: org and user are required")
	}
	if ttl <= 0 {
		return "", errors.New("jwtauth: ttl must be positive")
	}
	now := k.now()
	c := Claims{Org: org, Roles: roles, Session: session, Device: device, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: k.Issuer, Subject: user, Audience: jwt.ClaimStrings{k.Audience},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-30 * time.Second)),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = k.signing.id
	return t.SignedString(k.signing.priv)
}

// Verify checks a token and returns the actor it names. Errors are
// *engine.Error with code token_invalid or token_expired.
func (k *Keys) Verify(token string) (engine.Actor, error) {
	a, err := k.VerifyAccess(token)
	return a.Actor, err
}

// Access is what a verified access token says.
type Access struct {
	Actor   engine.Actor
	Session string // "" for operator tokens
	Device  string
	Expires time.Time
}

// SessionOf verifies token like Verify and returns the sign-in session and
// device it was minted for ("" for operator tokens).
func (k *Keys) SessionOf(token string) (session, device string, err error) {
	a, err := k.VerifyAccess(token)
	return a.Session, a.Device, err
}

// VerifyAccess checks a token like Verify and returns everything it says.
func (k *Keys) VerifyAccess(token string) (Access, error) {
	now := k.now()
	if a, ok := k.verified.get(token, k.Issuer, k.Audience, now); ok {
		return a, nil
	}
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		kk, ok := k.byID[kid]
		if !ok {
			return nil, errors.New("unknown key id")
		}
		return kk.pub, nil
	},
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(k.Issuer),
		jwt.WithAudience(k.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return Access{}, engine.Wrap(err, engine.KindUnauthorized, engine.CodeTokenExpired, "the access token has expired")
		}
		return Access{}, engine.Wrap(err, engine.KindUnauthorized, engine.CodeTokenInvalid, "the access token is not valid")
	}
	if c.Org == "" || c.Subject == "" {
		return Access{}, engine.Errorf(engine.KindUnauthorized, engine.CodeTokenInvalid, "", "the access token names no organisation or user")
	}
	a := Access{Actor: engine.Actor{Org: c.Org, User: c.Subject, Roles: c.Roles}, Session: c.Session, Device: c.Device,
		Expires: c.ExpiresAt.Time}
	e := verifiedEntry{access: a, issuer: k.Issuer, audience: k.Audience}
	if c.IssuedAt != nil {
		e.issuedAt = c.IssuedAt.Time
	}
	if c.NotBefore != nil {
		e.notBefore = c.NotBefore.Time
	}
	k.verified.put(token, e, now)
	return a, nil
}

// SetClock replaces the clock, for tests.
func (k *Keys) SetClock(now func() time.Time) { k.now = now }

// JWKS returns the public keys as a JWK set (RFC 7517, OKP keys per RFC 8037).
func (k *Keys) JWKS() []byte {
	type jwk struct {
		Kty string `json:"kty"`
		Crv string `json:"crv"`
		X   string `json:"x"`
		Kid string `json:"kid"`
		Use string `json:"use"`
		Alg string `json:"alg"`
	}
	ids := make([]string, 0, len(k.byID))
	for id := range k.byID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	set := struct {
		Keys []jwk `json:"keys"`
	}{}
	for _, id := range ids {
		kk := k.byID[id]
		set.Keys = append(set.Keys, jwk{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(kk.pub),
			Kid: id, Use: "sig", Alg: "EdDSA"})
	}
	b, _ := json.Marshal(set)
	return b
}
