package kpi

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
)

func doc(t *testing.T, coll, id string, body map[string]any) Doc {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return Doc{Collection: coll, ID: id, Body: b}
}

// TestComputeFixtureDay works a day of rep r1 in Europe/Berlin (UTC+01:00
// in November) out by hand: face time, productive calls, order value and
// the follow-up offload. (Visits per day, plans and the time zone of the
// day boundary are also covered through the server in
// app/visits_test.go.)
func TestComputeFixtureDay(t *testing.T) {
	t.Parallel()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	p, err := period("2026-11-24", "2026-11-25", berlin)
	if err != nil {
		t.Fatal(err)
	}
	visit := func(id, customer, in, out, status, outcome string, dur int) Doc {
		return doc(t, fieldsales.CollVisitLogs, id, map[string]any{"customer_id": customer,
			"check_in": map[string]any{"at": in}, "check_out": map[string]any{"at": out},
			"check_in_at": in, "check_out_at": out, "duration_s": dur,
			"verification": map[string]any{"status": status}, "outcome": outcome})
	}
	order := func(id, customer, status, submitted, currency string, total any, lines []any) Doc {
		b := map[string]any{"customer_id": customer, "status": status, "submitted_at": submitted, "currency": currency}
		if total != nil {
			b["total"] = total
		}
		if lines != nil {
			b["lines"] = lines
		}
		return doc(t, fieldsales.CollOrders, id, b)
	}
	fu := func(id, rep, order, role, status, created, closed, by, due string) Doc {
		b := map[string]any{"rep_id": rep, "order_id": order, "responsible_role": role, "status": status, "due_at": due}
		for k, v := range map[string]string{"created_at": created, "closed_at": closed, "closed_by": by} {
			if v != "" {
				b[k] = v
			}
		}
		return doc(t, fieldsales.CollFollowUps, id, b)
	}
	docs := []Doc{
		// 2026-11-24, Berlin times (UTC+1):
		// v1 09:00-09:45 verified 2700 s at cA, which ordered o1 at 10:05
		//   the same day: productive.
		// v2 11:00-11:30 verified 1800 s at cB, outcome order: productive.
		// v3 16:00-17:00 verified 3600 s at cC, no order.
		// v4 13:00-13:20 out of range at cC: counted as a visit, not as
		//   face time, inside the span anyway.
		// Face time 2700+1800+3600 = 8100 s over 09:00-17:00 = 28800 s:
		// 28.125 %. Visits 4, verified 3, productive calls 2.
		visit("v1", "cA", "2026-11-24T08:00:00Z", "2026-11-24T08:45:00Z", "verified", "info", 2700),
		visit("v2", "cB", "2026-11-24T10:00:00Z", "2026-11-24T10:30:00Z", "verified", "order", 1800),
		visit("v3", "cC", "2026-11-24T15:00:00Z", "2026-11-24T16:00:00Z", "verified", "", 3600),
		visit("v4", "cC", "2026-11-24T12:00:00Z", "2026-11-24T12:20:00Z", "out_of_range", "", 1200),
		// Orders: o1 1234.50 EUR (its total); o2 has no total yet: its
		// lines make 10 x 50 less 10 % = 450 plus 2 x 25 = 50, 500 EUR;
		// o3 is cancelled; o4 was submitted at 00:30 Berlin on the 25th
		// (23:30 UTC on the 24th): 99 USD on the 25th.
		order("o1", "cA", "submitted", "2026-11-24T09:05:00Z", "EUR", "1234.50", nil),
		order("o2", "cB", "confirmed", "2026-11-24T10:40:00Z", "EUR", nil, []any{
			map[string]any{"product_id": "m", "quantity": 10, "unit_price": "50", "discount_pct": 10},
			map[string]any{"product_id": "c", "quantity": 2, "unit_price": "25"}}),
		order("o3", "cC", "cancelled", "2026-11-24T15:30:00Z", "EUR", "5000.00", nil),
		order("o4", "cD", "submitted", "2026-11-24T23:30:00Z", "USD", "99.00", nil),
		// Follow-ups of r1's orders ("now" is 2026-11-26 00:00 UTC):
		// f1 order desk, opened with o1 at 09:05Z, done 11:05Z by desk-1:
		//    7200 s, due 13:05Z: in time.
		// f2 order desk, opened 10:40Z, done 14:40Z by desk-2: 14400 s,
		//    due 12:40Z: an SLA breach.
		// f3 stores, opened 10:40Z on the 24th, done 10:40Z on the 25th by
		//    the rep himself: 86400 s, not back office; due the 26th,
		//    outside the period, so not an SLA question here.
		// f4 logistics, still open, due the 25th 09:00Z: a breach.
		// f5 order desk, opened 08:00Z, done 08:30Z by desk-1: 1800 s, in
		//    time.
		// f6 belongs to another rep.
		// Closed 4 (f1 f2 f3 f5), by back office 3: 75 %. Median close by
		// role: order desk of 1800, 7200, 14400 = 7200 s; stores 86400 s.
		// SLA breaches 2 (f2, f4).
		fu("f1", "r1", "o1", "order_desk", "done", "", "2026-11-24T11:05:00Z", "desk-1", "2026-11-24T13:05:00Z"),
		fu("f2", "r1", "o2", "order_desk", "done", "2026-11-24T10:40:00Z", "2026-11-24T14:40:00Z", "desk-2", "2026-11-24T12:40:00Z"),
		fu("f3", "r1", "o2", "stores", "done", "2026-11-24T10:40:00Z", "2026-11-25T10:40:00Z", "r1", "2026-11-26T10:40:00Z"),
		fu("f4", "r1", "o1", "logistics", "open", "2026-11-24T09:05:00Z", "", "", "2026-11-25T09:00:00Z"),
		fu("f5", "r1", "o1", "order_desk", "done", "2026-11-24T08:00:00Z", "2026-11-24T08:30:00Z", "desk-1", "2026-11-24T09:00:00Z"),
		fu("f6", "r2", "o9", "order_desk", "done", "2026-11-24T08:00:00Z", "2026-11-24T08:30:00Z", "desk-1", "2026-11-24T09:00:00Z"),
	}
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	r := Build(p, []string{"r1"}, map[string][]Doc{"r1": docs}, now)
	if len(r.Reps) != 1 || len(r.Reps[0].Days) != 2 {
		t.Fatalf("report %+v", r)
	}
	f := func(v float64) *float64 { return &v }
	want24 := Figures{Visits: 4, VerifiedVisits: 3, DaysWorked: 1, VisitsPerDay: 4, FaceTimeS: 8100, SpanS: 28800,
		FaceTimePct: f(28.125), ProductiveCalls: 2, Orders: 2, OrderValue: map[string]string{"EUR": "1734.50"}}
	want25 := Figures{Orders: 1, OrderValue: map[string]string{"USD": "99.00"}}
	if d := r.Reps[0].Days[0]; d.Date != "2026-11-24" || !reflect.DeepEqual(d.Figures, want24) {
		t.Errorf("2026-11-24: %s %+v (face %v), want %+v", d.Date, d.Figures, deref(d.FaceTimePct), want24)
	}
	if d := r.Reps[0].Days[1]; d.Date != "2026-11-25" || !reflect.DeepEqual(d.Figures, want25) {
		t.Errorf("2026-11-25: %s %+v, want %+v", d.Date, d.Figures, want25)
	}
	wantOff := Offload{Closed: 4, ClosedByBackOffice: 3, BackOfficeSharePct: f(75), SLABreaches: 2,
		MedianCloseS: map[string]int64{"order_desk": 7200, "stores": 86400}}
	if got := r.Reps[0].FollowUps; !reflect.DeepEqual(got, wantOff) {
		t.Errorf("follow-ups %+v, want %+v", got, wantOff)
	}
	if !reflect.DeepEqual(r.FollowUps, wantOff) || r.Total.Orders != 3 || r.Total.FaceTimeS != 8100 {
		t.Errorf("totals %+v %+v", r.Total, r.FollowUps)
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestPeriod: the period's bounds are the organisation's midnights, and
// at most MaxDays long.
func TestPeriod(t *testing.T) {
	t.Parallel()
	kolkata, _ := time.LoadLocation("Asia/Kolkata")
	p, err := period("2026-11-24", "2026-11-24", kolkata)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Start().UTC().Format(time.RFC3339); got != "2026-11-23T18:30:00Z" {
		t.Errorf("start %s", got)
	}
	if got := p.End().UTC().Format(time.RFC3339); got != "2026-11-24T18:30:00Z" {
		t.Errorf("end %s", got)
	}
	if _, err := period("2026-09-01", "2026-12-01", kolkata); err != nil {
		t.Errorf("92 days: %v", err)
	}
	if _, err := period("2026-09-01", "2026-12-02", kolkata); engine.ErrorCode(err) != engine.CodeInvalidRequest {
		t.Errorf("93 days: %v", err)
	}
}
