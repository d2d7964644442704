package engine

import (
	"context"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
)

// Visits: the server-derived fields of visit logs and the rules of visit
// plans (docs/workflows.md, "Visits"). Everything here runs inside decide
// and is pure: what it needs from the store (the customer's location, the
// rep's open visit) is read before the push, in preVisits.

// VisitRules configure how visit logs are verified. Zero fields take
// DefaultVisitRules.
type VisitRules struct {
	// RadiusM is how far from the customer's site (metres) a check-in may
	// be and still count as verified.
	RadiusM float64
	// MaxAccuracyM is the largest GPS accuracy radius (metres) a check-in
	// may report and still be verified; a vaguer fix is low_accuracy.
	MaxAccuracyM float64
	// ClockTolerance is the largest device clock offset that is taken for
	// transit time and not corrected.
	ClockTolerance time.Duration
}

// DefaultVisitRules are the documented defaults (serve --visit-radius,
// --visit-max-accuracy, --clock-tolerance).
var DefaultVisitRules = VisitRules{RadiusM: 250, MaxAccuracyM: 100, ClockTolerance: 2 * time.Minute}

func (r VisitRules) withDefaults() VisitRules {
	d := DefaultVisitRules
	if r.RadiusM <= 0 {
		r.RadiusM = d.RadiusM
	}
	if r.MaxAccuracyM <= 0 {
		r.MaxAccuracyM = d.MaxAccuracyM
	}
	if r.ClockTolerance <= 0 {
		r.ClockTolerance = d.ClockTolerance
	}
	return r
}

// Verification statuses of a visit log's check-in.
const (
	VisitVerified    = "verified"     // within the radius, with a good enough fix
	VisitOutOfRange  = "out_of_range" // farther than the radius from the site
	VisitNoGPS       = "no_gps"       // the check-in carries no position
	VisitLowAccuracy = "low_accuracy" // the fix is vaguer than the accuracy threshold
	VisitNoSite      = "no_site"      // the customer has no location to compare with
)

// Codes of the visit rules.
const (
	// CodeVisitInProgress rejects a check-in while the rep has another
	// visit checked in and not checked out; the message names it.
	CodeVisitInProgress = "visit_in_progress"
	// CodeCannotAssign rejects a visit plan for another user by someone
	// who does not lead them.
	CodeCannotAssign = "cannot_assign"
)

// Fields of a visit log set by the server (readOnly in the schema).
const (
	fieldCheckInAt       = "check_in_at"              // corrected check-in time
	fieldCheckOutAt      = "check_out_at"             // corrected check-out time
	fieldClockOffset     = "clock_offset_s"           // correction applied to the check-in
	fieldCheckOutOffset  = "check_out_clock_offset_s" // correction applied to the check-out
	fieldDuration        = "duration_s"
	fieldVerification    = "verification"
	fieldReview          = "review"
	fieldPlanRep         = "rep_id"
	fieldPlanAssignedBy  = "assigned_by"
	openVisitIndexPrefix = "ix:open-visit:"
)

// clockReading is what a push says about the device's clock.
type clockReading struct {
	known  bool
	offset time.Duration // server receive time - device time, 0 within tolerance
}

// readClock turns a push's device_time into the correction of the times it
// carries.
func (e *Engine) readClock(deviceTime string, received time.Time) (clockReading, error) {
	if deviceTime == "" {
		return clockReading{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, deviceTime)
	if err != nil {
		return clockReading{}, Errorf(KindInvalid, CodeInvalidRequest, "/device_time",
			"device_time must be an RFC 3339 time such as 2026-12-01T09:00:00.000+01:00")
	}
	off := received.Sub(t).Round(time.Second)
	if off.Abs() <= e.visits.ClockTolerance {
		off = 0
	}
	return clockReading{known: true, offset: off}, nil
}

// latLng is a position in degrees (WGS 84).
type latLng struct{ lat, lng float64 }

// positionOf reads {lat, lng} from a decoded object.
func positionOf(v any) (latLng, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return latLng{}, false
	}
	lat, ok1 := number(m["lat"])
	lng, ok2 := number(m["lng"])
	return latLng{lat, lng}, ok1 && ok2
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	case float64:
		return n, true
	case int64:
		return float64(n), true
	case int:
		return float64(n), true
	}
	return 0, false
}

// distanceM is the great-circle distance in metres (haversine).
func distanceM(a, b latLng) float64 {
	const r = 6371008.8 // mean Earth radius
	rad := math.Pi / 180
	dlat := (b.lat - a.lat) * rad
	dlng := (b.lng - a.lng) * rad
	h := math.Sin(dlat/2)*math.Sin(dlat/2) + math.Cos(a.lat*rad)*math.Cos(b.lat*rad)*math.Sin(dlng/2)*math.Sin(dlng/2)
	return 2 * r * math.Asin(math.Min(1, math.Sqrt(h)))
}

