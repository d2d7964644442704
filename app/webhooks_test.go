package app_test

// The integration loop of issue 15 (docs/integrations.md) through the real
// server, on SQLite and on the MongoDB store (FerretDB): an order accepted
// from a phone creates the ERP entry follow-up; its follow_up.created
// webhook reaches a fake ERP that verifies every signature and answers like
// a real endpoint (500 first, then 429 with Retry-After, then a reply lost
// after it processed the event); the ERP calls back with its service
// account to claim and complete the follow-up with its ERP number, and the
// order is confirmed exactly once. Another organisation's endpoint hears
// nothing; an endpoint that keeps failing is disabled with its reason; an
// admin redelivers under the same webhook-id.

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/apptest"
	"github.com/fieldsync/fieldsync/webhook"
)

// fakeERP is an ERP connector's endpoint.
type fakeERP struct {
	t       *testing.T
	base    string // fieldsync's URL
	key     string // the ERP's service account key
	secrets map[string]string

	mu        sync.Mutex
	bad       int                    // requests whose signature did not verify
	answers   map[string][]int       // webhook-id -> statuses answered, in order
	times     map[string][]time.Time // webhook-id -> when each attempt arrived
	processed map[string]bool        // webhook-ids acted on (the subscriber's dedupe)
	events    map[string][]string    // path -> event types received (processed)
	confirmed map[string]int         // order id -> distinct order.status_changed(confirmed) webhook-ids
	requests  map[string]int         // path -> requests
}

