package app_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
)

// deviceCase is one request of the push routes' scenario table.
type deviceCase struct {
	name          string
	method, path  string
	token         string
	body          any
	status        int
	code, pointer string // of an error reply
	check         func(t *testing.T, raw []byte)
}

func runDeviceCases(t *testing.T, url string, cases []deviceCase) {
	t.Helper()
	for _, c := range cases {
		var b []byte
		if c.body != nil {
			if s, ok := c.body.(string); ok {
				b = []byte(s)
			} else {
				b = mustJSON(t, c.body)
			}
		}
		st, raw := doRaw(t, c.method, url+c.path, c.token, b)
		if st != c.status {
			t.Fatalf("%s: %s %s: %d %s, want %d", c.name, c.method, c.path, st, raw, c.status)
		}
		if c.code != "" {
			var e errorReply
			if err := json.Unmarshal(raw, &e); err != nil || e.Error.Code != c.code || e.Error.Pointer != c.pointer || e.Error.Message == "" {
				t.Fatalf("%s: error %s, want code %s at %q", c.name, raw, c.code, c.pointer)
			}
		}
		if c.check != nil {
			c.check(t, raw)
		}
	}
}

// deviceIDs decodes a GET /v1/devices reply.
func deviceIDs(t *testing.T, raw []byte) []string {
	t.Helper()
	var r struct {
		Devices []struct {
			ID, Platform, AppVersion string
		} `json:"devices"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, d := range r.Devices {
		ids = append(ids, d.ID)
	}
	return ids
}

func hasDevices(want ...string) func(t *testing.T, raw []byte) {
	return func(t *testing.T, raw []byte) {
		t.Helper()
		if got := deviceIDs(t, raw); !slices.Equal(got, append([]string{}, want...)) {
			t.Fatalf("devices %v, want %v", got, want)
		}
	}
}

// TestDeviceRoutes: registering, listing and removing devices, mutes and
// quiet hours; bad input answers a code and a pointer and changes nothing;
// another user's (or organisation's) device answers like none.
func TestDeviceRoutes(t *testing.T) {
	for _, s := range wfStores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			w := newAccWorld(t, s.store)
			for _, u := range []string{"rep-1", "rep-2"} {
				w.AddUser("acme", accUser{ID: u, Roles: []string{"rep"}})
			}
			w.AddUser("globex", accUser{ID: "rep-1", Roles: []string{"rep"}})
			rep1, rep2 := w.Token("acme", "rep-1", "rep"), w.Token("acme", "rep-2", "rep")
			other := w.Token("globex", "rep-1", "rep")
			admin := w.Operator("acme")
			phone := map[string]any{"device_id": "phone-1", "token": "fcm-token-1", "platform": "android", "app_version": "5.0.1"}
			with := func(k string, v any) map[string]any {
				m := map[string]any{}
				for k, v := range phone {
					m[k] = v
				}
				if v == nil {
					delete(m, k)
				} else {
					m[k] = v
				}
				return m
			}
			inval := func(name string, body any, ptr string) deviceCase {
				return deviceCase{name: name, method: "POST", path: "/v1/devices", token: rep1, body: body, status: 400,
					code: "invalid_request", pointer: ptr}
			}
			runDeviceCases(t, w.Server.URL, []deviceCase{
				{name: "no token", method: "POST", path: "/v1/devices", body: phone, status: 401, code: "unauthenticated"},
				inval("no device id on a token without a device", with("device_id", nil), "/device_id"),
				inval("bad device id", with("device_id", "a b"), "/device_id"),
				inval("no FCM token", with("token", nil), "/token"),
				inval("unknown platform", with("platform", "symbian"), "/platform"),
				inval("no app version", with("app_version", nil), "/app_version"),
				inval("bad app version", with("app_version", "5 beta"), "/app_version"),
				inval("unknown field", with("colour", "red"), "/colour"),
				{name: "not JSON", method: "POST", path: "/v1/devices", token: rep1, body: "{", status: 400, code: "malformed_json"},
				{name: "nothing registered", method: "GET", path: "/v1/devices", token: rep1, status: 200, check: hasDevices()},
				{name: "register", method: "POST", path: "/v1/devices", token: rep1, body: phone, status: 200,
					check: func(t *testing.T, raw []byte) {
						var d map[string]any
						json.Unmarshal(raw, &d)
						if d["id"] != "phone-1" || d["platform"] != "android" || d["app_version"] != "5.0.1" || d["updated"] == nil || d["token"] != nil {
							t.Fatalf("reply %s", raw)
						}
					}},
				{name: "refresh", method: "POST", path: "/v1/devices", token: rep1, body: with("token", "fcm-token-2"), status: 200},
				{name: "tablet", method: "POST", path: "/v1/devices", token: rep1,
					body: map[string]any{"device_id": "tablet", "token": "fcm-token-3", "platform": "ios", "app_version": "5.0.1"}, status: 200},
				{name: "listed", method: "GET", path: "/v1/devices", token: rep1, status: 200, check: hasDevices("phone-1", "tablet")},
				{name: "not another user's", method: "GET", path: "/v1/devices", token: rep2, status: 200, check: hasDevices()},
				{name: "not another org's", method: "GET", path: "/v1/devices", token: other, status: 200, check: hasDevices()},
				{name: "another user's device", method: "DELETE", path: "/v1/devices/phone-1", token: rep2, status: 404, code: "not_found"},
				{name: "another org's device", method: "DELETE", path: "/v1/devices/phone-1", token: other, status: 404, code: "not_found"},
				{name: "unknown device", method: "DELETE", path: "/v1/devices/nope", token: rep1, status: 404, code: "not_found"},
				{name: "still there", method: "GET", path: "/v1/devices", token: rep1, status: 200, check: hasDevices("phone-1", "tablet")},
				{name: "remove", method: "DELETE", path: "/v1/devices/tablet", token: rep1, status: 204},
				{name: "gone", method: "GET", path: "/v1/devices", token: rep1, status: 200, check: hasDevices("phone-1")},
				{name: "the token moves to the user registering it", method: "POST", path: "/v1/devices", token: rep2,
					body: map[string]any{"device_id": "shared", "token": "fcm-token-2", "platform": "android", "app_version": "5.0.1"}, status: 200},
				{name: "not reaching the previous user", method: "GET", path: "/v1/devices", token: rep1, status: 200, check: hasDevices()},

				{name: "mutes: none yet", method: "GET", path: "/v1/me/notifications", token: rep1, status: 200, check: muted()},
				{name: "mute", method: "PUT", path: "/v1/me/notifications", token: rep1,
					body: map[string]any{"muted": []string{"order_status", "visit_plan", "order_status"}}, status: 200, check: muted("order_status", "visit_plan")},
				{name: "unknown category", method: "PUT", path: "/v1/me/notifications", token: rep1,
					body: map[string]any{"muted": []string{"visit_plan", "spam"}}, status: 400, code: "invalid_request", pointer: "/muted/1"},
				{name: "muted is required", method: "PUT", path: "/v1/me/notifications", token: rep1, body: map[string]any{}, status: 400,
					code: "invalid_request", pointer: "/muted"},
				{name: "unchanged by bad input", method: "GET", path: "/v1/me/notifications", token: rep1, status: 200, check: muted("order_status", "visit_plan")},
				{name: "per user", method: "GET", path: "/v1/me/notifications", token: rep2, status: 200, check: muted()},

				{name: "quiet hours are the admin's", method: "PUT", path: "/v1/admin/org/quiet-hours", token: rep1,
					body: map[string]any{"start": "22:00", "end": "07:00"}, status: 403, code: "forbidden"},
				{name: "no quiet hours", method: "GET", path: "/v1/admin/org/quiet-hours", token: admin, status: 200, check: quietIs("null", "null")},
				{name: "set quiet hours", method: "PUT", path: "/v1/admin/org/quiet-hours", token: admin,
					body: map[string]any{"start": "22:00", "end": "07:00"}, status: 200, check: quietIs(`"22:00"`, `"07:00"`)},
				{name: "bad start", method: "PUT", path: "/v1/admin/org/quiet-hours", token: admin,
					body: map[string]any{"start": "24:00", "end": "07:00"}, status: 400, code: "invalid_request", pointer: "/start"},
				{name: "end missing", method: "PUT", path: "/v1/admin/org/quiet-hours", token: admin,
					body: map[string]any{"start": "22:00"}, status: 400, code: "invalid_request", pointer: "/end"},
				{name: "kept", method: "GET", path: "/v1/admin/org/quiet-hours", token: admin, status: 200, check: quietIs(`"22:00"`, `"07:00"`)},
				{name: "other org unaffected", method: "GET", path: "/v1/admin/org/quiet-hours", token: w.Operator("globex"), status: 200, check: quietIs("null", "null")},
				{name: "off", method: "PUT", path: "/v1/admin/org/quiet-hours", token: admin,
					body: map[string]any{"start": nil, "end": nil}, status: 200, check: quietIs("null", "null")},
			})
		})
	}
}

func muted(want ...string) func(t *testing.T, raw []byte) {
	return func(t *testing.T, raw []byte) {
		t.Helper()
		var r struct {
			Muted      []string `json:"muted"`
			Categories []string `json:"categories"`
		}
		json.Unmarshal(raw, &r)
		if !slices.Equal(r.Muted, append([]string{}, want...)) || len(r.Categories) != 4 {
			t.Fatalf("prefs %s, want muted %v", raw, want)
		}
	}
}

func quietIs(start, end string) func(t *testing.T, raw []byte) {
	return func(t *testing.T, raw []byte) {
		t.Helper()
		if want := fmt.Sprintf(`{"start":%s,"end":%s}`, start, end); string(raw) != want {
			t.Fatalf("quiet hours %s, want %s", raw, want)
		}
	}
}

// TestDeviceForgottenAtSignOut: a device registered under a sign-in session
// (the id defaults to the session's device) loses its token when the
// session ends, by logout or by an admin revoking the device.
func TestDeviceForgottenAtSignOut(t *testing.T) {
	t.Parallel()
	w := newAccWorld(t, onSQLite)
	w.AddUser("acme", accUser{ID: "rep-1", Roles: []string{"rep"}, Password: true})
	signIn := func(device string) string {
		st, g, e := login(t, w.Server, "rep-1@acme.example", testPassword, device)
		if st != 200 {
			t.Fatalf("login: %d %+v", st, e)
		}
		return g.AccessToken
	}
	a, b := signIn("phone-a"), signIn("phone-b")
	for _, tok := range []string{a, b} {
		if st, raw := doRaw(t, "POST", w.Server.URL+"/v1/devices", tok,
			mustJSON(t, map[string]any{"token": "fcm-" + tok[len(tok)-8:], "platform": "android", "app_version": "1.0"})); st != 200 {
			t.Fatalf("register: %d %s", st, raw)
		}
	}
	list := func(tok string) []string {
		st, raw := doRaw(t, "GET", w.Server.URL+"/v1/devices", tok, nil)
		if st != 200 {
			t.Fatalf("list: %d %s", st, raw)
		}
		return deviceIDs(t, raw)
	}
	if got := list(b); !slices.Equal(got, []string{"phone-a", "phone-b"}) {
		t.Fatalf("devices %v", got)
	}
	if st, raw := doRaw(t, "POST", w.Server.URL+"/v1/auth/logout", a, nil); st != 204 {
		t.Fatalf("logout: %d %s", st, raw)
	}
	if got := list(b); !slices.Equal(got, []string{"phone-b"}) {
		t.Fatalf("after logout of phone-a: %v", got)
	}
	w.Admin("acme", "DELETE", "/users/rep-1/devices/phone-b", nil, 200)
	if got := list(w.Token("acme", "rep-1", "rep")); len(got) != 0 {
		t.Fatalf("after revoking phone-b: %v", got)
	}
}
