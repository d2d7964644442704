package demo

// The demo month as a timeline of events: reps plan, visit, write notes and
// take orders on their phones; managers assign plans and review visits; the
// back office works the follow-ups the workflow created; the overdue sweep
// runs every evening. Every event is decided here from the seed and the
// anchor (the moment the demo organisation was created) and carried out
// later, in time order, through the engine and the workflow with the
// simulated clock at the event's time.

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/workflow"
)

// demoEvent is one thing that happens at At.
type demoEvent struct {
	At time.Time
	Do func(ctx context.Context, l *demoLoader) error
}

// demoWorld is the whole demo: reference data and the month's events.
type demoWorld struct {
	org       string
	loc       *time.Location
	anchor    time.Time // the period ends here: nothing happens after it
	first     time.Time // local midnight of the period's first day
	days      int
	teams     []Team
	users     []User
	products  []demoProduct
	lists     []demoPriceList
	customers []demoCustomer
	events    []demoEvent

	user    map[string]User
	product map[string]demoProduct
	list    map[string]demoPriceList
	// Ids the summary reads back.
	visitIDs, planIDs, orderIDs, noteIDs, raisedIDs []string
}

// newDemoWorld decides the demo organisation: customersN customers, the
// days calendar days before the anchor's day.
func newDemoWorld(org string, seed uint64, days, customersN int, anchor time.Time, loc *time.Location) *demoWorld {
	w := &demoWorld{org: org, loc: loc, anchor: anchor, days: days,
		user: map[string]User{}, product: map[string]demoProduct{}, list: map[string]demoPriceList{}}
	a := anchor.In(loc)
	today := time.Date(a.Year(), a.Month(), a.Day(), 0, 0, 0, 0, loc)
	w.first = today.AddDate(0, 0, -days)
	w.teams, w.users = People(org)
	for _, u := range w.users {
		w.user[u.ID] = u
	}
	w.products = demoProducts()
	for _, p := range w.products {
		w.product[p.ID] = p
	}
	w.lists = demoPriceLists(w.products)
	for _, l := range w.lists {
		w.list[l.ID] = l
	}
	// Reference data does not depend on --days: its own random stream.
	w.customers = demoCustomersFor(rand.New(rand.NewPCG(seed, 1)), w.teams, w.users, max(1, customersN/len(w.teams)))
	w.plan(rand.New(rand.NewPCG(seed, 2)), today)
	slices.SortStableFunc(w.events, func(x, y demoEvent) int { return x.At.Compare(y.At) })
	return w
}

// at is the local time h:m on day.
func (w *demoWorld) at(day time.Time, h, m int) time.Time {
	return time.Date(day.Year(), day.Month(), day.Day(), h, m, 0, 0, w.loc)
}

func workday(t time.Time) bool { return t.Weekday() != time.Saturday && t.Weekday() != time.Sunday }

