package server_test

import (
	"encoding/json"
	"testing"
)

// TestAuthRefusesBadRequests: sign-in, refresh, sign-out and /v1/me refuse
// bad input and wrong credentials with their documented codes; an unknown
// email and a wrong password read alike.
func TestAuthRefusesBadRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	login := func(email, password, device string) string {
		b, _ := json.Marshal(map[string]string{"email": email, "password": password, "device_id": device})
		return string(b)
	}
	status, body := f.do(t, "POST", "/v1/auth/login", "", login("ann@acme.example", fixturePassword, "laptop"))
	var grant struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if json.Unmarshal(body, &grant); status != 200 || grant.AccessToken == "" || grant.RefreshToken == "" {
		t.Fatalf("sign-in: %d %s", status, body)
	}
	operator := f.token(t, "acme", "ann", "admin") // a token without a session
	f.check(t, []errorCase{
		{"sign-in cut short", "POST", "/v1/auth/login", "", `{"email":`, 400, "malformed_json", ""},
		{"sign-in with an unknown field", "POST", "/v1/auth/login", "", `{"email":"a@b.c","password":"x","device_id":"d","otp":"1"}`, 400, "invalid_request", "/otp"},
		{"sign-in without email", "POST", "/v1/auth/login", "", login("", fixturePassword, "laptop"), 400, "invalid_request", "/email"},
		{"sign-in without password", "POST", "/v1/auth/login", "", login("ann@acme.example", "", "laptop"), 400, "invalid_request", "/password"},
		{"sign-in without device", "POST", "/v1/auth/login", "", login("ann@acme.example", fixturePassword, ""), 400, "invalid_request", "/device_id"},
		{"wrong password", "POST", "/v1/auth/login", "", login("ann@acme.example", "not the passphrase", "laptop"), 401, "bad_credentials", ""},
		{"unknown email", "POST", "/v1/auth/login", "", login("nobody@acme.example", fixturePassword, "laptop"), 401, "bad_credentials", ""},
		{"refresh without token", "POST", "/v1/auth/refresh", "", `{}`, 400, "invalid_request", "/refresh_token"},
		{"refresh with a forged token", "POST", "/v1/auth/refresh", "", `{"refresh_token":"forged"}`, 401, "refresh_token_invalid", "/refresh_token"},
		{"sign-out without token", "POST", "/v1/auth/logout", "", "", 401, "unauthenticated", ""},
		{"sign-out of a token without a session", "POST", "/v1/auth/logout", operator, "", 400, "no_session", ""},
		{"me without token", "GET", "/v1/me", "", "", 401, "unauthenticated", ""},
		{"me", "GET", "/v1/me", grant.AccessToken, "", 200, "", ""},
		{"sign-out", "POST", "/v1/auth/logout", grant.AccessToken, "", 204, "", ""},
		{"refresh after sign-out", "POST", "/v1/auth/refresh", "", `{"refresh_token":"` + grant.RefreshToken + `"}`, 401, "session_revoked", ""},
	})
}
