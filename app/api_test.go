package app_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fieldsync/fieldsync/jwtauth"
)

// TestBadInput sends every kind of bad request the protocol documents and
// checks each gets its documented status, code and pointer, and that none of
// them stored anything.
func TestBadInput(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "", func(c *serveConfig) {
		c.MaxBody = 64 << 10
		c.Limits.MaxMutations = 10
	})
	rep := ts.Token(t, "org-1", "u-rep1")
	other := ts.Token(t, "org-2", "u-rep1") // same user id, another organisation
	ts.Customer(t, "org-1", "c-1", "u-rep1")

	// One good note, so "nothing changed" has something to compare with.
	var pr pushReply
	if st := do(t, "POST", ts.URL+"/v1/sync/push", rep, mustJSON(t, push("dev-1", note("n-1", "first visit"))), &pr); st != 200 || pr.Results[0].Status != "applied" {
		t.Fatalf("seed push: status %d, %+v", st, pr)
	}
	before, cp := pullAll(t, ts.URL, rep, "", 100)

	kid := jwksKid(t, ts.URL)
	wrongKey := forge(t, jwt.SigningMethodEdDSA, otherEd25519Key(t), kid)
	noneAlg := forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid)
	hsWithPublic := forge(t, jwt.SigningMethodHS256, jwksPublicKey(t, ts.URL), kid)
	expired := expiredToken(t, ts.Data)

	big := strings.Repeat("x", 70<<10)
	many := make([]map[string]any, 11)
	for i := range many {
		many[i] = note(fmt.Sprintf("many-%d", i), "too many")
	}

	whole := []struct {
		name, method, path, token string
		body                      []byte
		status                    int
		code, pointer             string
	}{
		{"malformed JSON", "POST", "/v1/sync/push", rep, []byte(`{"device_id":"d","mutations":[`), 400, "malformed_json", ""},
		{"wrong JSON type", "POST", "/v1/sync/push", rep, []byte(`{"device_id":"d","mutations":{}}`), 400, "malformed_json", "/mutations"},
		{"no mutations", "POST", "/v1/sync/push", rep, []byte(`{"device_id":"d"}`), 400, "invalid_request", "/mutations"},
		{"no device", "POST", "/v1/sync/push", rep, mustJSON(t, map[string]any{"mutations": []any{note("x", "y")}}), 400, "invalid_request", "/device_id"},
		{"oversized body", "POST", "/v1/sync/push", rep, mustJSON(t, push("dev-1", note("big", big))), 413, "body_too_large", ""},
		{"too many mutations", "POST", "/v1/sync/push", rep, mustJSON(t, push("dev-1", many...)), 413, "too_many_mutations", "/mutations"},
		{"missing token", "POST", "/v1/sync/push", "", mustJSON(t, push("dev-1", note("a", "b"))), 401, "unauthenticated", ""},
		{"expired token", "POST", "/v1/sync/push", expired, mustJSON(t, push("dev-1", note("a", "b"))), 401, "token_expired", ""},
		{"token signed by another key", "POST", "/v1/sync/push", wrongKey, mustJSON(t, push("dev-1", note("a", "b"))), 401, "token_invalid", ""},
		{"alg none", "POST", "/v1/sync/push", noneAlg, mustJSON(t, push("dev-1", note("a", "b"))), 401, "token_invalid", ""},
		{"HS256 signed with the public key", "POST", "/v1/sync/push", hsWithPublic, mustJSON(t, push("dev-1", note("a", "b"))), 401, "token_invalid", ""},
		{"garbage token", "GET", "/v1/sync/pull", "not.a.token", nil, 401, "token_invalid", ""},
		{"tampered checkpoint", "GET", "/v1/sync/pull?checkpoint=" + url.QueryEscape(tamper(cp)), rep, nil, 400, "bad_checkpoint", "/checkpoint"},
		{"checkpoint of another org", "GET", "/v1/sync/pull?checkpoint=" + url.QueryEscape(cp), other, nil, 400, "bad_checkpoint", "/checkpoint"},
		{"page too large", "GET", "/v1/sync/pull?limit=100000", rep, nil, 400, "limit_out_of_range", "/limit"},
		{"no such route", "GET", "/v1/nothing", rep, nil, 404, "not_found", ""},
	}
	for _, c := range whole {
		var er errorReply
		st := do(t, c.method, ts.URL+c.path, c.token, c.body, &er)
		if st != c.status || er.Error.Code != c.code || er.Error.Pointer != c.pointer {
			t.Errorf("%s: got %d %q at %q (%s), want %d %q at %q", c.name, st, er.Error.Code, er.Error.Pointer, er.Error.Message, c.status, c.code, c.pointer)
		}
		if er.Error.Message == "" || er.Error.RequestID == "" {
			t.Errorf("%s: error without message or request id: %+v", c.name, er.Error)
		}
	}

	// Per-mutation rejections: the reply is 200 with one outcome each.
	perMutation := []struct {
		name          string
		mutation      map[string]any
		code, pointer string
	}{
		{"unknown collection", map[string]any{"mutation_id": "r1", "collection": "invoices", "id": "i-1", "op": "create", "doc": map[string]any{}}, "unknown_collection", "/collection"},
		{"schema violation", map[string]any{"mutation_id": "r2", "collection": "customer_notes", "id": "n-2", "op": "create", "doc": map[string]any{"customer_id": "c-1", "text": 42}}, "schema_violation", "/doc/text"},
		{"server-only field", map[string]any{"mutation_id": "r3", "collection": "follow_ups", "id": "f-1", "op": "create", "doc": map[string]any{"activity": "delivery_status_query", "status": "done"}}, "server_field", "/doc/status"},
		{"server-only order status", map[string]any{"mutation_id": "r4", "collection": "orders", "id": "o-1", "op": "create", "doc": map[string]any{"customer_id": "c-1", "status": "confirmed"}}, "server_field", "/doc/status"},
		{"bad op", map[string]any{"mutation_id": "r5", "collection": "customer_notes", "id": "n-3", "op": "upsert"}, "invalid_mutation", "/op"},
		{"update of another org's note", map[string]any{"mutation_id": "r6", "collection": "customer_notes", "id": "n-1", "op": "update", "base_version": 1, "fields": map[string]any{"text": "mine now"}}, "not_found", "/id"},
	}
	for _, c := range perMutation {
		tok := rep
		if strings.Contains(c.name, "another org") {
			tok = other
		}
		var r pushReply
		if st := do(t, "POST", ts.URL+"/v1/sync/push", tok, mustJSON(t, push("dev-9", c.mutation)), &r); st != 200 {
			t.Errorf("%s: status %d", c.name, st)
			continue
		}
		o := r.Results[0]
		if o.Status != "rejected" || o.Error == nil || o.Error.Code != c.code || o.Error.Pointer != c.pointer {
			t.Errorf("%s: got %+v (error %+v), want rejected %q at %q", c.name, o, o.Error, c.code, c.pointer)
		}
	}

	after, _ := pullAll(t, ts.URL, rep, "", 100)
	if !equalDocs(before, after) {
		t.Errorf("bad input changed the data: before %v, after %v", before, after)
	}
	if got, _ := pullAll(t, ts.URL, other, "", 100); len(got) != 0 {
		t.Errorf("another organisation pulled %d documents of org-1", len(got))
	}
}