func (e *fakeERP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id := r.Header.Get(webhook.HeaderID)
	e.mu.Lock()
	e.requests[r.URL.Path]++
	secret := e.secrets[r.URL.Path]
	if err := webhook.Verify(r.Header, body, secret, time.Now(), 0); err != nil {
		e.bad++
		e.mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.URL.Path == "/down" {
		e.answers[id] = append(e.answers[id], 503)
		e.mu.Unlock()
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	e.times[id] = append(e.times[id], time.Now())
	n := len(e.times[id])
	var ev struct {
		Type string `json:"type"`
		Data struct {
			FollowUpID string `json:"follow_up_id"`
			OrderID    string `json:"order_id"`
			Activity   string `json:"activity"`
			Status     string `json:"status"`
		} `json:"data"`
	}
	json.Unmarshal(body, &ev)
	// A real endpoint's first answers: an error, then too many requests.
	if n == 1 {
		e.answers[id] = append(e.answers[id], 500)
		e.mu.Unlock()
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	if n == 2 {
		e.answers[id] = append(e.answers[id], 429)
		e.mu.Unlock()
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	done := e.processed[id]
	e.mu.Unlock()
	if !done {
		if ev.Type == webhook.EventFollowUpCreated && ev.Data.Activity == "erp_entry" {
			// The connector enters the order and closes the follow-up with
			// its service account; until the follow-up may be completed it
			// answers 500 and the delivery is tried again.
			doRaw(e.t, "POST", e.base+"/v1/followups/"+ev.Data.FollowUpID+"/claim", e.key, nil)
			st, raw := doRaw(e.t, "POST", e.base+"/v1/followups/"+ev.Data.FollowUpID+"/complete", e.key,
				mustJSON(e.t, map[string]any{"note": "entered by the ERP", "result": map[string]any{"erp_number": "ERP-" + ev.Data.OrderID}}))
			if st != 200 {
				e.mu.Lock()
				e.answers[id] = append(e.answers[id], 500)
				e.mu.Unlock()
				e.t.Logf("ERP: complete %s: %d %s", ev.Data.FollowUpID, st, raw)
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
		}
		e.mu.Lock()
		e.processed[id] = true
		e.events[r.URL.Path] = append(e.events[r.URL.Path], ev.Type)
		if ev.Type == webhook.EventOrderStatus && ev.Data.Status == "confirmed" {
			e.confirmed[ev.Data.OrderID]++
		}
		e.mu.Unlock()
		if n == 3 {
			// Processed, but the reply is lost: the delivery comes again
			// and the webhook-id tells it is done.
			e.mu.Lock()
			e.answers[id] = append(e.answers[id], 0)
			e.mu.Unlock()
			panic(http.ErrAbortHandler)
		}
	}
	e.mu.Lock()
	e.answers[id] = append(e.answers[id], 200)
	e.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

type whReply = apptest.WebhookReply

func TestWebhookLoop(t *testing.T) {
	t.Parallel()
	for _, st := range wfStores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			tweak := st.store(t)
			ts := startServer(t, "", func(c *serveConfig) {
				fastSignIn(c)
				c.Webhooks.AllowLoopback, c.Webhooks.Poll = true, 20*time.Millisecond
				c.Webhooks.BaseBackoff, c.Webhooks.MaxBackoff = 20*time.Millisecond, 3*time.Second
				c.Webhooks.DisableAfter, c.Webhooks.FailingFor = 10, time.Millisecond
				if tweak != nil {
					tweak(c)
				}
			})
			w := newWFWorldOn(t, &accWorld{T: t, Server: ts})
			erp := &fakeERP{t: t, base: ts.URL, secrets: map[string]string{}, answers: map[string][]int{}, times: map[string][]time.Time{},
				processed: map[string]bool{}, events: map[string][]string{}, confirmed: map[string]int{}, requests: map[string]int{}}
			hs := httptest.NewServer(erp)
			t.Cleanup(hs.Close)

			// Bad subscriptions are refused with their pointer.
			for _, bad := range []struct {
				body      map[string]any
				code, ptr string
			}{
				{map[string]any{"url": "http://169.254.169.254/latest", "events": []string{"follow_up.created"}}, "webhook_url_not_allowed", "/url"},
				{map[string]any{"url": "https://10.0.0.1/hook", "events": []string{"follow_up.created"}}, "webhook_url_not_allowed", "/url"},
				{map[string]any{"url": hs.URL + "/erp", "events": []string{"order.shipped"}}, "unknown_event_type", "/events/0"},
				{map[string]any{"url": hs.URL + "/erp", "events": []string{}}, "invalid_request", "/events"},
			} {
				var m map[string]any
				json.Unmarshal(w.Admin("acme", "POST", "/webhooks", bad.body, 400), &m)
				if code, ptr := errCode(m); code != bad.code || ptr != bad.ptr {
					t.Errorf("%v: %s %s, want %s %s", bad.body, code, ptr, bad.code, bad.ptr)
				}
			}

			var sa saReply
			json.Unmarshal(w.Admin("acme", "POST", "/service-accounts", map[string]any{"name": "ERP connector", "roles": []string{"order_desk"}}, 201), &sa)
			erp.key = sa.Key
			var sub, down, beta whReply
			json.Unmarshal(w.Admin("acme", "POST", "/webhooks", map[string]any{"url": hs.URL + "/erp",
				"events": []string{"follow_up.created", "order.status_changed"}, "roles": []string{"order_desk"}}, 201), &sub)
			json.Unmarshal(w.Admin("acme", "POST", "/webhooks", map[string]any{"url": hs.URL + "/down",
				"events": []string{"order.status_changed"}}, 201), &down)
			json.Unmarshal(w.Admin("beta", "POST", "/webhooks", map[string]any{"url": hs.URL + "/beta",
				"events": webhook.EventTypes}, 201), &beta)
			erp.mu.Lock()
			erp.secrets["/erp"], erp.secrets["/down"], erp.secrets["/beta"] = sub.Secret, down.Secret, beta.Secret
			erp.mu.Unlock()
			if sub.Secret == "" || sub.ID == "" {
				t.Fatalf("subscription: %+v", sub)
			}
			var again whReply
			json.Unmarshal(w.Admin("acme", "GET", "/webhooks/"+sub.ID, nil, 200), &again)
			if again.Secret != "" {
				t.Fatal("the secret is shown again")
			}
			w.Admin("beta", "GET", "/webhooks/"+sub.ID, nil, 404)

			// The rep's order, accepted; a person checks availability.
			w.submitOffline(t, "o-1", orderLines(0))
			w.mustAct(w.as("dp-1"), "fu-o-1-availability_check", "claim", nil)
			w.mustAct(w.as("dp-1"), "fu-o-1-availability_check", "complete", map[string]any{"note": "in stock"})

			waitFor(t, 90*time.Second, "the ERP to confirm the order", func() bool {
				erp.mu.Lock()
				defer erp.mu.Unlock()
				return erp.confirmed["o-1"] > 0
			})
			o, _ := w.get("orders", "o-1")
			if o["status"] != "confirmed" || o["erp_number"] != "ERP-o-1" {
				t.Fatalf("order: %v", o)
			}
			fu, _ := w.get("follow_ups", "fu-o-1-erp_entry")
			if fu["closed_by"] != sa.UserID || fu["status"] != "done" {
				t.Fatalf("erp_entry: %v", fu)
			}
			waitFor(t, 60*time.Second, "the failing endpoint to be disabled", func() bool {
				var d whReply
				json.Unmarshal(w.Admin("acme", "GET", "/webhooks/"+down.ID, nil, 200), &d)
				return d.Disabled && d.DisabledReason != ""
			})

			erp.mu.Lock()
			if erp.bad != 0 {
				t.Errorf("%d deliveries failed signature verification", erp.bad)
			}
			if erp.confirmed["o-1"] != 1 {
				t.Errorf("order o-1 confirmed %d times, want once", erp.confirmed["o-1"])
			}
			if erp.requests["/beta"] != 0 {
				t.Errorf("another organisation's endpoint got %d deliveries", erp.requests["/beta"])
			}
			// Retry-After: 1 was honoured, whatever the backoff said.
			for id, ts := range erp.times {
				a := erp.answers[id]
				for i := 0; i+1 < len(ts) && i < len(a); i++ {
					if a[i] == 429 && ts[i+1].Sub(ts[i]) < 900*time.Millisecond {
						t.Errorf("%s: retried %v after a 429 with Retry-After: 1", id, ts[i+1].Sub(ts[i]))
					}
				}
			}
			created := 0
			for _, ev := range erp.events["/erp"] {
				if ev == webhook.EventFollowUpCreated {
					created++
				}
			}
			erp.mu.Unlock()
			if created != 1 {
				// Only erp_entry is the order desk's: the role filter holds.
				t.Errorf("follow_up.created processed %d times on /erp, want 1 (erp_entry only)", created)
			}

			// The deliveries as the admin sees them; a redelivery keeps its id.
			var list struct {
				Deliveries []struct {
					ID       string `json:"id"`
					Event    string `json:"event"`
					Status   string `json:"status"`
					Attempts int    `json:"attempts"`
				} `json:"deliveries"`
			}
			json.Unmarshal(w.Admin("acme", "GET", "/webhooks/"+sub.ID+"/deliveries?status=sent", nil, 200), &list)
			if len(list.Deliveries) == 0 {
				t.Fatal("no sent deliveries listed")
			}
			first := list.Deliveries[0]
			if first.Attempts < 3 {
				t.Errorf("delivery %s sent after %d attempts, want at least 3 (500, 429, then success)", first.ID, first.Attempts)
			}
			w.Admin("beta", "POST", "/webhooks/"+sub.ID+"/deliveries/"+first.ID+"/redeliver", nil, 404)
			erp.mu.Lock()
			before := len(erp.times[first.ID])
			erp.mu.Unlock()
			w.Admin("acme", "POST", "/webhooks/"+sub.ID+"/deliveries/"+first.ID+"/redeliver", nil, 200)
			waitFor(t, 30*time.Second, "the redelivery", func() bool {
				erp.mu.Lock()
				defer erp.mu.Unlock()
				return len(erp.times[first.ID]) > before
			})
			var dead struct {
				Deliveries []struct {
					Status    string `json:"status"`
					LastError string `json:"last_error"`
				} `json:"deliveries"`
			}
			waitFor(t, 30*time.Second, "the disabled subscription's deliveries to be dead", func() bool {
				json.Unmarshal(w.Admin("acme", "GET", "/webhooks/"+down.ID+"/deliveries?status=pending", nil, 200), &dead)
				return len(dead.Deliveries) == 0
			})
			if s, raw := doRaw(t, "GET", ts.URL+"/v1/admin/webhooks/"+sub.ID+"/deliveries?limit="+strconv.Itoa(0), w.Operator("acme"), nil); s != 400 {
				t.Errorf("limit 0: %d %s", s, raw)
			}
		})
	}
}

// TestWebhookTwoInstances: two servers on one MongoDB database both tail
// and dispatch; every event reaches the endpoint exactly once.
func TestWebhookTwoInstances(t *testing.T) {
	t.Parallel()
	mongo := onMongoDB(t)
	tweak := func(c *serveConfig) {
		fastSignIn(c)
		mongo(c)
		c.Webhooks.AllowLoopback, c.Webhooks.Poll = true, 10*time.Millisecond
	}
	ts := startServer(t, "", tweak)
	startServer(t, "", tweak) // the second instance: same database, its own tailer and dispatcher
	w := newWFWorldOn(t, &accWorld{T: t, Server: ts})

	var mu sync.Mutex
	got := map[string]int{} // webhook-id -> requests
	var secret string
	bad := 0
	hs := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if webhook.Verify(r.Header, body, secret, time.Now(), 0) != nil {
			bad++
		}
		got[r.Header.Get(webhook.HeaderID)]++
		rw.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(hs.Close)
	var sub whReply
	json.Unmarshal(w.Admin("acme", "POST", "/webhooks", map[string]any{"url": hs.URL + "/",
		"events": webhook.EventTypes}, 201), &sub)
	mu.Lock()
	secret = sub.Secret
	mu.Unlock()

	w.submitOffline(t, "o-1", orderLines(0))
	w.mustAct(w.as("dp-1"), "fu-o-1-availability_check", "claim", nil)
	w.mustAct(w.as("dp-1"), "fu-o-1-availability_check", "complete", map[string]any{"note": "in stock"})
	w.mustAct(w.as("od-1"), "fu-o-1-erp_entry", "complete", map[string]any{"result": map[string]any{"erp_number": "4500001"}})

	// 5 follow-ups created, availability_check done, erp_entry done, the
	// order submitted and confirmed: at least 9 events (a claim overtaken by
	// its completion before a tailer read it is not announced).
	list := allSent(t, w.accWorld, sub.ID, 9)
	mu.Lock()
	defer mu.Unlock()
	if bad != 0 {
		t.Errorf("%d deliveries failed verification", bad)
	}
	for _, d := range list {
		if got[d.ID] != 1 || d.Attempts != 1 {
			t.Errorf("%s: received %d times, %d attempts; want once", d.ID, got[d.ID], d.Attempts)
		}
	}
	if len(got) != len(list) {
		t.Errorf("the endpoint saw %d webhook-ids, the store holds %d deliveries", len(got), len(list))
	}
}

// sentDelivery is a delivery as the admin API lists it.
type sentDelivery struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Attempts int    `json:"attempts"`
}

// allSent waits until the subscription has at least min deliveries, all
// sent, and returns them.
func allSent(t *testing.T, w *accWorld, sub string, min int) []sentDelivery {
	t.Helper()
	var list struct {
		Deliveries []sentDelivery `json:"deliveries"`
	}
	waitFor(t, 90*time.Second, "every delivery to be sent", func() bool {
		json.Unmarshal(w.Admin("acme", "GET", "/webhooks/"+sub+"/deliveries", nil, 200), &list)
		if len(list.Deliveries) < min {
			return false
		}
		for _, d := range list.Deliveries {
			if d.Status != webhook.StatusSent {
				return false
			}
		}
		return true
	})
	return list.Deliveries
}
