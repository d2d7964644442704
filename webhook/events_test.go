package webhook

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/sync/engine"
)

func change(coll, id string, body string) engine.Change {
	return engine.Change{Seq: 7, Collection: coll, ID: id, Version: 3, Body: json.RawMessage(body)}
}

func types(es []event) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.typ)
	}
	return out
}

// TestEvents: each state announces its events, with deterministic states;
// bodies carry ids and the event's fields, not the document.
func TestEvents(t *testing.T) {
	t.Parallel()
	fu := `{"status":"%s","activity":"erp_entry","order_id":"o-1","customer_id":"c-1","rep_id":"rep-1",
		"responsible_role":"order_desk","assigned_to":"svc:X","created_at":"2026-12-04T06:00:00Z","closed_at":"2026-12-04T06:10:00Z",
		"closed_by":"svc:X","result":{"erp_number":"4500001"},"blocked_at":"2026-12-04T06:05:00Z","blocked_reason":"no stock",
		"title":"Enter order in ERP","note":"internal note","informed_roles":["rep"]}`
	for status, want := range map[string][]string{
		"open":    {EventFollowUpCreated},
		"claimed": {EventFollowUpCreated, EventFollowUpClaimed},
		"done":    {EventFollowUpCreated, EventFollowUpDone},
		"blocked": {EventFollowUpCreated, EventFollowUpBlocked},
	} {
		es := events(change("follow_ups", "fu-1", strings.Replace(fu, "%s", status, 1)))
		if got := types(es); !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", status, got, want)
		}
		for _, e := range es {
			b, _ := body(e, time.Now())
			if strings.Contains(string(b), "internal note") || strings.Contains(string(b), "informed_roles") {
				t.Errorf("%s body carries the document: %s", e.typ, b)
			}
			if !strings.Contains(string(b), `"follow_up_id":"fu-1"`) || !strings.Contains(string(b), `"type":"`+e.typ+`"`) {
				t.Errorf("%s body: %s", e.typ, b)
			}
		}
	}
	esc := events(change("follow_ups", "fu-1", `{"status":"open","escalated_at":"2026-12-04T07:00:00Z","created_at":"2026-12-04T06:00:00Z"}`))
	if got := types(esc); !slices.Equal(got, []string{EventFollowUpCreated, EventFollowUpEscalated}) {
		t.Errorf("escalated: %v", got)
	}
	if got := types(events(change("orders", "o-1", `{"status":"draft"}`))); len(got) != 0 {
		t.Errorf("a draft order: %v", got)
	}
	o := events(change("orders", "o-1", `{"status":"confirmed","status_changed_at":"2026-12-04T06:10:00Z","erp_number":"4500001","lines":[{"product_id":"p-1"}]}`))
	if len(o) != 1 || o[0].typ != EventOrderStatus || o[0].data["erp_number"] != "4500001" || o[0].data["lines"] != nil {
		t.Errorf("order: %+v", o)
	}
	if got := types(events(change("visit_logs", "v-1", `{"review":{"status":"approved","by":"m","at":"2026-12-04T06:10:00Z"}}`))); len(got) != 0 {
		t.Errorf("an approved visit: %v", got)
	}
	if got := types(events(change("visit_logs", "v-1", `{"review":{"status":"flagged","by":"m","at":"2026-12-04T06:10:00Z"}}`))); !slices.Equal(got, []string{EventVisitFlagged}) {
		t.Errorf("a flagged visit: %v", got)
	}
	if got := events(engine.Change{Collection: "follow_ups", ID: "x", Deleted: true}); len(got) != 0 {
		t.Errorf("a deletion: %v", got)
	}

	// Filters: roles and activities narrow follow-up events only.
	s := &Subscription{Events: []string{EventFollowUpCreated, EventOrderStatus}, Roles: []string{"billing"}}
	created := events(change("follow_ups", "fu-1", strings.Replace(fu, "%s", "open", 1)))[0]
	if s.matches(created) {
		t.Error("a role filter let another role's follow-up through")
	}
	if !s.matches(o[0]) {
		t.Error("a role filter held back an order event")
	}
	s.Roles, s.Activities = nil, []string{"erp_entry"}
	if !s.matches(created) {
		t.Error("the activity filter held back its activity")
	}
	s.Disabled = true
	if s.matches(created) {
		t.Error("a disabled subscription matched")
	}
	// The same state gives the same delivery id; a new state a new one.
	a := DeliveryID("acme", "s", created.typ, created.collection, created.docID, created.state)
	again := events(change("follow_ups", "fu-1", strings.Replace(fu, "%s", "claimed", 1)))[0]
	if b := DeliveryID("acme", "s", again.typ, again.collection, again.docID, again.state); a != b {
		t.Error("follow_up.created got a new id when the follow-up changed")
	}
}

// TestBackoff: doubling with jitter inside ±25 %, Retry-After as the least
// wait, MaxBackoff as the most.
func TestBackoff(t *testing.T) {
	t.Parallel()
	d := NewDispatcher(DispatcherConfig{BaseBackoff: time.Second, MaxBackoff: time.Minute})
	for n := 1; n <= 10; n++ {
		base := min(time.Second<<(n-1), time.Minute)
		for range 50 {
			w := d.backoff(n, 0)
			if w < time.Duration(float64(base)*0.75) || w > min(time.Duration(float64(base)*1.25), time.Minute) {
				t.Fatalf("attempt %d: waited %v, base %v", n, w, base)
			}
		}
	}
	if w := d.backoff(1, 30*time.Second); w != 30*time.Second {
		t.Errorf("Retry-After 30s after the first attempt: %v", w)
	}
	if w := d.backoff(1, time.Hour); w != time.Minute {
		t.Errorf("Retry-After beyond the maximum: %v", w)
	}
	now := time.Date(2026, 12, 4, 7, 0, 0, 0, time.UTC)
	if ra := retryAfter("120", now); ra != 2*time.Minute {
		t.Errorf("Retry-After seconds: %v", ra)
	}
	if ra := retryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now); ra != 90*time.Second {
		t.Errorf("Retry-After date: %v", ra)
	}
	if ra := retryAfter("soon", now); ra != 0 {
		t.Errorf("a bad Retry-After: %v", ra)
	}
}
