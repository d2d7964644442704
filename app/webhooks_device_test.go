package app_test

// device.registered (docs/integrations.md): devices live in the push
// registry, not in the change feed; the write that creates a device record
// carries its registration, and the webhook tailer turns it into one
// delivery per subscription before taking it. On SQLite and on MongoDB
// (FerretDB), where two instances share the database and both tail.

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/webhook"
)

func TestWebhookDeviceRegistered(t *testing.T) {
	t.Parallel()
	for _, st := range wfStores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			tweak := st.store(t)
			cfg := func(c *serveConfig) {
				fastSignIn(c)
				c.Webhooks.AllowLoopback, c.Webhooks.Poll = true, 10*time.Millisecond
				if tweak != nil {
					tweak(c)
				}
			}
			ts := startServer(t, "", cfg)
			servers := []*testServer{ts}
			if st.name == "mongodb" {
				servers = append(servers, startServer(t, "", cfg)) // one database, two tailers
			}
			w := newWFWorldOn(t, &accWorld{T: t, Server: ts})

			var mu sync.Mutex
			secrets := map[string]string{}
			got := map[string][]string{} // path -> bodies, in arrival order
			ids := map[string]int{}      // webhook-id -> requests
			bad := 0
			hs := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				mu.Lock()
				defer mu.Unlock()
				if webhook.Verify(r.Header, body, secrets[r.URL.Path], time.Now(), 0) != nil {
					bad++
				}
				got[r.URL.Path] = append(got[r.URL.Path], string(body))
				ids[r.Header.Get(webhook.HeaderID)]++
				rw.WriteHeader(http.StatusNoContent)
			}))
			t.Cleanup(hs.Close)
			var sub, beta whReply
			json.Unmarshal(w.Admin("acme", "POST", "/webhooks", map[string]any{"url": hs.URL + "/acme",
				"events": []string{webhook.EventDeviceRegistered}}, 201), &sub)
			json.Unmarshal(w.Admin("beta", "POST", "/webhooks", map[string]any{"url": hs.URL + "/beta",
				"events": webhook.EventTypes}, 201), &beta)
			mu.Lock()
			secrets["/acme"], secrets["/beta"] = sub.Secret, beta.Secret
			mu.Unlock()

			register := func(on *testServer, user, role, device, token, platform string) {
				t.Helper()
				st, raw := doRaw(t, "POST", on.URL+"/v1/devices", on.Token(t, "acme", user, role),
					mustJSON(t, map[string]any{"device_id": device, "token": token, "platform": platform, "app_version": "2.1.0"}))
				if st != 200 {
					t.Fatalf("register %s: %d %s", device, st, raw)
				}
			}
			last := servers[len(servers)-1]
			register(ts, "rep-1", "rep", "phone-1", "fcm-token-aaaa", "android")
			// A refresh (a new token, on another instance) is no registration.
			register(last, "rep-1", "rep", "phone-1", "fcm-token-bbbb", "android")
			register(last, "mgr-1", "manager", "tablet-1", "fcm-token-cccc", "ios")
			if list := allSent(t, w.accWorld, sub.ID, 2); len(list) != 2 {
				t.Fatalf("%d deliveries for two registrations and a refresh, want 2", len(list))
			}
			// Forgotten and registered again: a new registration.
			if st, raw := doRaw(t, "DELETE", ts.URL+"/v1/devices/phone-1", ts.Token(t, "acme", "rep-1", "rep"), nil); st != 204 && st != 200 {
				t.Fatalf("delete: %d %s", st, raw)
			}
			register(last, "rep-1", "rep", "phone-1", "fcm-token-dddd", "android")
			list := allSent(t, w.accWorld, sub.ID, 3)

			mu.Lock()
			defer mu.Unlock()
			if len(list) != 3 || len(ids) != 3 {
				t.Fatalf("%d deliveries, %d webhook-ids at the endpoint; want 3 each", len(list), len(ids))
			}
			for id, n := range ids {
				if n != 1 {
					t.Errorf("%s delivered %d times", id, n)
				}
			}
			if bad != 0 {
				t.Errorf("%d deliveries failed verification", bad)
			}
			if len(got["/beta"]) != 0 {
				t.Errorf("another organisation's endpoint got %v", got["/beta"])
			}
			var seen []string
			for _, b := range got["/acme"] {
				if strings.Contains(b, "fcm-token") {
					t.Errorf("a body carries the push token: %s", b)
				}
				var ev struct {
					Type string         `json:"type"`
					Data map[string]any `json:"data"`
				}
				if err := json.Unmarshal([]byte(b), &ev); err != nil || ev.Type != webhook.EventDeviceRegistered {
					t.Fatalf("body %s: %v", b, err)
				}
				if keys := slices.Sorted(maps.Keys(ev.Data)); !slices.Equal(keys, []string{"device_id", "platform", "user_id"}) {
					t.Errorf("data fields %v, want device_id, platform, user_id", keys)
				}
				seen = append(seen, ev.Data["user_id"].(string)+"/"+ev.Data["device_id"].(string)+"/"+ev.Data["platform"].(string))
			}
			slices.Sort(seen)
			if want := []string{"mgr-1/tablet-1/ios", "rep-1/phone-1/android", "rep-1/phone-1/android"}; !slices.Equal(seen, want) {
				t.Errorf("events %v, want %v", seen, want)
			}
		})
	}
}
