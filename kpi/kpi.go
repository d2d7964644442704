// Package kpi computes the field-sales KPIs of ../shared/product.md (face
// time, visits per day, planned vs visited, productive calls, order value,
// follow-up offload) per rep and per day in the organisation's time zone,
// and serves them to managers through Service (docs/workflows.md, "KPIs").
//
// Compute is pure: it takes the documents and returns the figures. Service
// checks who may see which reps and reads each rep's documents of the period
// through the sync engine's KPI index keys, so a report costs what the reps'
// data in the period holds, not the organisation's. It must not import HTTP
// or database packages.
package kpi

import (
	"encoding/json"
	"math"
	"math/big"
	"slices"
	"sort"
	"time"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/money"
)

// Doc is one stored document a report is computed from.
type Doc struct {
	Collection string
	ID         string
	Body       json.RawMessage
}

// Figures are the KPIs of one rep (or a team) over a day or a period.
type Figures struct {
	// Visits checked in during the day or period (by corrected check-in
	// time), and those whose check-in was verified at the customer's site.
	Visits         int `json:"visits"`
	VerifiedVisits int `json:"verified_visits"`
	// DaysWorked counts days with at least one visit; VisitsPerDay is
	// Visits / DaysWorked (0 without any).
	DaysWorked   int     `json:"days_worked"`
	VisitsPerDay float64 `json:"visits_per_day"`
	// FaceTimeS sums the durations of verified, checked-out visits;
	// SpanS sums per day (last check-out - first check-in) over all
	// checked-out visits; FaceTimePct is 100 * FaceTimeS / SpanS, null
	// without a span.
	FaceTimeS   int64    `json:"face_time_s"`
	SpanS       int64    `json:"span_s"`
	FaceTimePct *float64 `json:"face_time_pct"`
	// Planned counts visit plans (not cancelled) starting in the day or
	// period; PlannedVisited those done or named by a visit log.
	Planned        int `json:"planned"`
	PlannedVisited int `json:"planned_visited"`
	// ProductiveCalls counts visits with an order: outcome "order", or an
	// order of the rep for the same customer submitted the same day.
	ProductiveCalls int `json:"productive_calls"`
	// Orders submitted (not rejected or cancelled) and their value by
	// currency, a decimal string with the currency's minor digits (exact:
	// docs/protocol.md, "Money").
	Orders     int               `json:"orders"`
	OrderValue map[string]string `json:"order_value"`
}

// Offload is the follow-up offload of one rep (or a team) over the period.
type Offload struct {
	// Closed counts follow-ups for the rep's orders and requests done in
	// the period; ClosedByBackOffice those closed by someone other than
	// the rep; BackOfficeSharePct is their share (null without any).
	Closed             int      `json:"closed"`
	ClosedByBackOffice int      `json:"closed_by_back_office"`
	BackOfficeSharePct *float64 `json:"back_office_share_pct"`
	// MedianCloseS is the median time from opening to done per
	// responsible role, in seconds.
	MedianCloseS map[string]int64 `json:"median_close_s"`
	// SLABreaches counts follow-ups due in the period that were closed
	// after their due time or are still open past it.
	SLABreaches int `json:"sla_breaches"`
}

// Day is one calendar day of a rep's report.
type Day struct {
	Date string `json:"date"`
	Figures
}

// RepReport is one rep's report.
type RepReport struct {
	Rep       string  `json:"rep"`
	Days      []Day   `json:"days"` // the days with any activity, in order
	Period    Figures `json:"period"`
	FollowUps Offload `json:"follow_ups"`
}

// Report is the reply of GET /v1/kpis.
type Report struct {
	TimeZone  string      `json:"time_zone"`
	From      string      `json:"from"`
	To        string      `json:"to"`
	Reps      []RepReport `json:"reps"`
	Total     Figures     `json:"total"` // every rep of the report together
	FollowUps Offload     `json:"follow_ups"`
}

