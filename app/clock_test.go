package app_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/app"
	"github.com/fieldsync/fieldsync/client"
	"github.com/fieldsync/fieldsync/internal/apptest"
)

// TestClockReachesTheServer: a server on a clock three days behind
// (app.Config.Clock, what the console tests shift) stamps what it writes by
// that clock: the access token, the session and whether it is live, a
// registered device, a submitted order, its follow-up's history, a visit's
// review. A part left on real time would be 72 hours off.
func TestClockReachesTheServer(t *testing.T) {
	t.Parallel()
	const behind = 72 * time.Hour
	clock := func() time.Time { return time.Now().Add(-behind) }
	w := newWFWorld(t, func(t testing.TB) func(*app.Config) {
		tweak := onSQLite(t)
		return func(c *app.Config) {
			if tweak != nil {
				tweak(c)
			}
			c.Clock = clock
			// Shorter than the shift: a session would be over by real time.
			c.SessionTTL = 48 * time.Hour
		}
	})
	near := func(what string, at time.Time) {
		t.Helper()
		if d := at.Sub(clock()); d < -10*time.Minute || d > time.Second {
			t.Errorf("%s at %v, want by the server's clock (%v), not real time", what, at.UTC(), clock().UTC())
		}
	}
	parse := func(what string, v any) time.Time {
		t.Helper()
		s, _ := v.(string)
		at, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatalf("%s: %v (%v)", what, err, v)
		}
		return at
	}

	w.AddUser("acme", accUser{ID: "rep-9", Roles: []string{"rep"}, Password: true})
	st, g, e := apptest.Login(t, w.Server.URL, "rep-9@acme.example", apptest.Password, "phone-9")
	if st != 200 {
		t.Fatalf("sign-in: %d %+v", st, e)
	}
	_, payload, _ := strings.Cut(g.AccessToken, ".")
	payload, _, _ = strings.Cut(payload, ".")
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	var claims struct {
		IssuedAt int64 `json:"iat"`
	}
	if err != nil || json.Unmarshal(raw, &claims) != nil {
		t.Fatalf("the access token's claims: %v %s", err, raw)
	}
	near("the access token's issue", time.Unix(claims.IssuedAt, 0).Add(time.Second/2))
	var sessions struct {
		Sessions []client.Session `json:"sessions"`
	}
	if err := json.Unmarshal(w.Admin("acme", "GET", "/users/rep-9/sessions", nil, 200), &sessions); err != nil || len(sessions.Sessions) != 1 {
		t.Fatalf("rep-9's sessions: %v %+v", err, sessions)
	}
	if s := sessions.Sessions[0]; !s.Live {
		t.Errorf("the session is not live (expires %v): judged by real time", s.ExpiresAt)
	} else {
		near("the session's start", s.Created)
	}
	if st := apptest.Do(t, "POST", w.Server.URL+"/v1/devices", g.AccessToken, apptest.MustJSON(t,
		map[string]any{"device_id": "phone-9", "token": "fcm-9", "platform": "android", "app_version": "5.0.1"}), nil); st/100 != 2 {
		t.Fatalf("register the phone: %d", st)
	}
	var devices struct {
		Devices []struct {
			Updated time.Time `json:"updated"`
		} `json:"devices"`
	}
	if st := apptest.Do(t, "GET", w.Server.URL+"/v1/devices", g.AccessToken, nil, &devices); st != 200 || len(devices.Devices) != 1 {
		t.Fatalf("the phones: %d %+v", st, devices)
	}
	near("the phone's registration", devices.Devices[0].Updated)

	w.pushAs("rep-1", mCreate("m-o", "orders", "o-1", withStatus(orderLines(0), "submitted")))
	o, _ := w.get("orders", "o-1")
	near("the order's submission", parse("submitted_at", o["submitted_at"]))
	f, _ := w.get("follow_ups", "fu-o-1-availability_check")
	hist, _ := f["history"].([]any)
	if len(hist) == 0 {
		t.Fatalf("the follow-up has no history: %v", f)
	}
	first, _ := hist[0].(map[string]any)
	near("the follow-up's creation", parse("history[0].at", first["at"]))
	w.mustAct(w.as("dp-1"), "fu-o-1-availability_check", "claim", nil)
	f, _ = w.get("follow_ups", "fu-o-1-availability_check")
	hist, _ = f["history"].([]any)
	last, _ := hist[len(hist)-1].(map[string]any)
	near("the claim", parse("the claim's at", last["at"]))

	in := clock().Add(-40 * time.Minute)
	w.pushAs("rep-1", mCreate("m-v", "visit_logs", "v-1", map[string]any{"customer_id": "c-1", "outcome": "info",
		"check_in": map[string]any{"at": in.Format(time.RFC3339Nano)}, "check_out": map[string]any{"at": in.Add(30 * time.Minute).Format(time.RFC3339Nano)}}))
	_, version := w.get("visit_logs", "v-1")
	w.Push(w.Operator("acme"), "console", []map[string]any{mUpdate("m-rv", "visit_logs", "v-1", version,
		map[string]any{"review": map[string]any{"status": "approved"}})})
	v, _ := w.get("visit_logs", "v-1")
	review, _ := v["review"].(map[string]any)
	near("the visit's review", parse("review.at", review["at"]))
}
