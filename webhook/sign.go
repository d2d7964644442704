package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Signing follows the Standard Webhooks specification
// (https://www.standardwebhooks.com): the headers webhook-id,
// webhook-timestamp (Unix seconds) and webhook-signature, a space-separated
// list of "v1,<base64 HMAC-SHA256>" over "<id>.<timestamp>.<body>", keyed
// with the base64-decoded part of the secret after "whsec_". Several
// signatures let a subscriber verify with either secret while one is
// rotated.

// Header names.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every signing secret.
const SecretPrefix = "whsec_"

// DefaultTolerance is how far a delivery's timestamp may be from the
// verifier's clock: older deliveries are replays.
const DefaultTolerance = 5 * time.Minute

// NewSecret returns a fresh signing secret: 32 random bytes (r: default
// crypto/rand).
func NewSecret(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	b := make([]byte, 32)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

func secretKey(secret string) ([]byte, error) {
	if !strings.HasPrefix(secret, SecretPrefix) {
		return nil, errors.New("webhook: a secret starts with " + SecretPrefix)
	}
	k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil || len(k) == 0 {
		return nil, errors.New("webhook: a secret is " + SecretPrefix + " and base64")
	}
	return k, nil
}

// Sign returns the webhook-signature header value of a delivery: one
// "v1,<sig>" per secret, space-separated.
func Sign(id string, at time.Time, body []byte, secrets ...string) (string, error) {
	var sigs []string
	for _, s := range secrets {
		k, err := secretKey(s)
		if err != nil {
			return "", err
		}
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(mac(k, id, at.Unix(), body)))
	}
	return strings.Join(sigs, " "), nil
}

func mac(key []byte, id string, ts int64, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verification errors.
var (
	ErrMissingHeaders = errors.New("webhook: webhook-id, webhook-timestamp and webhook-signature are required")
	ErrTimestamp      = errors.New("webhook: the timestamp is too far from now (a replay?)")
	ErrSignature      = errors.New("webhook: no signature matches")
)

// Verify is the documented subscriber-side check (docs/integrations.md): it
// fails unless one of the header's v1 signatures is the HMAC of the body
// under secret and the timestamp is within tolerance of now (0:
// DefaultTolerance).
func Verify(h http.Header, body []byte, secret string, now time.Time, tolerance time.Duration) error {
	id, ts, sig := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || ts == "" || sig == "" {
		return ErrMissingHeaders
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrTimestamp
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrTimestamp
	}
	k, err := secretKey(secret)
	if err != nil {
		return err
	}
	want := mac(k, id, sec, body)
	for _, s := range strings.Fields(sig) {
		v, b64, ok := strings.Cut(s, ",")
		if !ok || v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && subtle.ConstantTimeCompare(got, want) == 1 {
			return nil
		}
	}
	return ErrSignature
}