// Period is a range of calendar days [From, To] in a time zone.
type Period struct {
	From, To time.Time // midnight of the first and last day, in Loc
	Loc      *time.Location
}

// Start and End are the instants the period covers: [Start, End).
func (p Period) Start() time.Time { return p.From }
func (p Period) End() time.Time   { return p.To.AddDate(0, 0, 1) }

const dateLayout = "2006-01-02"

func (p Period) day(t time.Time) (string, bool) {
	if t.Before(p.Start()) || !t.Before(p.End()) {
		return "", false
	}
	return t.In(p.Loc).Format(dateLayout), true
}

// Documents' fields, as far as the KPIs read them.
type (
	visitLog  = fieldsales.VisitLog
	visitPlan = fieldsales.VisitPlan
)

type order struct {
	Customer  string `json:"customer_id"`
	Status    string `json:"status"`
	Submitted string `json:"submitted_at"`
	Currency  string `json:"currency"`
	Total     string `json:"total"`
	Lines     []struct {
		Quantity float64 `json:"quantity"`
		Price    string  `json:"unit_price"`
		Discount float64 `json:"discount_pct"`
	} `json:"lines"`
}

// followUp is what the KPIs read of a follow-up: the fields of
// fieldsales.FollowUp they use, and not its history or routing lists,
// whose decoding was most of a team report's time (the console's KPI
// page, docs/benchmarks.md "Console").
type followUp struct {
	Status          string `json:"status"`
	OrderID         string `json:"order_id"`
	RepID           string `json:"rep_id"`
	ResponsibleRole string `json:"responsible_role"`
	DueAt           string `json:"due_at"`
	ClosedAt        string `json:"closed_at"`
	ClosedBy        string `json:"closed_by"`
	CreatedAt       string `json:"created_at"`
}

func parse(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}

// Build returns the report of p for the given reps from each rep's
// documents (visit logs, visit plans, orders and follow-ups; others are
// ignored), with the reps' totals. now decides which open follow-ups are
// past due.
func Build(p Period, reps []string, docs map[string][]Doc, now time.Time) Report {
	r := Report{TimeZone: p.Loc.String(), From: p.From.Format(dateLayout), To: p.To.Format(dateLayout), Reps: []RepReport{}}
	all := map[string][]int64{}
	for _, rep := range reps {
		rr, times := Compute(rep, p, docs[rep], now)
		r.Reps = append(r.Reps, rr)
		r.Total.add(rr.Period)
		r.FollowUps.merge(rr.FollowUps)
		for role, ts := range times {
			all[role] = append(all[role], ts...)
		}
	}
	r.Total.finish()
	r.FollowUps.MedianCloseS = medians(all)
	return r
}

