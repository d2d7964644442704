package app_test

// KPIs over the workflow's documents: an order submitted through sync (the
// workflow sets submitted_at and total) makes the visit at its customer a
// productive call and adds its value; a follow-up completed by the back
// office through the follow-up API counts as offloaded.

import (
	"encoding/json"
	"net/url"
	"testing"
	"time"
)

func TestKPIsOverWorkflow(t *testing.T) {
	t.Parallel()
	for _, st := range wfStores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			w := newWFWorld(t, st.store)
			w.Admin("acme", "PUT", "/org", map[string]any{"time_zone": "America/New_York"}, 200)
			now := time.Now()
			ny, _ := time.LoadLocation("America/New_York")
			// The visit and the order fall on one day in New York, so the
			// visit is productive through the order even just after
			// midnight there.
			y, mo, d := now.In(ny).Date()
			in := now.Add(-40 * time.Minute)
			if midnight := time.Date(y, mo, d, 0, 0, 0, 0, ny); in.Before(midnight) {
				in = midnight
			}
			out := in.Add(now.Sub(in) * 3 / 4)
			rep := w.as("rep-1")
			visit := map[string]any{"customer_id": "c-1", "outcome": "info",
				"check_in":  map[string]any{"at": in.Format(time.RFC3339Nano)},
				"check_out": map[string]any{"at": out.Format(time.RFC3339Nano)}}
			w.pushAs("rep-1", mCreate("m-v", "visit_logs", "v-k", visit),
				mCreate("m-o", "orders", "o-k", withStatus(orderLines(0), "submitted")))
			if o, _ := w.get("orders", "o-k"); o["submitted_at"] == nil || o["total"] != "180.00" {
				t.Fatalf("order after submit: %v", o)
			}
			w.mustAct(w.as("dp-1"), "fu-o-k-availability_check", "claim", nil)
			w.mustAct(w.as("dp-1"), "fu-o-k-availability_check", "complete", map[string]any{"note": "in stock"})

			// Yesterday and today in New York, so that a run across
			// midnight still holds both documents.
			q := url.Values{"rep": {"rep-1"}, "from": {now.In(ny).AddDate(0, 0, -1).Format("2006-01-02")},
				"to": {now.In(ny).Format("2006-01-02")}}.Encode()
			for _, tok := range []string{w.Operator("acme"), rep} {
				var r struct {
					Reps []struct {
						Period struct {
							Visits          int               `json:"visits"`
							ProductiveCalls int               `json:"productive_calls"`
							Orders          int               `json:"orders"`
							OrderValue      map[string]string `json:"order_value"`
						}
						FollowUps struct {
							Closed             int                `json:"closed"`
							ClosedByBackOffice int                `json:"closed_by_back_office"`
							Share              *float64           `json:"back_office_share_pct"`
							Median             map[string]float64 `json:"median_close_s"`
							Breaches           int                `json:"sla_breaches"`
						} `json:"follow_ups"`
					}
				}
				st, raw := doRaw(t, "GET", w.Server.URL+"/v1/kpis?"+q, tok, nil)
				if st != 200 || json.Unmarshal(raw, &r) != nil || len(r.Reps) != 1 {
					t.Fatalf("kpis: %d %s", st, raw)
				}
				p, f := r.Reps[0].Period, r.Reps[0].FollowUps
				_, timed := f.Median["demand_planning"]
				// One visit, productive through the order at its customer;
				// one order of 2 x 90 EUR; one follow-up closed by
				// demand planning (not the rep): 100 % offloaded, in time.
				if p.Visits != 1 || p.ProductiveCalls != 1 || p.Orders != 1 || p.OrderValue["EUR"] != "180.00" ||
					f.Closed != 1 || f.ClosedByBackOffice != 1 || f.Share == nil || *f.Share != 100 || !timed || f.Breaches != 0 {
					t.Errorf("kpis: %s", raw)
				}
			}
		})
	}
}

// TestKPIsFollowChanges: the KPI service keeps each rep's month between
// reports and reads only what changed since; a report after a visit is
// added, another is deleted, and a customer's rep changes (the visits'
// history moves) counts exactly what is there then, on both stores.
func TestKPIsFollowChanges(t *testing.T) {
	t.Parallel()
	for _, st := range wfStores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			w := newWFWorld(t, st.store)
			now := time.Now().UTC()
			day := now.Format("2006-01-02")
			visit := func(id string, minsAgo int) map[string]any {
				in := now.Add(-time.Duration(minsAgo) * time.Minute)
				return mCreate("m-"+id, "visit_logs", id, map[string]any{"customer_id": "c-1", "outcome": "info",
					"check_in":  map[string]any{"at": in.Format(time.RFC3339)},
					"check_out": map[string]any{"at": in.Add(5 * time.Minute).Format(time.RFC3339)}})
			}
			visits := func() int {
				t.Helper()
				var r struct {
					Total struct {
						Visits int `json:"visits"`
					} `json:"total"`
				}
				q := url.Values{"rep": {"rep-1"}, "from": {now.AddDate(0, 0, -1).Format("2006-01-02")}, "to": {day}}.Encode()
				st, raw := doRaw(t, "GET", w.Server.URL+"/v1/kpis?"+q, w.Operator("acme"), nil)
				if st != 200 || json.Unmarshal(raw, &r) != nil {
					t.Fatalf("kpis: %d %s", st, raw)
				}
				return r.Total.Visits
			}
			base := visits()
			w.pushAs("rep-1", visit("v-a", 50), visit("v-b", 30))
			if got := visits(); got != base+2 {
				t.Fatalf("after two visits: %d, want %d", got, base+2)
			}
			// A checked-out visit is a record a rep cannot delete; an admin can.
			w.MustApply(w.Operator("acme"), "admin-console", []map[string]any{mDelete("m-del", "visit_logs", "v-a", 1)})
			if got := visits(); got != base+1 {
				t.Fatalf("after deleting one: %d, want %d", got, base+1)
			}
			w.pushAs("rep-1", visit("v-c", 10))
			if got := visits(); got != base+2 {
				t.Fatalf("after another: %d, want %d", got, base+2)
			}
		})
	}
}
