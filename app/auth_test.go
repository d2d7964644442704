package app_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"github.com/fieldsync/fieldsync/client"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/identity"
)

// TestSignIn: sign-in, who-am-I, sync with the token, rotation, reuse
// detection and logout through the real server.
func TestSignIn(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "", fastSignIn)
	adminAdd(t, ts, "acme", map[string]any{"id": "ann", "email": "Ann@Acme.example", "name": "Ann", "roles": []string{"rep"},
		"password": testPassword})

	st, g, e := login(t, ts, "ann@acme.example", testPassword, "phone-1")
	if st != 200 || g.TokenType != "Bearer" || g.ExpiresIn != 900 || g.User.ID != "ann" || g.User.Org != "acme" ||
		!strings.HasPrefix(g.RefreshToken, g.SessionID+".1.") || g.RefreshExpiresAt.Sub(g.AccessExpiresAt) < 29*24*time.Hour {
		t.Fatalf("login: %d %+v %+v", st, g, e)
	}
	var me meBody
	if st := do(t, "GET", ts.URL+"/v1/me", g.AccessToken, nil, &me); st != 200 || me.ID != "ann" || me.Email != "ann@acme.example" ||
		len(me.Roles) != 1 || me.Teams == nil {
		t.Errorf("GET /v1/me: %d %+v", st, me)
	}
	var pr pushReply
	if st := do(t, "POST", ts.URL+"/v1/sync/push", g.AccessToken, mustJSON(t, push("phone-1", note("n-1", "a"))), &pr); st != 200 {
		t.Errorf("push with a signed-in token: %d", st)
	}

	// Rotation, then reuse of the first token revokes the session.
	st, g2, _ := refresh(t, ts, g.RefreshToken)
	if st != 200 || !strings.HasPrefix(g2.RefreshToken, g.SessionID+".2.") || g2.AccessToken == "" {
		t.Fatalf("refresh: %d %+v", st, g2)
	}
	st, g3, _ := refresh(t, ts, g2.RefreshToken)
	if st != 200 {
		t.Fatalf("second refresh: %d", st)
	}
	for _, c := range []struct {
		what, tok string
		status    int
		code      string
	}{
		{"a token two generations old", g.RefreshToken, 401, identity.CodeRefreshReused},
		{"the newest token after reuse", g3.RefreshToken, 401, identity.CodeSessionRevoked},
		{"garbage", "not-a-token", 401, identity.CodeRefreshInvalid},
	} {
		if st, _, e := refresh(t, ts, c.tok); st != c.status || e.Error.Code != c.code {
			t.Errorf("refresh with %s: %d %+v, want %d %s", c.what, st, e, c.status, c.code)
		}
	}

	// Logout ends the session; the refresh token dies with it.
	_, g, _ = login(t, ts, "ann@acme.example", testPassword, "phone-1")
	if st, _ := doRaw(t, "POST", ts.URL+"/v1/auth/logout", g.AccessToken, nil); st != 204 {
		t.Fatalf("logout: %d", st)
	}
	if st, _, e := refresh(t, ts, g.RefreshToken); st != 401 || e.Error.Code != identity.CodeSessionRevoked {
		t.Errorf("refresh after logout: %d %+v", st, e)
	}
	var e2 errorReply
	if st := do(t, "POST", ts.URL+"/v1/auth/logout", ts.Token(t, "acme", "ann"), nil, &e2); st != 400 || e2.Error.Code != identity.CodeNoSession {
		t.Errorf("logout with an operator token: %d %+v", st, e2)
	}
	if st, _ := doRaw(t, "POST", ts.URL+"/v1/auth/logout", "", nil); st != 401 {
		t.Errorf("logout without a token: %d", st)
	}

	// Wrong password and unknown email answer alike.
	st1, _, e1 := login(t, ts, "ann@acme.example", "wrong password", "phone-1")
	st2, _, e2b := login(t, ts, "nobody@acme.example", testPassword, "phone-1")
	if st1 != 401 || st2 != 401 || e1.Error.Code != identity.CodeBadCredentials || e1.Error.Code != e2b.Error.Code ||
		e1.Error.Message != e2b.Error.Message {
		t.Errorf("bad credentials: %d %+v / %d %+v", st1, e1, st2, e2b)
	}
}

