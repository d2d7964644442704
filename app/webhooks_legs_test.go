package app_test

// The delivery and invoicing legs of the integration loop (issue 15, point
// 3), with the real binary on SQLite and on MongoDB (FerretDB): after the order desk confirmed
// the order and the stores dispatched it, a transport system's connector
// hears follow_up.done for the dispatch and completes the delivery with its
// proof of delivery through its own service account (role logistics); a
// billing connector hears order.status_changed(delivered) and completes the
// invoice with the invoice number (role billing). Both endpoints verify
// every signature and answer like real ones: 500 first, then 429 with
// Retry-After, then a reply lost after the work was done. The order
// reaches delivered and invoiced exactly once, and the rep's phone (fake
// FCM) is told of each step exactly once.

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/fakefcm"
	"github.com/fieldsync/fieldsync/jwtauth"
	"github.com/fieldsync/fieldsync/webhook"
)

// connector is an integration's endpoint: it verifies each delivery,
// fails its first answers, dedupes by webhook-id and calls act once per
// event it processes (act false: not done yet, answer 500 to be retried).
type connector struct {
	t      *testing.T
	secret string
	act    func(ev connectorEvent) bool

	mu        sync.Mutex
	bad       int
	attempts  map[string]int  // webhook-id -> requests
	processed map[string]bool // webhook-id -> acted on
	statuses  map[string]int  // order.status_changed: status -> distinct webhook-ids processed
}

type connectorEvent struct {
	Type string `json:"type"`
	Data struct {
		FollowUpID string `json:"follow_up_id"`
		OrderID    string `json:"order_id"`
		Activity   string `json:"activity"`
		Status     string `json:"status"`
	} `json:"data"`
}

func newConnector(t *testing.T, act func(connectorEvent) bool) *connector {
	return &connector{t: t, act: act, attempts: map[string]int{}, processed: map[string]bool{}, statuses: map[string]int{}}
}