func equalDocs(a, b map[string]json.RawMessage) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if string(b[k]) != string(v) {
			return false
		}
	}
	return true
}

// tamper flips one character of the checkpoint's payload.
func tamper(cp string) string {
	b := []byte(cp)
	if b[0] == 'e' {
		b[0] = 'f'
	} else {
		b[0] = 'e'
	}
	return string(b)
}

func jwks(t *testing.T, base string) (kid string, pub []byte) {
	t.Helper()
	var set struct {
		Keys []struct{ Kid, X, Alg, Kty string } `json:"keys"`
	}
	if st := do(t, "GET", base+"/.well-known/jwks.json", "", nil, &set); st != 200 || len(set.Keys) == 0 {
		t.Fatalf("jwks: status %d, %+v", st, set)
	}
	k := set.Keys[0]
	if k.Alg != "EdDSA" || k.Kty != "OKP" {
		t.Fatalf("jwks key is %s/%s, want EdDSA/OKP", k.Alg, k.Kty)
	}
	x, err := base64.RawURLEncoding.DecodeString(k.X)
	if err != nil {
		t.Fatal(err)
	}
	return k.Kid, x
}

func jwksKid(t *testing.T, base string) string       { k, _ := jwks(t, base); return k }
func jwksPublicKey(t *testing.T, base string) []byte { _, x := jwks(t, base); return x }

func otherEd25519Key(t *testing.T) ed25519.PrivateKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

// forge signs valid-looking claims with the given method and key.
func forge(t *testing.T, m jwt.SigningMethod, key any, kid string) string {
	t.Helper()
	now := time.Now()
	tok := jwt.NewWithClaims(m, jwtauth.Claims{Org: "org-1", Roles: []string{"admin"}, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: jwtauth.DefaultIssuer, Subject: "u-rep1", Audience: jwt.ClaimStrings{jwtauth.DefaultAudience},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
	}})
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// expiredToken is signed with the server's real key but expired an hour ago.
func expiredToken(t *testing.T, data string) string {
	t.Helper()
	keys, err := jwtauth.LoadOrCreate(data)
	if err != nil {
		t.Fatal(err)
	}
	keys.SetClock(func() time.Time { return time.Now().Add(-2 * time.Hour) })
	tok, err := keys.Mint("org-1", "u-rep1", []string{"rep"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestRateLimit: past the per-user limit a sync request gets 429
// rate_limited with Retry-After; other users are not affected.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "", func(c *serveConfig) { c.RateLimit = 3 })
	rep1, rep2 := ts.Token(t, "org-1", "u-1"), ts.Token(t, "org-1", "u-2")
	for i := range 3 {
		if st := do(t, "GET", ts.URL+"/v1/sync/pull", rep1, nil, nil); st != 200 {
			t.Fatalf("request %d within the limit: status %d", i+1, st)
		}
	}
	req, _ := http.NewRequest("GET", ts.URL+"/v1/sync/pull", nil)
	req.Header.Set("Authorization", "Bearer "+rep1)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var er errorReply
	json.NewDecoder(resp.Body).Decode(&er)
	resp.Body.Close()
	if resp.StatusCode != 429 || er.Error.Code != "rate_limited" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("over the limit: %d %+v Retry-After %q", resp.StatusCode, er.Error, resp.Header.Get("Retry-After"))
	}
	if st := do(t, "GET", ts.URL+"/v1/sync/pull", rep2, nil, nil); st != 200 {
		t.Fatalf("another user was limited too: status %d", st)
	}
}
