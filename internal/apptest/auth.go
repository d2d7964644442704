package apptest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/app"
	"github.com/fieldsync/fieldsync/client"
	"github.com/fieldsync/fieldsync/identity"
)

// Hash is the password hashing of every server the tests start: argon2id
// as in production, with 64 KiB and one lane instead of 64 MiB and two.
// Each start hashes once (the hash a sign-in of an unknown email is checked
// against), and at the production figure the suite's hundreds of starts
// spent a tenth of its CPU there and in handing that memory back.
var Hash = identity.HashParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// HashEnv is Hash as `fieldsync serve`'s environment.
func HashEnv() []string {
	return []string{fmt.Sprint("FIELDSYNC_PASSWORD_MEMORY=", Hash.Memory), fmt.Sprint("FIELDSYNC_PASSWORD_TIME=", Hash.Time),
		fmt.Sprint("FIELDSYNC_PASSWORD_THREADS=", Hash.Threads)}
}

// FastSignIn keeps the failure limits small (hashing is cheap in every
// server here: Hash).
func FastSignIn(c *app.Config) {
	c.AccountFailures, c.AddressFailures = 3, 1000
}

// Password is the password the tests give their users.
const Password = "correct horse battery"

type GrantBody struct {
	AccessToken      string    `json:"access_token"`
	TokenType        string    `json:"token_type"`
	ExpiresIn        int       `json:"expires_in"`
	AccessExpiresAt  time.Time `json:"access_expires_at"`
	RefreshToken     string    `json:"refresh_token"`
	RefreshExpiresAt time.Time `json:"refresh_expires_at"`
	SessionID        string    `json:"session_id"`
	User             MeBody    `json:"user"`
}

type MeBody struct {
	Org   string   `json:"org"`
	ID    string   `json:"id"`
	Email string   `json:"email"`
	Name  string   `json:"name"`
	Roles []string `json:"roles"`
	Teams []string `json:"teams"`
	Leads []string `json:"leads"`
}

// AdminAdd creates a user through the admin API at base with an admin's
// (operator) token.
func AdminAdd(t testing.TB, base, operator string, body map[string]any) client.User {
	t.Helper()
	var u client.User
	st, raw := DoRaw(t, "POST", base+"/v1/admin/users", operator, MustJSON(t, body))
	if st != 201 {
		t.Fatalf("add user %v: %d %s", body, st, raw)
	}
	if err := json.Unmarshal(raw, &u); err != nil {
		t.Fatal(err)
	}
	return u
}

// Login signs in through the API at base.
func Login(t testing.TB, base, email, password, device string) (int, GrantBody, ErrorReply) {
	t.Helper()
	var g GrantBody
	var e ErrorReply
	body := MustJSON(t, map[string]string{"email": email, "password": password, "device_id": device})
	st, raw := DoRaw(t, "POST", base+"/v1/auth/login", "", body)
	DecodeInto(t, raw, st, &g, &e)
	return st, g, e
}

// Refresh rotates a refresh token through the API at base.
func Refresh(t testing.TB, base, tok string) (int, GrantBody, ErrorReply) {
	t.Helper()
	var g GrantBody
	var e ErrorReply
	st, raw := DoRaw(t, "POST", base+"/v1/auth/refresh", "", MustJSON(t, map[string]string{"refresh_token": tok}))
	DecodeInto(t, raw, st, &g, &e)
	return st, g, e
}