// Compute returns one rep's report over p from the rep's documents, and
// the follow-ups' times to close by role (for team medians).
func Compute(rep string, p Period, docs []Doc, now time.Time) (RepReport, map[string][]int64) {
	days := map[string]*Figures{}
	dayOf := func(d string) *Figures {
		f := days[d]
		if f == nil {
			f = &Figures{}
			days[d] = f
		}
		return f
	}
	var visits []visitLog
	plansVisited := map[string]bool{}
	orders := map[string]order{}
	// Orders by (customer, day), for productive calls.
	ordered := map[[2]string]bool{}
	var fus []followUp
	for _, d := range docs {
		switch d.Collection {
		case fieldsales.CollVisitLogs:
			var v visitLog
			if json.Unmarshal(d.Body, &v) != nil {
				continue
			}
			if v.VisitPlanID != "" {
				plansVisited[v.VisitPlanID] = true
			}
			visits = append(visits, v)
		case fieldsales.CollOrders:
			var o order
			if json.Unmarshal(d.Body, &o) == nil {
				orders[d.ID] = o
			}
		case fieldsales.CollFollowUps:
			var f followUp
			if json.Unmarshal(d.Body, &f) == nil && f.RepID == rep {
				fus = append(fus, f)
			}
		}
	}
	for _, o := range orders {
		t, ok := parse(o.Submitted)
		if !ok || o.Status == "draft" || o.Status == "rejected" || o.Status == "cancelled" {
			continue
		}
		day, ok := p.day(t)
		if !ok {
			continue
		}
		f := dayOf(day)
		f.Orders++
		cur := o.Currency
		if cur == "" {
			cur = "unspecified"
		}
		f.addValue(cur, orderValue(o))
		ordered[[2]string{o.Customer, day}] = true
	}
	// Visits: counts, face time and the working span of each day.
	type span struct{ first, last time.Time }
	spans := map[string]*span{}
	for _, v := range visits {
		in, ok := parse(v.CheckInAt)
		if !ok && v.CheckIn != nil {
			in, ok = parse(v.CheckIn.At)
		}
		if !ok {
			continue
		}
		day, ok := p.day(in)
		if !ok {
			continue
		}
		f := dayOf(day)
		f.Visits++
		verified := v.Verification.Status == fieldsales.VisitVerified
		if verified {
			f.VerifiedVisits++
		}
		if v.Outcome == "order" || ordered[[2]string{v.CustomerID, day}] {
			f.ProductiveCalls++
		}
		out, ok := parse(v.CheckOutAt)
		if !ok && v.CheckOut != nil {
			out, ok = parse(v.CheckOut.At)
		}
		if !ok {
			continue // still in progress: no duration, no span
		}
		if verified && v.DurationS != nil {
			f.FaceTimeS += *v.DurationS
		}
		s := spans[day]
		if s == nil {
			s = &span{first: in, last: out}
			spans[day] = s
		}
		if in.Before(s.first) {
			s.first = in
		}
		if out.After(s.last) {
			s.last = out
		}
	}
	for day, s := range spans {
		if s.last.After(s.first) {
			dayOf(day).SpanS = int64(s.last.Sub(s.first) / time.Second)
		}
	}
	for _, d := range docs {
		if d.Collection != fieldsales.CollVisitPlans {
			continue
		}
		var vp visitPlan
		if json.Unmarshal(d.Body, &vp) != nil || vp.Status == "cancelled" {
			continue
		}
		t, ok := parse(vp.PlannedStart)
		if !ok {
			continue
		}
		day, ok := p.day(t)
		if !ok {
			continue
		}
		f := dayOf(day)
		f.Planned++
		if vp.Status == "done" || plansVisited[d.ID] {
			f.PlannedVisited++
		}
	}
	r := RepReport{Rep: rep, Days: []Day{}}
	keys := make([]string, 0, len(days))
	for d := range days {
		keys = append(keys, d)
	}
	sort.Strings(keys)
	for _, d := range keys {
		f := days[d]
		if f.Visits > 0 {
			f.DaysWorked = 1
		}
		f.finish()
		r.Days = append(r.Days, Day{Date: d, Figures: *f})
		r.Period.add(*f)
	}
	r.Period.finish()
	var times map[string][]int64
	r.FollowUps, times = offload(rep, p, fus, orders, now)
	return r, times
}

func orderValue(o order) string {
	if o.Total != "" {
		return o.Total
	}
	// Not accepted by the server (written before it computed totals): the
	// lines as the device priced them; a line without a valid price or
	// quantity counts nothing.
	digits := money.Digits(o.Currency)
	sum := new(big.Rat)
	for _, l := range o.Lines {
		qty, err1 := money.Number(l.Quantity, money.QuantityDecimals)
		unit, err2 := money.Parse(l.Price)
		disc, err3 := money.Number(l.Discount, money.DiscountDecimals)
		if err1 == nil && err2 == nil && err3 == nil {
			sum.Add(sum, money.LineTotal(qty, unit, disc, digits))
		}
	}
	return money.Format(sum, digits)
}