// office moves t into office hours (Monday to Friday, 07:30-17:30): the
// back office works nights and weekends no more than anyone else.
func (w *demoWorld) office(rng *rand.Rand, t time.Time) time.Time {
	t = t.In(w.loc)
	for {
		mins := t.Hour()*60 + t.Minute()
		switch {
		case !workday(t) || mins >= 17*60+30:
			d := t.AddDate(0, 0, 1)
			t = w.at(d, 7, 45).Add(time.Duration(rng.IntN(75)) * time.Minute)
		case mins < 7*60+30:
			t = w.at(t, 7, 45).Add(time.Duration(rng.IntN(75)) * time.Minute)
		default:
			return t
		}
	}
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minutes(rng *rand.Rand, lo, hi int) time.Duration {
	return time.Duration(lo+rng.IntN(hi-lo+1)) * time.Minute
}

// add appends an event unless it would happen after the anchor.
func (w *demoWorld) add(at time.Time, do func(ctx context.Context, l *demoLoader) error) bool {
	if at.After(w.anchor) {
		return false
	}
	w.events = append(w.events, demoEvent{At: at, Do: do})
	return true
}

// repVisit is one visit a rep makes.
type repVisit struct {
	id, plan, customer string
	in, out            time.Time
}

// plan decides the month.
func (w *demoWorld) plan(rng *rand.Rand, today time.Time) {
	var reps []User
	for _, u := range w.users {
		if slices.Contains(u.Roles, fieldsales.RoleRep) {
			reps = append(reps, u)
		}
	}
	mine := map[string][]demoCustomer{}
	for _, c := range w.customers {
		for _, r := range c.Reps {
			mine[r] = append(mine[r], c)
		}
	}
	rotation := map[string][]demoCustomer{}
	next := func(rep string) demoCustomer {
		if len(rotation[rep]) == 0 {
			rotation[rep] = slices.Clone(mine[rep])
			rng.Shuffle(len(rotation[rep]), func(i, j int) { rotation[rep][i], rotation[rep][j] = rotation[rep][j], rotation[rep][i] })
		}
		c := rotation[rep][0]
		rotation[rep] = rotation[rep][1:]
		return c
	}
	var workdays []time.Time
	for d := w.first; d.Before(today); d = d.AddDate(0, 0, 1) {
		if workday(d) {
			workdays = append(workdays, d)
		}
	}
	// visits[manager] of the previous working day, for the morning review.
	prevVisits := map[string][]reviewItem{}
	for _, day := range workdays {
		dayVisits := map[string][]reviewItem{}
		for _, rep := range reps {
			if len(mine[rep.ID]) == 0 {
				continue
			}
			vs := w.repDay(rng, rep, day, next)
			mgr := w.managerOf(rep)
			for _, v := range vs {
				dayVisits[mgr] = append(dayVisits[mgr], v)
			}
		}
		// Managers review yesterday's visits in the morning.
		for _, mgr := range []string{"manager-1", "manager-2"} {
			if items := prevVisits[mgr]; len(items) > 0 {
				w.reviews(rng, mgr, w.at(day, 8, 10).Add(minutes(rng, 0, 50)), items)
			}
		}
		prevVisits = dayVisits
		// The overdue sweep, every evening.
		w.add(w.at(day, 18, 30), func(ctx context.Context, l *demoLoader) error { return l.sweep(ctx) })
	}
	// Plans for today and the next working days, pushed on the last
	// evening before the anchor's day.
	if len(workdays) > 0 {
		last := workdays[len(workdays)-1]
		for _, rep := range reps {
			if len(mine[rep.ID]) == 0 {
				continue
			}
			var muts []engine.Mutation
			d := today
			for n := 0; n < 3; d = d.AddDate(0, 0, 1) {
				if !workday(d) {
					continue
				}
				n++
				t := w.at(d, 8, 30)
				for k := range 4 + rng.IntN(2) {
					c := next(rep.ID)
					id := fmt.Sprintf("vp-%s-%s-%d", rep.ID, d.Format("20060102"), k+1)
					w.planIDs = append(w.planIDs, id)
					muts = append(muts, createMut(id+"-create", fieldsales.CollVisitPlans, id, w.planDoc(c.ID, t, rng)))
					t = t.Add(minutes(rng, 75, 120))
				}
			}
			rep := rep
			w.add(w.at(last, 18, 40).Add(minutes(rng, 0, 40)), func(ctx context.Context, l *demoLoader) error {
				return l.push(ctx, rep.ID, muts)
			})
		}
	}
	w.add(w.anchor, func(ctx context.Context, l *demoLoader) error { return l.sweep(ctx) })
}

func (w *demoWorld) managerOf(rep User) string {
	for _, u := range w.users {
		for _, t := range rep.Teams {
			if slices.Contains(u.Leads, t) {
				return u.ID
			}
		}
	}
	return ""
}

var demoPurposes = []string{"Quarterly account review", "Follow up on the open quote", "Present the IE4 motor range",
	"Discuss the framework agreement", "Commissioning support", "Check stock levels for the spring project",
	"Introduce the new booster sets", "Complaint about a late delivery", "New contact in purchasing"}

func (w *demoWorld) planDoc(customer string, start time.Time, rng *rand.Rand) map[string]any {
	return map[string]any{"customer_id": customer, "planned_start": start.Format(time.RFC3339),
		"planned_end": start.Add(time.Hour).Format(time.RFC3339), "purpose": demoPurposes[rng.IntN(len(demoPurposes))],
		"status": "planned"}
}

// reviewItem is a visit a manager may review, with the verification the
// server is expected to give it.
type reviewItem struct {
	id, quality string
}

// repDay decides one rep's working day: plans pushed the evening before
// (a few assigned by the manager days earlier), four to six visits with
// check-in and check-out, notes and orders, and what follows each order.
func (w *demoWorld) repDay(rng *rand.Rand, rep User, day time.Time, next func(string) demoCustomer) []reviewItem {
	var visits []repVisit
	t := w.at(day, 7, 40).Add(minutes(rng, 0, 50))
	n := 4 + rng.IntN(3)
	for k := range n {
		t = t.Add(minutes(rng, 15, 45))
		c := next(rep.ID)
		dur := minutes(rng, 25, 80)
		if rng.IntN(10) == 0 {
			dur += minutes(rng, 30, 60) // a long meeting
		}
		v := repVisit{id: fmt.Sprintf("vl-%s-%s-%d", rep.ID, day.Format("20060102"), k+1), customer: c.ID, in: t, out: t.Add(dur)}
		if rng.IntN(100) < 80 {
			v.plan = fmt.Sprintf("vp-%s-%s-%d", rep.ID, day.Format("20060102"), k+1)
		}
		visits = append(visits, v)
		t = v.out
		if t.Hour() >= 17 {
			break
		}
	}
	// The evening before: the rep plans the day (some visits were assigned
	// by the manager earlier in the week; one plan may be missed, one
	// cancelled in the morning).
	eve := day.AddDate(0, 0, -1)
	var own []engine.Mutation
	mgr := w.managerOf(rep)
	for _, v := range visits {
		if v.plan == "" {
			continue
		}
		w.planIDs = append(w.planIDs, v.plan)
		doc := w.planDoc(v.customer, v.in.Truncate(15*time.Minute), rng)
		if rng.IntN(10) == 0 {
			doc["rep_id"] = rep.ID
			mut := createMut(v.plan+"-assign", fieldsales.CollVisitPlans, v.plan, doc)
			w.add(w.at(day.AddDate(0, 0, -2-rng.IntN(3)), 16, 0).Add(minutes(rng, 0, 90)), func(ctx context.Context, l *demoLoader) error {
				return l.push(ctx, mgr, []engine.Mutation{mut})
			})
			continue
		}
		own = append(own, createMut(v.plan+"-create", fieldsales.CollVisitPlans, v.plan, doc))
	}
	var cancelled string
	if rng.IntN(8) == 0 { // planned, then not visited
		c := next(rep.ID)
		id := fmt.Sprintf("vp-%s-%s-missed", rep.ID, day.Format("20060102"))
		w.planIDs = append(w.planIDs, id)
		own = append(own, createMut(id+"-create", fieldsales.CollVisitPlans, id, w.planDoc(c.ID, w.at(day, 15, 30), rng)))
	}
	if rng.IntN(12) == 0 {
		c := next(rep.ID)
		cancelled = fmt.Sprintf("vp-%s-%s-cancelled", rep.ID, day.Format("20060102"))
		w.planIDs = append(w.planIDs, cancelled)
		own = append(own, createMut(cancelled+"-create", fieldsales.CollVisitPlans, cancelled, w.planDoc(c.ID, w.at(day, 14, 0), rng)))
	}
	if len(own) > 0 {
		w.add(w.at(eve, 18, 0).Add(minutes(rng, 0, 150)), func(ctx context.Context, l *demoLoader) error {
			return l.push(ctx, rep.ID, own)
		})
	}
	if cancelled != "" {
		mut := updateMut(cancelled+"-cancel", fieldsales.CollVisitPlans, cancelled, 1, map[string]any{"status": "cancelled"})
		w.add(w.at(day, 7, 20), func(ctx context.Context, l *demoLoader) error { return l.push(ctx, rep.ID, []engine.Mutation{mut}) })
	}

	var items []reviewItem
	for _, v := range visits {
		items = append(items, w.visit(rng, rep, v))
	}
	return items
}

// Visit GPS qualities and how often they happen: most check-ins are at the
// customer with a good fix; phones also park down the road, lose the fix
// indoors, or report a vague one.
const (
	gpsGood     = "verified"
	gpsFar      = "out_of_range"
	gpsNone     = "no_gps"
	gpsVague    = "low_accuracy"
	demoOrderPc = 17 // percent of visits with an order
)

var (
	demoVisitNotes = []string{"Met the maintenance lead; walked the line.", "Discussed next quarter's demand.",
		"Customer compares our offer with a competitor's.", "Checked the installed base for replacements.",
		"Brought catalogues and samples.", "Short visit: buyer was in a meeting.", "Agreed on a trial delivery.",
		"Reviewed open quotes.", "Customer complains about lead times.", "Site tour with the plant engineer."}
	demoNoteTexts = []string{"Plans a new %s line next spring; wants a quote by the end of the month.",
		"Current supplier of %s has 8-week lead times: opportunity.", "Asked for datasheets of our %s range.",
		"Budget for %s frozen until January.", "Wants framework prices for %s for next year.",
		"Installed base: mostly old %s, replacement due within two years."}
	demoOutcomes = []string{"follow_up", "info", "info", "info", "no_interest", "other"}
)

// visit decides one visit: its pushes (check-in when there is signal,
// check-out with the note and the order), and the order's life after.
func (w *demoWorld) visit(rng *rand.Rand, rep User, v repVisit) reviewItem {
	c := w.customer(v.customer)
	w.visitIDs = append(w.visitIDs, v.id)
	quality := gpsGood
	switch r := rng.IntN(100); {
	case r < 8:
		quality = gpsFar
	case r < 13:
		quality = gpsNone
	case r < 17:
		quality = gpsVague
	}
	event := func(at time.Time, q string, near bool) map[string]any {
		e := map[string]any{"at": at.Add(rep.Skew).In(w.loc).Format(time.RFC3339)}
		var dist, acc float64
		switch q {
		case gpsNone:
			return e
		case gpsGood:
			dist, acc = 10+170*rng.Float64(), 4+30*rng.Float64()
		case gpsFar:
			dist, acc = 400+2600*rng.Float64(), 5+25*rng.Float64()
		case gpsVague:
			dist, acc = 40+300*rng.Float64(), 150+700*rng.Float64()
		}
		if near {
			dist = 10 + 120*rng.Float64()
		}
		lat, lng := offsetLatLng(c.Lat, c.Lng, dist, rng.Float64()*2*math.Pi)
		e["lat"], e["lng"], e["accuracy_m"] = round6(lat), round6(lng), math.Round(acc)
		return e
	}
	in := event(v.in, quality, false)
	outQ := gpsGood
	if rng.IntN(10) == 0 {
		outQ = gpsNone
	}
	out := event(v.out, outQ, true)
	doc := map[string]any{"customer_id": v.customer, "check_in": in}
	if v.plan != "" {
		doc["visit_plan_id"] = v.plan
	}
	var orderMuts []engine.Mutation
	outcome := demoOutcomes[rng.IntN(len(demoOutcomes))]
	if rng.IntN(100) < demoOrderPc {
		outcome = "order"
		orderMuts = w.order(rng, rep, c, v)
	}
	closing := map[string]any{"check_out": out, "outcome": outcome, "notes": demoVisitNotes[rng.IntN(len(demoVisitNotes))]}
	var muts []engine.Mutation
	if rng.IntN(100) < 85 {
		// Signal at the door: the check-in goes up at once.
		first := createMut(v.id+"-in", fieldsales.CollVisitLogs, v.id, doc)
		w.add(v.in, func(ctx context.Context, l *demoLoader) error { return l.push(ctx, rep.ID, []engine.Mutation{first}) })
		muts = append(muts, updateMut(v.id+"-out", fieldsales.CollVisitLogs, v.id, 1, closing))
	} else {
		// No signal in the building: the whole visit goes up at check-out.
		for k, x := range closing {
			doc[k] = x
		}
		muts = append(muts, createMut(v.id+"-logged", fieldsales.CollVisitLogs, v.id, doc))
	}
	if rng.IntN(100) < 30 {
		id := "note-" + strings.TrimPrefix(v.id, "vl-")
		w.noteIDs = append(w.noteIDs, id)
		cat := c.Categories[rng.IntN(len(c.Categories))]
		muts = append(muts, createMut(id+"-create", fieldsales.CollCustomerNotes, id, map[string]any{
			"customer_id": c.ID, "text": fmt.Sprintf(demoNoteTexts[rng.IntN(len(demoNoteTexts))], cat),
			"created_at": v.out.Add(rep.Skew).In(w.loc).Format(time.RFC3339), "tags": []string{cat}, "visit_log_id": v.id}))
	}
	muts = append(muts, orderMuts...)
	w.add(v.out, func(ctx context.Context, l *demoLoader) error { return l.push(ctx, rep.ID, muts) })
	return reviewItem{id: v.id, quality: quality}
}

func (w *demoWorld) customer(id string) demoCustomer {
	i := slices.IndexFunc(w.customers, func(c demoCustomer) bool { return c.ID == id })
	return w.customers[i]
}

// order decides an order taken at visit v: its lines, whether it stays a
// draft, is submitted later, or at once; and everything the back office
// does with it afterwards. It returns the mutations pushed at check-out.
func (w *demoWorld) order(rng *rand.Rand, rep User, c demoCustomer, v repVisit) []engine.Mutation {
	id := "ord-" + strings.TrimPrefix(v.id, "vl-")
	w.orderIDs = append(w.orderIDs, id)
	pl := w.list[c.PriceList]
	var lines []map[string]any
	maxDisc := 0.0
	used := map[string]bool{}
	for range 1 + rng.IntN(4) {
		cat := c.Categories[rng.IntN(len(c.Categories))]
		var pool []demoProduct
		for _, p := range w.products {
			if p.Category == cat && p.Active {
				pool = append(pool, p)
			}
		}
		p := pool[rng.IntN(len(pool))]
		if used[p.ID] {
			continue
		}
		used[p.ID] = true
		var qty float64
		switch cat {
		case "motors":
			qty = float64(1 + rng.IntN(8))
		case "switchgear":
			qty = float64(5 * (1 + rng.IntN(12)))
		case "cables":
			qty = float64(50 * (1 + rng.IntN(20)))
		default:
			qty = float64(1 + rng.IntN(4))
		}
		line := map[string]any{"product_id": p.ID, "quantity": qty, "unit_price": eur(pl.Prices[p.ID])}
		if rng.IntN(10) < 3 {
			d := float64(2 + rng.IntN(7))
			line["discount_pct"], maxDisc = d, max(maxDisc, d)
		}
		lines = append(lines, line)
	}
	path := "accepted"
	switch {
	case rng.IntN(50) == 0:
		// An old catalogue on the phone: a discontinued IE2 motor.
		lines = append(lines, map[string]any{"product_id": "MOT-IE2-4P-7.5", "quantity": 2.0})
		path = "rejected"
	case c.Credit != "ok":
		path = "credit_hold"
	case rng.IntN(10) == 0:
		// A special price above the rep's 10 % limit.
		d := float64(12 + rng.IntN(8))
		lines[0]["discount_pct"] = d
		path = "price_approval"
	}
	doc := map[string]any{"customer_id": c.ID, "lines": lines, "currency": "EUR",
		"requested_delivery": v.out.AddDate(0, 0, 7+rng.IntN(21)).Format("2006-01-02")}
	submitted := v.out
	var muts []engine.Mutation
	switch r := rng.IntN(100); {
	case r < 6:
		doc["status"] = "draft" // a quote the customer is still thinking about
		return []engine.Mutation{createMut(id+"-create", fieldsales.CollOrders, id, doc)}
	case r < 16:
		// Drafted at the customer, submitted that evening or next morning.
		doc["status"] = "draft"
		muts = append(muts, createMut(id+"-create", fieldsales.CollOrders, id, doc))
		submitted = v.out.Add(minutes(rng, 90, 15*60))
		sub := updateMut(id+"-submit", fieldsales.CollOrders, id, 1, map[string]any{"status": "submitted"})
		if !w.add(submitted, func(ctx context.Context, l *demoLoader) error { return l.push(ctx, rep.ID, []engine.Mutation{sub}) }) {
			return muts
		}
	default:
		doc["status"] = "submitted"
		muts = append(muts, createMut(id+"-create", fieldsales.CollOrders, id, doc))
	}
	w.afterSubmit(rng, rep, c, id, path, submitted)
	return muts
}

// afterSubmit decides what the back office (and the rep) do with a
// submitted order, in office hours, up to the anchor.
func (w *demoWorld) afterSubmit(rng *rand.Rand, rep User, c demoCustomer, order, path string, at time.Time) {
	fu := func(activity string) string { return workflow.FollowUpID(order, activity) }
	switch path {
	case "rejected":
		return
	case "credit_hold":
		cc := "credit-control"
		claim := w.office(rng, at.Add(minutes(rng, 20, 180)))
		if !w.act(cc, fu("credit_release"), workflow.FUOpen, workflow.Action{Kind: workflow.ActClaim}, claim) {
			return
		}
		if c.Credit == "blocked" || rng.IntN(4) == 0 {
			w.act(cc, fu("credit_release"), workflow.FUClaimed, workflow.Action{Kind: workflow.ActBlock,
				Reason: "Invoices over 30 days overdue; released once the payment is in"}, claim.Add(minutes(rng, 10, 60)))
			return
		}
		done := w.office(rng, claim.Add(minutes(rng, 15, 120)))
		if !w.act(cc, fu("credit_release"), workflow.FUClaimed, workflow.Action{Kind: workflow.ActComplete,
			Note: "Payment received; credit released for this order"}, done) {
			return
		}
		at = done
	case "price_approval":
		mgr := w.managerOf(rep)
		t := w.office(rng, at.Add(minutes(rng, 60, 360)))
		if rng.IntN(7) == 0 {
			w.act(mgr, fu("price_approval"), workflow.FUOpen, workflow.Action{Kind: workflow.ActBlock,
				Reason: "Only with a 12-month volume commitment: please ask the customer"}, t)
			return
		}
		if !w.act(mgr, fu("price_approval"), workflow.FUOpen, workflow.Action{Kind: workflow.ActComplete,
			Note: "Approved: competitor offer seen, volume order"}, t) {
			return
		}
		at = t
	}
	// Accepted at `at`: availability, ERP entry, dispatch, delivery, invoice.
	cancelAt := time.Time{}
	if rng.IntN(33) == 0 {
		cancelAt = at.Add(minutes(rng, 20, 90))
		ord := order
		w.add(cancelAt, func(ctx context.Context, l *demoLoader) error { return l.cancelOrder(ctx, rep.ID, ord) })
	}
	step := func(user, id, before string, act workflow.Action, t time.Time) bool {
		if !cancelAt.IsZero() && !t.Before(cancelAt) {
			return false
		}
		return w.act(user, id, before, act, t)
	}
	dp, od, st, lg, bl := "demand-planning", "order-desk", "stores", "logistics", "billing"
	// Availability.
	t := w.office(rng, at.Add(minutes(rng, 10, 90)))
	if !step(dp, fu("availability_check"), workflow.FUOpen, workflow.Action{Kind: workflow.ActClaim}, t) {
		return
	}
	if rng.IntN(16) == 0 {
		t = t.Add(minutes(rng, 20, 60))
		if !step(dp, fu("availability_check"), workflow.FUClaimed, workflow.Action{Kind: workflow.ActBlock,
			Reason: "Lead time of one item unclear; asked the factory"}, t) {
			return
		}
		t = w.office(rng, t.Add(minutes(rng, 18*60, 30*60)))
		if !step(dp, fu("availability_check"), workflow.FUBlocked, workflow.Action{Kind: workflow.ActStart}, t) {
			return
		}
		t = t.Add(minutes(rng, 20, 60))
		if !step(dp, fu("availability_check"), workflow.FUInProgress, workflow.Action{Kind: workflow.ActComplete,
			Note: "Factory confirms delivery in three weeks"}, t) {
			return
		}
	} else {
		t = w.office(rng, t.Add(minutes(rng, 20, 150)))
		note := "All items in stock"
		if rng.IntN(4) == 0 {
			note = "In stock except one item: two weeks"
		}
		if !step(dp, fu("availability_check"), workflow.FUClaimed, workflow.Action{Kind: workflow.ActComplete, Note: note}, t) {
			return
		}
	}
	// ERP entry: the order is confirmed.
	t = w.office(rng, t.Add(minutes(rng, 5, 120)))
	if !step(od, fu("erp_entry"), workflow.FUOpen, workflow.Action{Kind: workflow.ActClaim}, t) {
		return
	}
	t = t.Add(minutes(rng, 2, 20))
	if !step(od, fu("erp_entry"), workflow.FUClaimed, workflow.Action{Kind: workflow.ActStart}, t) {
		return
	}
	t = w.office(rng, t.Add(minutes(rng, 10, 45)))
	erp := fmt.Sprintf("45%08d", rng.IntN(100000000))
	if !step(od, fu("erp_entry"), workflow.FUInProgress, workflow.Action{Kind: workflow.ActComplete,
		Note: "Entered in SAP; confirmation sent to the customer", Result: map[string]any{"erp_number": erp}}, t) {
		return
	}
	confirmed := t
	if rng.IntN(8) == 0 {
		// The customer calls the rep: where is my delivery?
		w.raiseQuery(rng, rep, c, order, w.office(rng, confirmed.Add(minutes(rng, 20*60, 40*60))))
	}
	// Dispatch.
	t = w.office(rng, t.Add(minutes(rng, 60, 8*60)))
	if !step(st, fu("dispatch"), workflow.FUOpen, workflow.Action{Kind: workflow.ActClaim}, t) {
		return
	}
	if rng.IntN(12) == 0 {
		t = t.Add(minutes(rng, 30, 120))
		if !step(st, fu("dispatch"), workflow.FUClaimed, workflow.Action{Kind: workflow.ActBlock,
			Reason: "Short of two items; waiting for the goods receipt"}, t) {
			return
		}
		t = w.office(rng, t.Add(minutes(rng, 20*60, 48*60)))
		if !step(st, fu("dispatch"), workflow.FUBlocked, workflow.Action{Kind: workflow.ActStart}, t) {
			return
		}
	} else {
		t = t.Add(minutes(rng, 10, 120))
		if !step(st, fu("dispatch"), workflow.FUClaimed, workflow.Action{Kind: workflow.ActStart}, t) {
			return
		}
	}
	// Picking and packing a large order takes into the next day.
	t = w.office(rng, t.Add(minutes(rng, 60, 20*60)))
	if !step(st, fu("dispatch"), workflow.FUInProgress, workflow.Action{Kind: workflow.ActComplete,
		Note: fmt.Sprintf("Picked, packed, QC passed; %d pallet(s) shipped", 1+rng.IntN(3))}, t) {
		return
	}
	// Delivery: proof of delivery makes the order delivered.
	dispatched := t
	t = w.office(rng, t.Add(minutes(rng, 60, 4*60)))
	if !step(lg, fu("delivery"), workflow.FUOpen, workflow.Action{Kind: workflow.ActClaim}, t) {
		return
	}
	// In transit for one or two days, counted from dispatch (but never
	// before logistics claimed it).
	t = w.office(rng, later(dispatched.Add(minutes(rng, 18*60, 50*60)), t.Add(minutes(rng, 10, 60))))
	if !step(lg, fu("delivery"), workflow.FUClaimed, workflow.Action{Kind: workflow.ActComplete, Note: "Delivered; signed by goods receipt",
		Result: map[string]any{"proof_of_delivery": "POD-" + erp}}, t) {
		return
	}
	// Invoice.
	t = w.office(rng, t.Add(minutes(rng, 60, 20*60)))
	if !step(bl, fu("invoice"), workflow.FUOpen, workflow.Action{Kind: workflow.ActClaim}, t) {
		return
	}
	t = t.Add(minutes(rng, 5, 30))
	step(bl, fu("invoice"), workflow.FUClaimed, workflow.Action{Kind: workflow.ActComplete, Note: "Invoice sent by e-mail",
		Result: map[string]any{"invoice_number": fmt.Sprintf("RE-%d-%05d", t.Year(), rng.IntN(100000))}}, t)
}

// raiseQuery: the rep raises a delivery-status query for the order desk.
func (w *demoWorld) raiseQuery(rng *rand.Rand, rep User, c demoCustomer, order string, at time.Time) {
	id := "fuq-" + strings.TrimPrefix(order, "ord-")
	mut := createMut(id+"-raise", fieldsales.CollFollowUps, id, map[string]any{"activity": "delivery_status_query",
		"customer_id": c.ID, "order_id": order, "description": "Customer asks when the delivery arrives"})
	if !w.add(at, func(ctx context.Context, l *demoLoader) error { return l.push(ctx, rep.ID, []engine.Mutation{mut}) }) {
		return
	}
	w.raisedIDs = append(w.raisedIDs, id)
	t := w.office(rng, at.Add(minutes(rng, 20, 180)))
	if !w.act("order-desk", id, workflow.FUOpen, workflow.Action{Kind: workflow.ActClaim}, t) {
		return
	}
	w.act("order-desk", id, workflow.FUClaimed, workflow.Action{Kind: workflow.ActComplete,
		Note: "Dispatch planned for this week; tracking link sent to the customer"}, w.office(rng, t.Add(minutes(rng, 10, 60))))
}

// act schedules a follow-up action by user at t; before is the status the
// follow-up has when the action is due (a second run skips actions whose
// follow-up moved on).
func (w *demoWorld) act(user, id, before string, a workflow.Action, t time.Time) bool {
	return w.add(t, func(ctx context.Context, l *demoLoader) error { return l.act(ctx, user, id, before, a) })
}

// reviews: the manager reviews the previous day's visits: every flagged
// check-in and about a third of the others.
func (w *demoWorld) reviews(rng *rand.Rand, mgr string, at time.Time, items []reviewItem) {
	var ids []string
	reviews := map[string]map[string]any{}
	for _, it := range items {
		var r map[string]any
		switch it.quality {
		case gpsFar:
			r = map[string]any{"status": "flagged", "comment": "Check-in far from the site: please check in at the customer."}
		case gpsNone:
			r = map[string]any{"status": "flagged", "comment": "No GPS on the check-in: was the app's location permission off?"}
		case gpsVague:
			if rng.IntN(2) == 0 {
				r = map[string]any{"status": "approved", "comment": "Vague fix, but the customer confirmed the visit."}
			}
		default:
			if rng.IntN(3) == 0 {
				r = map[string]any{"status": "approved"}
			}
		}
		if r != nil && rng.IntN(10) < 9 { // a few slip through
			ids = append(ids, it.id)
			reviews[it.id] = r
		}
	}
	if len(ids) == 0 {
		return
	}
	w.add(at, func(ctx context.Context, l *demoLoader) error { return l.review(ctx, mgr, ids, reviews) })
}

func createMut(mid, coll, id string, doc map[string]any) engine.Mutation {
	b, _ := json.Marshal(doc)
	return engine.Mutation{ID: mid, Collection: coll, DocID: id, Op: engine.OpCreate, Doc: b}
}

func updateMut(mid, coll, id string, base int64, fields map[string]any) engine.Mutation {
	f := map[string]json.RawMessage{}
	for k, v := range fields {
		f[k], _ = json.Marshal(v)
	}
	return engine.Mutation{ID: mid, Collection: coll, DocID: id, Op: engine.OpUpdate, BaseVersion: base, Fields: f}
}