// TestSignInRequests: malformed sign-in and refresh bodies name the field.
func TestSignInRequests(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "", func(c *serveConfig) {
		fastSignIn(c)
		c.MaxBody = 64 << 10
	})
	for _, c := range []struct {
		path, body string
		code, ptr  string
	}{
		{"/v1/auth/login", `{"password":"x","device_id":"d"}`, "invalid_request", "/email"},
		{"/v1/auth/login", `{"email":"a@b.example","device_id":"d"}`, "invalid_request", "/password"},
		{"/v1/auth/login", `{"email":"a@b.example","password":"x"}`, "invalid_request", "/device_id"},
		{"/v1/auth/login", `{"email":"a@b.example","password":"x","device_id":"d","pasword":"y"}`, "invalid_request", "/pasword"},
		{"/v1/auth/login", `{"email":5}`, "malformed_json", "/email"},
		{"/v1/auth/login", `{"email":`, "malformed_json", ""},
		{"/v1/auth/login", `[]`, "malformed_json", ""},
		{"/v1/auth/refresh", `{}`, "invalid_request", "/refresh_token"},
		{"/v1/auth/refresh", `{"refresh_token":["x"]}`, "malformed_json", "/refresh_token"},
	} {
		var e errorReply
		if st := do(t, "POST", ts.URL+c.path, "", []byte(c.body), &e); st != 400 || e.Error.Code != c.code || e.Error.Pointer != c.ptr {
			t.Errorf("POST %s %s: %d %+v, want 400 %s at %q", c.path, c.body, st, e, c.code, c.ptr)
		}
	}
	// The body limit applies. The request announces a body over it and sends
	// none: the server answers from the headers, so no write races its close.
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", 70<<10)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("a body over the limit: %d", resp.StatusCode)
	}
}