// addValue adds an order value to the figures of its currency. A value
// that is not an amount (a document written by hand) counts nothing.
func (f *Figures) addValue(cur, v string) {
	if f.OrderValue == nil {
		f.OrderValue = map[string]string{}
	}
	if sum, err := money.Add(f.OrderValue[cur], v, money.Digits(cur)); err == nil {
		f.OrderValue[cur] = sum
	}
}

// add sums g into f (ratios are recomputed by finish).
func (f *Figures) add(g Figures) {
	f.Visits += g.Visits
	f.VerifiedVisits += g.VerifiedVisits
	f.DaysWorked += g.DaysWorked
	f.FaceTimeS += g.FaceTimeS
	f.SpanS += g.SpanS
	f.Planned += g.Planned
	f.PlannedVisited += g.PlannedVisited
	f.ProductiveCalls += g.ProductiveCalls
	f.Orders += g.Orders
	for c, v := range g.OrderValue {
		f.addValue(c, v)
	}
}

func (f *Figures) finish() {
	f.FaceTimePct = nil
	if f.SpanS > 0 {
		f.FaceTimePct = pct(f.FaceTimeS, f.SpanS)
	}
	f.VisitsPerDay = 0
	if f.DaysWorked > 0 {
		f.VisitsPerDay = math.Round(float64(f.Visits)/float64(f.DaysWorked)*1000) / 1000
	}
	if f.OrderValue == nil {
		f.OrderValue = map[string]string{}
	}
}

// pct is 100*a/b rounded to 3 decimals.
func pct(a, b int64) *float64 {
	v := math.Round(float64(a)*100/float64(b)*1000) / 1000
	return &v
}

// offload computes the follow-up figures of rep's follow-ups. A follow-up
// opened at its created_at, or else at its order's submission.
func offload(rep string, p Period, fus []followUp, orders map[string]order, now time.Time) (Offload, map[string][]int64) {
	var o Offload
	byRole := map[string][]int64{}
	for _, f := range fus {
		closed, isClosed := parse(f.ClosedAt)
		if f.Status == fieldsales.FollowUpDone && isClosed {
			if _, in := p.day(closed); in {
				o.Closed++
				if f.ClosedBy != "" && f.ClosedBy != rep {
					o.ClosedByBackOffice++
				}
				opened, ok := parse(f.CreatedAt)
				if !ok {
					opened, ok = parse(orders[f.OrderID].Submitted)
				}
				if ok && !closed.Before(opened) {
					byRole[f.ResponsibleRole] = append(byRole[f.ResponsibleRole], int64(closed.Sub(opened)/time.Second))
				}
			}
		}
		due, ok := parse(f.DueAt)
		if !ok {
			continue
		}
		if _, in := p.day(due); !in || f.Status == fieldsales.FollowUpCancelled {
			continue
		}
		switch {
		case isClosed && closed.After(due):
			o.SLABreaches++
		case !isClosed && now.After(due):
			o.SLABreaches++
		}
	}
	if o.Closed > 0 {
		o.BackOfficeSharePct = pct(int64(o.ClosedByBackOffice), int64(o.Closed))
	}
	o.MedianCloseS = medians(byRole)
	return o, byRole
}

func medians(byRole map[string][]int64) map[string]int64 {
	out := map[string]int64{}
	for role, ds := range byRole {
		out[role] = median(ds)
	}
	return out
}

func median(xs []int64) int64 {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// merge sums several reps' offload figures; Build recomputes the medians
// from every rep's times.
func (o *Offload) merge(g Offload) {
	o.Closed += g.Closed
	o.ClosedByBackOffice += g.ClosedByBackOffice
	o.SLABreaches += g.SLABreaches
	if o.Closed > 0 {
		o.BackOfficeSharePct = pct(int64(o.ClosedByBackOffice), int64(o.Closed))
	}
}