// verify classifies a check-in against the customer's site.
func (r VisitRules) verify(checkIn map[string]any, site *latLng) map[string]any {
	out := map[string]any{}
	pos, ok := positionOf(checkIn)
	switch {
	case !ok:
		out["status"] = VisitNoGPS
		return out
	case site == nil:
		out["status"] = VisitNoSite
		return out
	}
	d := distanceM(pos, *site)
	out["distance_m"] = json.Number(strconv.FormatInt(int64(math.Round(d)), 10))
	acc, hasAcc := number(checkIn["accuracy_m"])
	switch {
	case hasAcc && acc > r.MaxAccuracyM:
		out["status"] = VisitLowAccuracy
	case d > r.RadiusM:
		out["status"] = VisitOutOfRange
	default:
		out["status"] = VisitVerified
	}
	return out
}

// eventTime reads the device time of a check-in or check-out.
func eventTime(v any) (time.Time, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return time.Time{}, false
	}
	s, _ := m["at"].(string)
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}

func formatTime(t time.Time) string {
	return t.UTC().Truncate(time.Millisecond).Format("2006-01-02T15:04:05.000Z")
}

func intNumber(n int64) json.Number { return json.Number(strconv.FormatInt(n, 10)) }

// visitIsOpen reports whether a visit log body is checked in and not out.
func visitIsOpen(body map[string]any) bool {
	_, in := body["check_in"].(map[string]any)
	_, out := body["check_out"].(map[string]any)
	return in && !out
}

// visitState is what preVisits learned before the push.
type visitState struct {
	customers []string        // further customers to resolve (visit logs whose check-in changes)
	open      map[string]bool // the pushing user's open visits, by id
}