func (c *connector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id := r.Header.Get(webhook.HeaderID)
	c.mu.Lock()
	if webhook.Verify(r.Header, body, c.secret, time.Now(), 0) != nil {
		c.bad++
		c.mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	c.attempts[id]++
	n, done := c.attempts[id], c.processed[id]
	c.mu.Unlock()
	switch {
	case n == 1:
		w.WriteHeader(http.StatusInternalServerError)
		return
	case n == 2:
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
		return
	case done:
		w.WriteHeader(http.StatusNoContent)
		return
	}
	var ev connectorEvent
	json.Unmarshal(body, &ev)
	if !c.act(ev) {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	c.mu.Lock()
	c.processed[id] = true
	if ev.Type == webhook.EventOrderStatus {
		c.statuses[ev.Data.Status]++
	}
	c.mu.Unlock()
	if n == 3 {
		panic(http.ErrAbortHandler) // processed, the reply lost: it comes again
	}
	w.WriteHeader(http.StatusNoContent)
}

func (c *connector) count(status string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.statuses[status]
}

func TestWebhookLoopDeliveryAndInvoice(t *testing.T) {
	t.Parallel()
	for _, st := range wfStores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			fcm := fakefcm.Start()
			t.Cleanup(fcm.Close)
			creds := filepath.Join(t.TempDir(), "firebase.json")
			if err := fcm.ServiceAccount(creds, "fieldsync-legs"); err != nil {
				t.Fatal(err)
			}
			// The real binary: its FCM client is its own, as in production.
			data := t.TempDir()
			flags := []string{"--fcm-credentials", creds, "--fcm-endpoint", fcm.URL(), "--push-poll", "20ms",
				"--webhooks-allow-loopback", "--webhooks-poll", "20ms", "--webhooks-backoff", "20ms", "--webhooks-max-backoff", "3s",
				"--password-memory", "64", "--password-time", "1", "--password-threads", "1"}
			if st.name == "mongodb" {
				flags = append(flags, "--mongodb-uri", sharedFerret(t), "--mongodb-database", freshMongoDatabase(), "--mongodb-timeout", "1m")
			}
			p := startBinary(t, data, flags...)
			keys, err := jwtauth.LoadOrCreate(data)
			if err != nil {
				t.Fatal(err)
			}
			ts := &testServer{URL: p.URL, Data: data, Keys: keys}
			w := newWFWorldOn(t, &accWorld{T: t, Server: ts})
			if st, raw := doRaw(t, "POST", ts.URL+"/v1/devices", w.as("rep-1"), mustJSON(t, map[string]any{"device_id": "phone-1",
				"token": "tok-rep-phone", "platform": "android", "app_version": "5.0.0"})); st != 200 {
				t.Fatalf("register the rep's phone: %d %s", st, raw)
			}

			var tms, billing saReply
			json.Unmarshal(w.Admin("acme", "POST", "/service-accounts", map[string]any{"name": "TMS connector", "roles": []string{"logistics"}}, 201), &tms)
			json.Unmarshal(w.Admin("acme", "POST", "/service-accounts", map[string]any{"name": "Billing connector", "roles": []string{"billing"}}, 201), &billing)
			// complete claims and completes a follow-up with a connector's
			// key; false (retry later) when the follow-up cannot be yet.
			complete := func(key, fu string, result map[string]any) bool {
				doRaw(t, "POST", ts.URL+"/v1/followups/"+fu+"/claim", key, nil)
				st, raw := doRaw(t, "POST", ts.URL+"/v1/followups/"+fu+"/complete", key, mustJSON(t, map[string]any{"result": result}))
				if st != 200 {
					t.Logf("complete %s: %d %s", fu, st, raw)
				}
				return st == 200
			}
			// The transport system delivers what was dispatched and
			// completes the delivery with its proof of delivery.
			tmsHook := newConnector(t, func(ev connectorEvent) bool {
				if ev.Type != webhook.EventFollowUpDone || ev.Data.Activity != "dispatch" {
					return true
				}
				return complete(tms.Key, "fu-"+ev.Data.OrderID+"-delivery", map[string]any{"proof_of_delivery": "POD-" + ev.Data.OrderID})
			})
			// Billing invoices what was delivered.
			billingHook := newConnector(t, func(ev connectorEvent) bool {
				if ev.Type != webhook.EventOrderStatus || ev.Data.Status != "delivered" {
					return true
				}
				return complete(billing.Key, "fu-"+ev.Data.OrderID+"-invoice", map[string]any{"invoice_number": "RE-" + ev.Data.OrderID})
			})
			mux := http.NewServeMux()
			mux.Handle("/tms", tmsHook)
			mux.Handle("/billing", billingHook)
			hs := httptest.NewServer(mux)
			t.Cleanup(hs.Close)
			var tmsSub, billingSub whReply
			json.Unmarshal(w.Admin("acme", "POST", "/webhooks", map[string]any{"url": hs.URL + "/tms",
				"events": []string{"follow_up.done"}, "activities": []string{"dispatch"}}, 201), &tmsSub)
			json.Unmarshal(w.Admin("acme", "POST", "/webhooks", map[string]any{"url": hs.URL + "/billing",
				"events": []string{"order.status_changed"}}, 201), &billingSub)
			tmsHook.secret, billingHook.secret = tmsSub.Secret, billingSub.Secret

			// People do the first steps: availability, ERP entry, dispatch.
			w.submitOffline(t, "o-1", orderLines(0))
			w.mustAct(w.as("dp-1"), "fu-o-1-availability_check", "claim", nil)
			w.mustAct(w.as("dp-1"), "fu-o-1-availability_check", "complete", map[string]any{"note": "in stock"})
			w.mustAct(w.as("od-1"), "fu-o-1-erp_entry", "complete", map[string]any{"result": map[string]any{"erp_number": "4500001"}})
			w.mustAct(w.as("st-1"), "fu-o-1-dispatch", "complete", map[string]any{"note": "on the truck"})

			waitFor(t, 90*time.Second, "billing to hear the order invoiced", func() bool { return billingHook.count("invoiced") > 0 })
			o, _ := w.get("orders", "o-1")
			if o["status"] != "invoiced" || o["invoice_number"] != "RE-o-1" || o["erp_number"] != "4500001" {
				t.Fatalf("order: %v", o)
			}
			for _, c := range []struct{ fu, by, field, value string }{
				{"fu-o-1-delivery", tms.UserID, "proof_of_delivery", "POD-o-1"},
				{"fu-o-1-invoice", billing.UserID, "invoice_number", "RE-o-1"},
			} {
				fu, _ := w.get("follow_ups", c.fu)
				result, _ := fu["result"].(map[string]any)
				if fu["status"] != "done" || fu["closed_by"] != c.by || result[c.field] != c.value {
					t.Errorf("%s: %v", c.fu, fu)
				}
			}
			// Every delivery of both subscriptions ends sent.
			allSent(t, w.accWorld, tmsSub.ID, 1)
			allSent(t, w.accWorld, billingSub.ID, 3)
			for name, c := range map[string]*connector{"tms": tmsHook, "billing": billingHook} {
				c.mu.Lock()
				if c.bad != 0 {
					t.Errorf("%s: %d deliveries failed verification", name, c.bad)
				}
				c.mu.Unlock()
			}
			for _, status := range []string{"confirmed", "delivered", "invoiced"} {
				if n := billingHook.count(status); n != 1 {
					t.Errorf("order.status_changed(%s) processed %d times, want once", status, n)
				}
			}

			// The rep's phone: told of the delivery, the invoice and each
			// order status exactly once.
			type told struct{ typ, id string }
			var byNotification map[string]int
			var seen map[told]int
			waitFor(t, 60*time.Second, "the rep's phone to be told of delivery, invoice and three statuses", func() bool {
				byNotification, seen = map[string]int{}, map[told]int{}
				for _, r := range fcm.Delivered() {
					var m struct {
						Data map[string]string `json:"data"`
					}
					if r.Token != "tok-rep-phone" || json.Unmarshal(r.Message, &m) != nil {
						continue
					}
					if byNotification[m.Data["notification_id"]]++; byNotification[m.Data["notification_id"]] == 1 {
						seen[told{m.Data["type"], m.Data["id"]}]++
					}
				}
				return seen[told{"follow_up_done", "fu-o-1-delivery"}] == 1 && seen[told{"follow_up_done", "fu-o-1-invoice"}] == 1 &&
					seen[told{"order_status", "o-1"}] >= 3
			})
			for id, n := range byNotification {
				if n != 1 {
					t.Errorf("notification %s reached the phone %d times", id, n)
				}
			}
			if n := seen[told{"order_status", "o-1"}]; n != 3 {
				t.Errorf("%d order status notifications, want 3 (confirmed, delivered, invoiced)", n)
			}
		})
	}
}
