package app_test

// System tests of service accounts (issue 15, docs/integrations.md): an
// admin creates one, its API key (shown once) works the order desk's
// follow-ups exactly like an order-desk user and is recorded as the actor;
// rotation keeps the old key for the overlap only, revocation ends every
// key at once, another organisation's ids answer like missing ones, and no
// key reaches the log.

import (
	"encoding/json"
	"strings"
	"testing"
)

type saReply struct {
	ID      string   `json:"id"`
	UserID  string   `json:"user_id"`
	Name    string   `json:"name"`
	Roles   []string `json:"roles"`
	Revoked bool     `json:"revoked"`
	Key     string   `json:"key"`
	PrevEnd string   `json:"previous_key_valid_until"`
}

func TestServiceAccounts(t *testing.T) {
	t.Parallel()
	for _, st := range wfStores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			logs := &syncBuffer{}
			tweak := st.store(t)
			ts := startServerWith(t, "", func(c *serveConfig) {
				fastSignIn(c)
				c.LogFormat, c.LogLevel = "json", "debug"
				if tweak != nil {
					tweak(c)
				}
			}, logs)
			w := newWFWorldOn(t, &accWorld{T: t, Server: ts})

			// Bad input: stable codes with pointers, nothing created.
			for _, bad := range []struct {
				body      map[string]any
				code, ptr string
			}{
				{map[string]any{"name": "ERP", "roles": []string{}}, "invalid_request", "/roles"},
				{map[string]any{"name": "ERP", "roles": []string{"order_desk", "admin"}}, "service_account_role", "/roles/1"},
				{map[string]any{"name": "ERP", "roles": []string{"astronaut"}}, "unknown_role", "/roles/0"},
				{map[string]any{"name": "", "roles": []string{"order_desk"}}, "invalid_request", "/name"},
			} {
				var m map[string]any
				json.Unmarshal(w.Admin("acme", "POST", "/service-accounts", bad.body, 400), &m)
				if code, ptr := errCode(m); code != bad.code || ptr != bad.ptr {
					t.Errorf("%v: %s %s, want %s %s", bad.body, code, ptr, bad.code, bad.ptr)
				}
			}

			var sa saReply
			json.Unmarshal(w.Admin("acme", "POST", "/service-accounts", map[string]any{"name": "ERP connector", "roles": []string{"order_desk"}}, 201), &sa)
			if !strings.HasPrefix(sa.Key, "fsk_"+sa.ID+"_") || sa.UserID != "svc:"+sa.ID {
				t.Fatalf("created: %+v", sa)
			}
			key1 := sa.Key
			var again saReply
			json.Unmarshal(w.Admin("acme", "GET", "/service-accounts/"+sa.ID, nil, 200), &again)
			if again.Key != "" || again.Name != "ERP connector" {
				t.Fatalf("the key is shown once only: %+v", again)
			}
			var list struct {
				ServiceAccounts []saReply `json:"service_accounts"`
			}
			json.Unmarshal(w.Admin("acme", "GET", "/service-accounts", nil, 200), &list)
			if len(list.ServiceAccounts) != 1 || list.ServiceAccounts[0].Key != "" {
				t.Fatalf("list: %+v", list)
			}
			// Another organisation's admin: the id answers like a missing one.
			w.Admin("beta", "GET", "/service-accounts/"+sa.ID, nil, 404)
			w.Admin("beta", "POST", "/service-accounts/"+sa.ID+"/revoke", nil, 404)
			json.Unmarshal(w.Admin("beta", "GET", "/service-accounts", nil, 200), &list)
			if len(list.ServiceAccounts) != 0 {
				t.Fatalf("beta lists acme's accounts: %+v", list)
			}

			// The key authenticates like a user of its roles.
			var me meReplyT
			if s := do(t, "GET", w.Server.URL+"/v1/me", key1, nil, &me); s != 200 || me.ID != sa.UserID || me.Org != "acme" ||
				len(me.Roles) != 1 || me.Roles[0] != "order_desk" {
				t.Fatalf("/v1/me with the key: %d %+v", s, me)
			}
			if s, raw := doRaw(t, "GET", w.Server.URL+"/v1/admin/users", key1, nil); s != 403 {
				t.Fatalf("the admin API with an order_desk key: %d %s", s, raw)
			}
			w.submitOffline(t, "o-1", orderLines(0))
			w.mustAct(w.as("dp-1"), "fu-o-1-availability_check", "claim", nil)
			w.mustAct(w.as("dp-1"), "fu-o-1-availability_check", "complete", map[string]any{"note": "in stock"})
			// Not its role: the rep's and billing's follow-ups stay out of reach.
			if s, reply := w.act(key1, "fu-o-1-invoice", "claim", nil); s != 404 && s != 403 {
				t.Fatalf("the order desk's key claims billing's follow-up: %d %v", s, reply)
			}
			claimed := w.mustAct(key1, "fu-o-1-erp_entry", "claim", nil)
			if claimed["assigned_to"] != sa.UserID {
				t.Fatalf("claimed follow-up does not record the service account: %v", claimed)
			}

			// Rotation with an overlap: both keys work.
			var rot saReply
			json.Unmarshal(w.Admin("acme", "POST", "/service-accounts/"+sa.ID+"/rotate", map[string]any{"overlap_seconds": 3600}, 200), &rot)
			key2 := rot.Key
			if key2 == "" || key2 == key1 || rot.PrevEnd == "" {
				t.Fatalf("rotated: %+v", rot)
			}
			for _, k := range []string{key1, key2} {
				if s := do(t, "GET", w.Server.URL+"/v1/me", k, nil, &me); s != 200 || me.ID != sa.UserID {
					t.Fatalf("during the overlap: %d %+v", s, me)
				}
			}
			// Another organisation's service account: acme's ids are missing.
			var beta saReply
			json.Unmarshal(w.Admin("beta", "POST", "/service-accounts", map[string]any{"name": "ERP", "roles": []string{"order_desk"}}, 201), &beta)
			s1, r1 := w.act(beta.Key, "fu-o-1-erp_entry", "complete", map[string]any{"result": map[string]any{"erp_number": "X"}})
			s2, r2 := w.act(beta.Key, "fu-nope", "complete", map[string]any{"result": map[string]any{"erp_number": "X"}})
			if c1, _ := errCode(r1); s1 != 404 || s2 != 404 || c1 != "not_found" ||
				strings.ReplaceAll(stringOf(r1), "fu-o-1-erp_entry", "ID") != strings.ReplaceAll(stringOf(r2), "fu-nope", "ID") {
				t.Fatalf("beta's key on acme's follow-up: %d %v / missing: %d %v", s1, r1, s2, r2)
			}

			done := w.mustAct(key2, "fu-o-1-erp_entry", "complete", map[string]any{"note": "entered by ERP", "result": map[string]any{"erp_number": "4500001"}})
			if done["status"] != "done" {
				t.Fatalf("completed: %v", done)
			}
			if o, _ := w.get("orders", "o-1"); o["status"] != "confirmed" || o["erp_number"] != "4500001" {
				t.Fatalf("order after the service account's completion: %v", o)
			}
			if done["closed_by"] != sa.UserID {
				t.Fatalf("the completed follow-up does not record the service account: %v", done)
			}

			// Rotation without overlap: the previous key (key2) stops at once.
			json.Unmarshal(w.Admin("acme", "POST", "/service-accounts/"+sa.ID+"/rotate", map[string]any{"overlap_seconds": 0}, 200), &rot)
			key3 := rot.Key
			for _, k := range []string{key1, key2} {
				if s, raw := doRaw(t, "GET", w.Server.URL+"/v1/me", k, nil); s != 401 {
					t.Fatalf("a superseded key after rotation without overlap: %d %s", s, raw)
				}
			}
			if s := do(t, "GET", w.Server.URL+"/v1/me", key3, nil, &me); s != 200 {
				t.Fatalf("the new key: %d", s)
			}
			var bad map[string]any
			json.Unmarshal(w.Admin("acme", "POST", "/service-accounts/"+sa.ID+"/rotate", map[string]any{"overlap_seconds": -1}, 400), &bad)
			if code, ptr := errCode(bad); code != "invalid_request" || ptr != "/overlap_seconds" {
				t.Fatalf("a negative overlap: %v", bad)
			}

			// Revocation: every key stops at once.
			var rev saReply
			json.Unmarshal(w.Admin("acme", "POST", "/service-accounts/"+sa.ID+"/revoke", nil, 200), &rev)
			if !rev.Revoked {
				t.Fatalf("revoked: %+v", rev)
			}
			if s, raw := doRaw(t, "GET", w.Server.URL+"/v1/me", key3, nil); s != 401 {
				t.Fatalf("a revoked key: %d %s", s, raw)
			}
			// A forged secret for a live account is refused the same way.
			forged := "fsk_" + beta.ID + "_" + strings.Repeat("A", 43)
			if s, raw := doRaw(t, "GET", w.Server.URL+"/v1/me", forged, nil); s != 401 {
				t.Fatalf("a forged key: %d %s", s, raw)
			}

			// No key, nor its secret, ever reaches the log.
			for _, k := range []string{key1, key2, key3, beta.Key} {
				secret := k[len("fsk_")+26+1:] // base64url: the secret itself may hold "_"
				if len(secret) != 43 {
					t.Fatalf("a key's secret is %d characters, want 43", len(secret))
				}
				if strings.Contains(logs.String(), secret) {
					t.Fatalf("the log holds an API key's secret")
				}
			}
			if !strings.Contains(logs.String(), "/v1/me") {
				t.Fatalf("the log recorded no request at all: the check above proves nothing")
			}
		})
	}
}

type meReplyT struct {
	Org   string   `json:"org"`
	ID    string   `json:"id"`
	Roles []string `json:"roles"`
}