// preVisits reads what the batch's visit mutations need from the store
// before the push: the customers of visit logs whose check-in an update
// changes (to verify it again) and, when the batch opens a visit, the
// pushing user's open visits (from the open-visit index keys of the check-in
// month and the month before).
func (e *Engine) preVisits(ctx context.Context, acc *access, pre []*prepared, pass []Mutation, trusted bool) (*visitState, error) {
	vs := &visitState{open: map[string]bool{}}
	var refs []DocRef
	var keys []string
	for i, p := range pre {
		if p.err != nil || p.coll != CollVisitLogs {
			continue
		}
		m := &pass[i]
		switch m.Op {
		case OpCreate:
			if !trusted && visitIsOpen(p.body) {
				if t, ok := eventTime(p.body["check_in"]); ok {
					t = t.Add(acc.clock.offset)
					keys = append(keys, openVisitKey(acc.actor.User, t), openVisitKey(acc.actor.User, t.AddDate(0, -1, 0)))
				}
			}
		case OpUpdate:
			if _, ok := p.fields["check_in"]; ok {
				refs = append(refs, DocRef{Collection: CollVisitLogs, ID: m.DocID})
			}
			if v, ok := p.fields["check_out"]; ok && v == nil && !trusted {
				// Reopening a visit: any month may hold it, so read the
				// current and previous month of the server's clock.
				now := e.now()
				keys = append(keys, openVisitKey(acc.actor.User, now), openVisitKey(acc.actor.User, now.AddDate(0, -1, 0)))
			}
		}
	}
	if len(refs) > 0 {
		docs, err := e.store.Get(ctx, acc.actor.Org, refs)
		if err != nil {
			return nil, err
		}
		for _, d := range docs {
			var b struct {
				Customer string `json:"customer_id"`
			}
			if json.Unmarshal(d.Body, &b) == nil && b.Customer != "" {
				vs.customers = append(vs.customers, b.Customer)
			}
		}
	}
	if len(keys) == 0 {
		return vs, nil
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	var after int64
	for {
		pg, err := e.store.Pull(ctx, PullQuery{Org: acc.actor.Org, Scopes: keys, After: after,
			Limit: e.limits.MaxPageSize, MaxBytes: 16 << 20})
		if err != nil {
			return nil, err
		}
		if pg.Compacted { // compacted meanwhile (retention.go): read again
			clear(vs.open)
			after = 0
			continue
		}
		for _, ch := range pg.Changes {
			if ch.Collection == CollVisitLogs {
				vs.open[ch.ID] = !ch.Deleted && !ch.Evicted
			}
		}
		if !pg.More || pg.Through <= after {
			return vs, nil
		}
		after = pg.Through
	}
}

// openVisitKey is the index key of a user's visits checked in during the
// month of t (UTC) and not checked out. Nobody reads it; preVisits does.
func openVisitKey(user string, t time.Time) string {
	return openVisitIndexPrefix + user + ":" + t.UTC().Format("2006-01")
}

// deriveCreate applies the visit rules to a document a push creates and
// sets the server's fields in body. It reports whether body changed.
func (e *Engine) deriveCreate(acc *access, coll, id string, body map[string]any, cust customerInfo, res *resolution, trusted bool) (bool, error) {
	switch coll {
	case CollVisitLogs:
		if _, ok := body[fieldReview]; ok && !trusted && !acc.actor.HasRole(RoleAdmin) {
			return false, Errorf(KindForbidden, CodeFieldNotWritable, "/doc/review", "a visit is reviewed after it is logged, by the rep's manager")
		}
		e.deriveVisit(acc, body, nil, cust)
		if !trusted && visitIsOpen(body) {
			if err := res.visits.checkIn(id, "/doc/check_in"); err != nil {
				return false, err
			}
		}
		return true, nil
	case CollVisitPlans:
		return checkPlanAssignment(acc, body, cust, trusted)
	}
	return false, nil
}

// deriveUpdate applies the visit rules to an update whose applied fields
// are already in body (cur is the stored document). It returns the server
// fields it set, for the field history.
func (e *Engine) deriveUpdate(acc *access, cur *Document, body map[string]any, applied []string, res *resolution, trusted bool) ([]string, error) {
	switch cur.Collection {
	case CollVisitLogs:
		var derived []string
		if slices.Contains(applied, fieldReview) {
			if !trusted && !acc.actor.HasRole(RoleAdmin) && !slices.Contains(acc.reports, cur.Owner) {
				return nil, Errorf(KindForbidden, CodeFieldNotWritable, "/fields/review",
					"only a manager of %s (or an admin) reviews their visits", cur.Owner)
			}
			if r, ok := body[fieldReview].(map[string]any); ok {
				r["by"] = acc.actor.User
				r["at"] = formatTime(e.now())
			}
		}
		touchesIn, touchesOut := slices.Contains(applied, "check_in"), slices.Contains(applied, "check_out")
		if !touchesIn && !touchesOut {
			return nil, nil
		}
		wasOpen := visitIsOpen(mustDecode(cur.Body))
		var events []string
		var cust customerInfo
		if touchesIn {
			events = append(events, "check_in")
			cust = res.customer(customerOf(CollVisitLogs, body))
		}
		if touchesOut {
			events = append(events, "check_out")
		}
		changed := e.deriveVisit(acc, body, events, cust)
		for k := range changed {
			derived = append(derived, k)
		}
		slices.Sort(derived)
		switch open := visitIsOpen(body); {
		case open && !wasOpen && !trusted && cur.Owner == acc.actor.User:
			if err := res.visits.checkIn(cur.ID, "/fields/check_out"); err != nil {
				return nil, err
			}
		case !open:
			res.visits.checkOut(cur.ID)
		}
		return derived, nil
	case CollVisitPlans:
		if slices.Contains(applied, fieldPlanRep) {
			return nil, Errorf(KindForbidden, CodeImmutableField, "/fields/rep_id",
				"rep_id is fixed when the plan is created: cancel the plan and create one for the other rep")
		}
	}
	return nil, nil
}

func mustDecode(raw json.RawMessage) map[string]any {
	m, _ := decodeObject(raw)
	return m
}

// deriveVisit sets a visit log's corrected times, duration and
// verification in body. events lists which of check_in and check_out this
// push carried (nil: both, a create); the others keep their earlier
// correction. It returns the fields it set or removed.
func (e *Engine) deriveVisit(acc *access, body map[string]any, events []string, cust customerInfo) map[string]bool {
	changed := map[string]bool{}
	set := func(k string, v any) {
		body[k] = v
		changed[k] = true
	}
	drop := func(k string) {
		if _, ok := body[k]; ok {
			delete(body, k)
			changed[k] = true
		}
	}
	carries := func(ev string) bool { return events == nil || slices.Contains(events, ev) }
	off := acc.clock.offset
	if carries("check_in") {
		if t, ok := eventTime(body["check_in"]); ok {
			set(fieldCheckInAt, formatTime(t.Add(off)))
			if acc.clock.known {
				set(fieldClockOffset, intNumber(int64(off/time.Second)))
			} else {
				drop(fieldClockOffset)
			}
		}
		ci, _ := body["check_in"].(map[string]any)
		set(fieldVerification, e.visits.verify(ci, cust.location))
	}
	if carries("check_out") {
		if t, ok := eventTime(body["check_out"]); ok {
			set(fieldCheckOutAt, formatTime(t.Add(off)))
			if acc.clock.known {
				set(fieldCheckOutOffset, intNumber(int64(off/time.Second)))
			} else {
				drop(fieldCheckOutOffset)
			}
		} else {
			drop(fieldCheckOutAt)
			drop(fieldCheckOutOffset)
		}
	}
	in, ok1 := parseTime(body[fieldCheckInAt])
	out, ok2 := parseTime(body[fieldCheckOutAt])
	if ok1 && ok2 {
		set(fieldDuration, intNumber(max(0, int64(out.Sub(in)/time.Second))))
	} else {
		drop(fieldDuration)
	}
	return changed
}

func parseTime(v any) (time.Time, bool) {
	s, _ := v.(string)
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}

// checkIn records that visit id is opened by this batch, unless another
// visit of the pushing user is open.
func (vs *visitState) checkIn(id, pointer string) error {
	if vs == nil {
		return nil
	}
	var others []string
	for v, open := range vs.open {
		if open && v != id {
			others = append(others, v)
		}
	}
	if len(others) > 0 {
		slices.Sort(others)
		return Errorf(KindConflict, CodeVisitInProgress, pointer,
			"visit_logs/%s is still in progress: check out of it before checking in again", others[0])
	}
	vs.open[id] = true
	return nil
}

func (vs *visitState) checkOut(id string) {
	if vs != nil {
		delete(vs.open, id)
	}
}

// checkPlanAssignment enforces who may plan a visit for whom: anyone for
// themselves; a manager for a rep of a team they lead, an admin for
// anyone; the rep must be assigned to the customer, so the plan is in the
// rep's scope. An assignment records assigned_by.
func checkPlanAssignment(acc *access, body map[string]any, cust customerInfo, trusted bool) (bool, error) {
	rep, _ := body[fieldPlanRep].(string)
	if rep == "" || rep == acc.actor.User {
		return false, nil
	}
	a := acc.actor
	if !trusted && !a.HasRole(RoleAdmin) && !(a.HasRole(RoleManager) && slices.Contains(acc.reports, rep)) {
		return false, Errorf(KindForbidden, CodeCannotAssign, "/doc/rep_id",
			"only a manager of %s (or an admin) may plan visits for them", rep)
	}
	if !slices.Contains(cust.reps, rep) {
		return false, Errorf(KindForbidden, CodeCustomerNotInScope, "/doc/rep_id",
			"the customer is not assigned to %s: assign it first", rep)
	}
	if trusted {
		if _, ok := body[fieldPlanAssignedBy]; ok {
			return false, nil
		}
	}
	body[fieldPlanAssignedBy] = a.User
	return true, nil
}

// planVisited is the hook that marks a visit plan done when a visit log of
// the plan's rep at the plan's customer names it in visit_plan_id.
type planVisited struct{ e *Engine }

func (planVisited) Collections() []string { return []string{CollVisitLogs} }

func (h planVisited) AfterPush(ctx context.Context, actor Actor, docs []*Document) error {
	type visit struct{ owner, customer string }
	byPlan := map[string]visit{}
	var refs []DocRef
	for _, d := range docs {
		var b struct {
			Plan     string `json:"visit_plan_id"`
			Customer string `json:"customer_id"`
		}
		if json.Unmarshal(d.Body, &b) != nil || b.Plan == "" {
			continue
		}
		if _, ok := byPlan[b.Plan]; !ok {
			refs = append(refs, DocRef{Collection: CollVisitPlans, ID: b.Plan})
		}
		byPlan[b.Plan] = visit{d.Owner, b.Customer}
	}
	if len(refs) == 0 {
		return nil
	}
	plans, err := h.e.store.Get(ctx, actor.Org, refs)
	if err != nil {
		return err
	}
	var done []UpsertDoc
	for _, ref := range refs {
		p := plans[ref]
		if p == nil || p.Deleted {
			continue
		}
		var b struct {
			Rep      string `json:"rep_id"`
			Customer string `json:"customer_id"`
			Status   string `json:"status"`
		}
		if json.Unmarshal(p.Body, &b) != nil {
			continue
		}
		rep := b.Rep
		if rep == "" {
			rep = p.Owner
		}
		v := byPlan[ref.ID]
		if rep != v.owner || b.Customer != v.customer || (b.Status != "" && b.Status != "planned") {
			continue
		}
		done = append(done, UpsertDoc{Collection: CollVisitPlans, ID: ref.ID,
			Fields: map[string]json.RawMessage{"status": json.RawMessage(`"done"`)},
			Expect: &Expect{Field: "status", In: []string{"", "planned"}}})
	}
	if len(done) == 0 {
		return nil
	}
	// A plan cancelled meanwhile fails the expectation and stays cancelled.
	_, err = h.e.Upsert(ctx, Actor{Org: actor.Org, User: systemUser, Roles: []string{RoleAdmin}}, "visits", done)
	return err
}