// TestSignInRateLimit: the fourth failure of an account within the window
// is refused with 429 and a Retry-After, even with the right password.
func TestSignInRateLimit(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "", fastSignIn)
	adminAdd(t, ts, "acme", map[string]any{"id": "ann", "email": "ann@acme.example", "roles": []string{"rep"}, "password": testPassword})
	for i := range 3 {
		if st, _, e := login(t, ts, "ann@acme.example", "wrong password", "phone-1"); st != 401 {
			t.Fatalf("failure %d: %d %+v", i, st, e)
		}
	}
	req, _ := http.NewRequest("POST", ts.URL+"/v1/auth/login",
		strings.NewReader(`{"email":"ann@acme.example","password":"`+testPassword+`","device_id":"phone-1"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != 429 || ra < 1 || ra > 900 {
		t.Fatalf("over the limit: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if st, _, e := login(t, ts, "ann@acme.example", testPassword, "phone-1"); st != 429 || e.Error.Code != identity.CodeLoginThrottled {
		t.Errorf("over the limit: %d %+v", st, e)
	}
}

// TestDisableUser: disabling ends the user's sessions and sign-ins, through
// the admin API.
func TestDisableUser(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "", fastSignIn)
	adminAdd(t, ts, "acme", map[string]any{"id": "ann", "email": "ann@acme.example", "roles": []string{"rep"}, "password": testPassword})
	adminAdd(t, ts, "acme", map[string]any{"id": "boss", "email": "boss@acme.example", "roles": []string{"admin"}, "password": testPassword})
	_, boss, _ := login(t, ts, "boss@acme.example", testPassword, "laptop")
	_, g1, _ := login(t, ts, "ann@acme.example", testPassword, "phone-1")
	_, g2, _ := login(t, ts, "ann@acme.example", testPassword, "phone-2")

	// A signed-in admin revokes one device, then disables the user.
	var rv struct {
		Revoked int `json:"revoked"`
	}
	if st := do(t, "DELETE", ts.URL+"/v1/admin/users/ann/devices/phone-1", boss.AccessToken, nil, &rv); st != 200 || rv.Revoked != 1 {
		t.Fatalf("revoke device: %d %+v", st, rv)
	}
	if st, _, e := refresh(t, ts, g1.RefreshToken); st != 401 || e.Error.Code != identity.CodeSessionRevoked {
		t.Errorf("refresh on the revoked device: %d %+v", st, e)
	}
	if st, _, _ := refresh(t, ts, g2.RefreshToken); st != 200 {
		t.Errorf("refresh on the other device: %d", st)
	}
	var u userBody
	if st := do(t, "POST", ts.URL+"/v1/admin/users/ann/disable", boss.AccessToken, nil, &u); st != 200 || !u.Disabled {
		t.Fatalf("disable: %d %+v", st, u)
	}
	var sessions struct {
		Sessions []struct {
			Device      string `json:"device_id"`
			Live        bool   `json:"live"`
			RevokeCause string `json:"revoke_cause"`
		} `json:"sessions"`
	}
	if st := do(t, "GET", ts.URL+"/v1/admin/users/ann/sessions", boss.AccessToken, nil, &sessions); st != 200 || len(sessions.Sessions) != 2 {
		t.Fatalf("sessions: %d %+v", st, sessions)
	}
	for _, s := range sessions.Sessions {
		if s.Live {
			t.Errorf("session of %s still live after disable: %+v", s.Device, s)
		}
	}
	if st, _, e := login(t, ts, "ann@acme.example", testPassword, "phone-1"); st != 403 || e.Error.Code != identity.CodeUserDisabled {
		t.Errorf("login of a disabled user: %d %+v", st, e)
	}
	if st := do(t, "POST", ts.URL+"/v1/admin/users/ann/enable", boss.AccessToken, nil, &u); st != 200 || u.Disabled {
		t.Fatalf("enable: %d %+v", st, u)
	}
	if st, _, _ := login(t, ts, "ann@acme.example", testPassword, "phone-1"); st != 200 {
		t.Errorf("login after enable: %d", st)
	}

	// A signed-in admin loses the admin API as soon as the directory says
	// so, though the access token still claims the role.
	op := ts.Token(t, "acme", "operator", "admin")
	if st := do(t, "PATCH", ts.URL+"/v1/admin/users/boss", op, []byte(`{"roles":["manager"]}`), nil); st != 200 {
		t.Fatalf("demote: %d", st)
	}
	var e errorReply
	if st := do(t, "GET", ts.URL+"/v1/admin/users", boss.AccessToken, nil, &e); st != 403 || e.Error.Code != "forbidden" {
		t.Errorf("a demoted admin's token: %d %+v", st, e)
	}
	if st := do(t, "PATCH", ts.URL+"/v1/admin/users/boss", op, []byte(`{"roles":["admin"]}`), nil); st != 200 {
		t.Fatalf("promote: %d", st)
	}
	if st := do(t, "GET", ts.URL+"/v1/admin/users", boss.AccessToken, nil, nil); st != 200 {
		t.Errorf("the admin again: %d", st)
	}
	if st := do(t, "POST", ts.URL+"/v1/admin/users/boss/disable", op, nil, nil); st != 200 {
		t.Fatalf("disable boss: %d", st)
	}
	// Refused like a disabled user on every route (docs/access.md).
	if st := do(t, "GET", ts.URL+"/v1/admin/users", boss.AccessToken, nil, &e); st != 403 || e.Error.Code != "user_disabled" {
		t.Errorf("a disabled admin's token: %d %+v", st, e)
	}
}

// TestAdminAPI: what an admin does, and the validation of what it sends.
func TestAdminAPI(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "", fastSignIn)
	adm := ts.Token(t, "acme", "operator", "admin")
	call := func(method, path, body string, want int, out any) {
		t.Helper()
		var b []byte
		if body != "" {
			b = []byte(body)
		}
		st, raw := doRaw(t, method, ts.URL+"/v1/admin"+path, adm, b)
		if st != want {
			t.Fatalf("%s %s %s: %d %s, want %d", method, path, body, st, raw, want)
		}
		if out != nil {
			if err := json.Unmarshal(raw, out); err != nil {
				t.Fatal(err)
			}
		}
	}
	var org client.Org
	call("GET", "/org", "", 200, &org)
	if org.ID != "acme" || org.TimeZone != "UTC" {
		t.Errorf("the default org: %+v", org)
	}
	call("PUT", "/org", `{"name":"Acme Motors","time_zone":"Asia/Kolkata","roles":["quality"]}`, 200, &org)
	if org.Name != "Acme Motors" || org.TimeZone != "Asia/Kolkata" || len(org.Roles) != 1 || len(org.AllRoles) != 11 {
		t.Errorf("PUT /org: %+v", org)
	}
	var e errorReply
	call("PUT", "/org", `{"time_zone":"Mars/Base"}`, 400, &e)
	if e.Error.Code != identity.CodeUnknownTimeZone || e.Error.Pointer != "/time_zone" {
		t.Errorf("bad time zone: %+v", e)
	}
	call("PUT", "/org", `{"id":"globex"}`, 400, &e)
	if e.Error.Pointer != "/id" {
		t.Errorf("an org id in the body: %+v", e)
	}

	call("POST", "/teams", `{"id":"north","name":"North"}`, 201, nil)
	call("POST", "/teams", `{"id":"north","name":"North"}`, 409, &e)
	if e.Error.Code != identity.CodeTeamExists {
		t.Errorf("a second team north: %+v", e)
	}
	call("PATCH", "/teams/north", `{"name":"North-East"}`, 200, nil)
	call("PATCH", "/teams/south", `{"name":"South"}`, 404, nil)
	var teams struct {
		Teams []struct{ ID, Name string } `json:"teams"`
	}
	call("GET", "/teams", "", 200, &teams)
	if len(teams.Teams) != 1 || teams.Teams[0].Name != "North-East" {
		t.Errorf("teams: %+v", teams)
	}

	for _, c := range []struct{ body, code, ptr string }{
		{`{"email":"a@acme.example","roles":["rep","pilot"]}`, identity.CodeUnknownRole, "/roles/1"},
		{`{"email":"a@acme.example","roles":["rep"],"teams":["south"]}`, identity.CodeUnknownTeam, "/teams/0"},
		{`{"email":"nope","roles":["rep"]}`, identity.CodeInvalidEmail, "/email"},
		{`{"email":"a@acme.example","roles":["rep"],"password":"short"}`, identity.CodePasswordTooShort, "/password"},
		{`{"email":"a@acme.example","roles":["rep"],"org":"globex"}`, "invalid_request", "/org"},
	} {
		call("POST", "/users", c.body, 400, &e)
		if e.Error.Code != c.code || e.Error.Pointer != c.ptr {
			t.Errorf("POST /users %s: %+v, want %s at %s", c.body, e, c.code, c.ptr)
		}
	}
	var u userBody
	call("POST", "/users", `{"id":"mia","email":"mia@acme.example","name":"Mia","roles":["manager","quality"],"leads":["north"]}`, 201, &u)
	if u.ID != "mia" || u.HasPassword || len(u.Leads) != 1 || u.Version != 1 {
		t.Errorf("created: %+v", u)
	}
	call("POST", "/users", `{"id":"mia","email":"mia2@acme.example","roles":["rep"]}`, 409, &e)
	if e.Error.Code != identity.CodeUserExists {
		t.Errorf("a second mia: %+v", e)
	}
	call("POST", "/users", `{"id":"raj","email":"raj@acme.example","roles":["rep"],"teams":["north"]}`, 201, nil)
	call("PATCH", "/users/mia", `{"name":"Mia K","password":"`+testPassword+`"}`, 200, &u)
	if u.Name != "Mia K" || !u.HasPassword || u.Version != 2 {
		t.Errorf("patched: %+v", u)
	}
	call("PATCH", "/users/mia", `{"email":"raj@acme.example"}`, 409, &e)
	if e.Error.Code != identity.CodeEmailTaken {
		t.Errorf("a taken email: %+v", e)
	}
	call("PATCH", "/users/nobody", `{"name":"x"}`, 404, nil)
	call("GET", "/users/mia", "", 200, &u)
	if u.Name != "Mia K" {
		t.Errorf("GET: %+v", u)
	}
	var list struct {
		Users []userBody `json:"users"`
		Next  string     `json:"next"`
	}
	call("GET", "/users?team=north", "", 200, &list)
	if len(list.Users) != 1 || list.Users[0].ID != "raj" {
		t.Errorf("members of north: %+v", list)
	}
	call("GET", "/users?limit=1", "", 200, &list)
	if len(list.Users) != 1 || list.Next != "mia" {
		t.Errorf("a first page of 1: %+v", list)
	}
	call("GET", "/users?limit=1&after=mia", "", 200, &list)
	if len(list.Users) != 1 || list.Users[0].ID != "raj" {
		t.Errorf("a second page: %+v", list)
	}
	call("GET", "/users?limit=0", "", 400, nil)
	if st, _, _ := login(t, ts, "mia@acme.example", testPassword, "tablet"); st != 200 {
		t.Errorf("sign-in with the password an admin set: %d", st)
	}
}

// adminEndpoint is one route of the admin API with a request that would
// change something if it were allowed.
type adminEndpoint struct {
	method, path, body string
}

// adminEndpoints targets user u, team tm and device dev.
func adminEndpoints(u, tm, dev string) []adminEndpoint {
	return []adminEndpoint{
		{"GET", "/users", ""},
		{"POST", "/users", `{"id":"intruder","email":"intruder@evil.example","roles":["admin"],"password":"` + testPassword + `"}`},
		{"GET", "/users/" + u, ""},
		{"PATCH", "/users/" + u, `{"roles":["admin"],"name":"pwned","password":"` + testPassword + `x"}`},
		{"POST", "/users/" + u + "/disable", ""},
		{"POST", "/users/" + u + "/enable", ""},
		{"GET", "/users/" + u + "/sessions", ""},
		{"DELETE", "/users/" + u + "/devices/" + dev, ""},
		{"GET", "/teams", ""},
		{"POST", "/teams", `{"id":"evil","name":"Evil"}`},
		{"PATCH", "/teams/" + tm, `{"name":"pwned"}`},
		{"GET", "/org", ""},
		{"PUT", "/org", `{"name":"pwned","time_zone":"Asia/Tokyo"}`},
	}
}

// TestAdminAccess: only admins use the admin API, and only on their own
// organisation: a rep, a manager or a back-office user is refused (403) on
// every endpoint; an admin of another organisation finds none of acme's
// users or teams (404, as if they did not exist), guessing ids or not; and
// nothing changes.
func TestAdminAccess(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "", fastSignIn)
	adm := ts.Token(t, "acme", "operator", "admin")
	adminAdd(t, ts, "acme", map[string]any{"id": "ann", "email": "ann@acme.example", "roles": []string{"rep"}, "password": testPassword})
	if st := do(t, "POST", ts.URL+"/v1/admin/teams", adm, []byte(`{"id":"north","name":"North"}`), nil); st != 201 {
		t.Fatal(st)
	}
	_, g, _ := login(t, ts, "ann@acme.example", testPassword, "phone-1")
	// Globex has an admin, and users and teams of its own with other ids.
	gadm := ts.Token(t, "globex", "g-admin", "admin")
	adminAdd(t, ts, "globex", map[string]any{"id": "gil", "email": "gil@globex.example", "roles": []string{"rep"}})
	if st := do(t, "POST", ts.URL+"/v1/admin/teams", gadm, []byte(`{"id":"south","name":"South"}`), nil); st != 201 {
		t.Fatal(st)
	}

	// What acme's admin sees before, to compare with after.
	snapshot := func() string {
		var b strings.Builder
		for _, p := range []string{"/users", "/users/ann/sessions", "/teams", "/org"} {
			_, raw := doRaw(t, "GET", ts.URL+"/v1/admin"+p, adm, nil)
			b.Write(raw)
		}
		return b.String()
	}
	before := snapshot()

	// Signed-in users of acme with non-admin roles, and operator tokens.
	mgr := ts.Token(t, "acme", "mia", "manager")
	desk := ts.Token(t, "acme", "otto", "order_desk", "credit_control")
	for _, c := range []struct {
		who, token string
		status     int
		code       string
	}{
		{"a signed-in rep", g.AccessToken, 403, "forbidden"},
		{"a manager", mgr, 403, "forbidden"},
		{"a back-office user", desk, 403, "forbidden"},
		{"no token", "", 401, "unauthenticated"},
		{"a forged token", g.AccessToken[:len(g.AccessToken)-4] + "AAAA", 401, "token_invalid"},
	} {
		for _, ep := range adminEndpoints("ann", "north", "phone-1") {
			var e errorReply
			var body []byte
			if ep.body != "" {
				body = []byte(ep.body)
			}
			if st := do(t, ep.method, ts.URL+"/v1/admin"+ep.path, c.token, body, &e); st != c.status || e.Error.Code != c.code {
				t.Errorf("%s: %s %s = %d %s, want %d %s", c.who, ep.method, ep.path, st, e.Error.Code, c.status, c.code)
			}
		}
	}

	// Globex's admin on acme's ids: nothing is found.
	for _, ep := range adminEndpoints("ann", "north", "phone-1") {
		if ep.path == "/users" || ep.path == "/teams" || ep.path == "/org" {
			continue // its own organisation's collections, checked below
		}
		var e errorReply
		var body []byte
		if ep.body != "" {
			body = []byte(ep.body)
		}
		if st := do(t, ep.method, ts.URL+"/v1/admin"+ep.path, gadm, body, &e); st != 404 || e.Error.Code != "not_found" {
			t.Errorf("globex admin: %s %s = %d %+v, want 404 not_found", ep.method, ep.path, st, e)
		}
	}
	// Ids that exist nowhere answer the same way.
	for _, id := range []string{"nobody", "ann%00", "..%2Fann", strings.Repeat("a", 200)} {
		var e errorReply
		if st := do(t, "GET", ts.URL+"/v1/admin/users/"+id, gadm, nil, &e); st != 404 || e.Error.Code != "not_found" {
			t.Errorf("GET /users/%s: %d %+v", id, st, e)
		}
	}
	// Globex's lists hold globex only; acme's ids in a body name globex's own.
	var list struct {
		Users []userBody `json:"users"`
	}
	do(t, "GET", ts.URL+"/v1/admin/users", gadm, nil, &list)
	if len(list.Users) != 1 || list.Users[0].ID != "gil" {
		t.Errorf("globex's users: %+v", list.Users)
	}
	var e errorReply
	if st := do(t, "POST", ts.URL+"/v1/admin/users", gadm, []byte(`{"email":"x@globex.example","roles":["rep"],"teams":["north"]}`), &e); st != 400 || e.Error.Code != identity.CodeUnknownTeam {
		t.Errorf("globex naming acme's team: %d %+v", st, e)
	}
	if st := do(t, "POST", ts.URL+"/v1/admin/users", gadm, []byte(`{"id":"ann","email":"ann2@globex.example","roles":["rep"]}`), nil); st != 201 {
		t.Errorf("globex creating its own ann: %d", st)
	}
	if st := do(t, "DELETE", ts.URL+"/v1/admin/users/ann/devices/phone-1", gadm, nil, nil); st != 200 {
		t.Errorf("globex revoking its own ann's device: %d", st)
	}

	if after := snapshot(); after != before {
		t.Errorf("refused requests changed acme:\nbefore %s\nafter  %s", before, after)
	}
	if st, _, _ := refresh(t, ts, g.RefreshToken); st != 200 {
		t.Errorf("ann's session after the refused requests: %d", st)
	}
	// The admin's own requests still work.
	for _, ep := range adminEndpoints("ann", "north", "phone-1")[:3] {
		if st := do(t, ep.method, ts.URL+"/v1/admin"+ep.path, adm, []byte(ep.body), nil); st/100 != 2 {
			t.Errorf("acme admin: %s %s = %d", ep.method, ep.path, st)
		}
	}
}
