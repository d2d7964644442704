package fieldsales

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// Visits: the server-derived fields of visit logs and the rules of visit
// plans (docs/workflows.md, "Visits"). Everything here runs inside the
// batch's decisions and is pure: what it needs from the store (the
// customer's location, the rep's open visit) is read before the push, in
// readVisits.

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
	openVisitIndexPrefix = engine.IndexPrefix + "open-visit:"
)

// clockReading is what a push says about the device's clock.
type clockReading struct {
	known  bool
	offset time.Duration // server receive time - device time, 0 within tolerance
}

// readClock turns a push's device time into the correction of the times it
// carries.
func (r VisitRules) readClock(device, received time.Time) clockReading {
	if device.IsZero() {
		return clockReading{}
	}
	off := received.Sub(device).Round(time.Second)
	if off.Abs() <= r.ClockTolerance {
		off = 0
	}
	return clockReading{known: true, offset: off}
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

// readVisits reads what the batch's visit mutations need from the store
// before the push: the visit logs whose check-in an update changes and
// their customers (to verify it again), and, when the batch opens a visit,
// the pushing user's open visits (from the open-visit index keys of the
// check-in month and the month before).
func (b *batch) readVisits(ctx context.Context, rd engine.Reader, got map[engine.DocRef]*engine.Document) error {
	var keys []string
	var customers []engine.DocRef
	user := b.info.Actor.User
	for _, p := range b.info.Writes {
		m := p.Mutation
		if m.Collection != CollVisitLogs {
			continue
		}
		switch m.Op {
		case engine.OpCreate:
			if visitIsOpen(p.Body) {
				if t, ok := eventTime(p.Body["check_in"]); ok {
					t = t.Add(b.clock.offset)
					keys = append(keys, openVisitKey(user, t), openVisitKey(user, t.AddDate(0, -1, 0)))
				}
			}
		case engine.OpUpdate:
			if _, ok := p.Fields["check_in"]; ok {
				if d := got[engine.DocRef{Collection: CollVisitLogs, ID: m.DocID}]; d != nil && !d.Deleted {
					if c := customerOf(CollVisitLogs, mustDecode(d.Body)); c != "" {
						customers = append(customers, engine.DocRef{Collection: CollCustomers, ID: c})
					}
				}
			}
			if v, ok := p.Fields["check_out"]; ok && v == nil {
				// Reopening a visit: any month may hold it, so read the
				// current and previous month of the server's clock.
				now := b.info.Received
				keys = append(keys, openVisitKey(user, now), openVisitKey(user, now.AddDate(0, -1, 0)))
			}
		}
	}
	if len(customers) > 0 {
		docs, err := rd.Get(ctx, customers)
		if err != nil {
			return err
		}
		for ref, d := range docs {
			b.sites[ref.ID] = d
		}
	}
	if len(keys) == 0 {
		return nil
	}
	slices.Sort(keys)
	changes, err := rd.Scope(ctx, slices.Compact(keys))
	if err != nil {
		return err
	}
	for _, ch := range changes {
		if ch.Collection == CollVisitLogs {
			b.open[ch.ID] = !ch.Deleted && !ch.Evicted
		}
	}
	return nil
}

// visitUpdates lists the visit logs whose check-in the batch's updates
// change: readVisits needs their customers.
func visitUpdates(writes []engine.Pending) []engine.DocRef {
	var refs []engine.DocRef
	for _, p := range writes {
		if p.Mutation.Collection == CollVisitLogs && p.Mutation.Op == engine.OpUpdate {
			if _, ok := p.Fields["check_in"]; ok {
				refs = append(refs, engine.DocRef{Collection: CollVisitLogs, ID: p.Mutation.DocID})
			}
		}
	}
	return refs
}

// openVisitKey is the index key of a user's visits checked in during the
// month of t (UTC) and not checked out. Nobody reads it; preVisits does.
func openVisitKey(user string, t time.Time) string {
	return openVisitIndexPrefix + user + ":" + t.UTC().Format("2006-01")
}

// deriveCreate applies the visit rules to a document a push creates and
// sets the server's fields in its body. It reports whether the body changed.
func (b *batch) deriveCreate(w *engine.Write) (bool, error) {
	body := w.Body
	switch w.Mutation.Collection {
	case CollVisitLogs:
		if _, ok := body[fieldReview]; ok && !w.Server && !w.Actor.HasRole(RoleAdmin) {
			return false, engine.Errorf(engine.KindForbidden, engine.CodeFieldNotWritable, "/doc/review", "a visit is reviewed after it is logged, by the rep's manager")
		}
		b.deriveVisit(body, nil, w.Parent)
		if !w.Server && visitIsOpen(body) {
			if err := b.checkIn(w.Mutation.DocID, "/doc/check_in"); err != nil {
				return false, err
			}
		}
		return true, nil
	case CollVisitPlans:
		return checkPlanAssignment(w, w.Parent)
	}
	return false, nil
}

// deriveUpdate applies the visit rules to an update whose applied fields
// are already in its body. It returns the server fields it set, for the
// field history.
func (b *batch) deriveUpdate(w *engine.Write) ([]string, error) {
	cur, body, applied := w.Cur, w.Body, w.Applied
	switch cur.Collection {
	case CollVisitLogs:
		var derived []string
		if slices.Contains(applied, fieldReview) {
			if !w.Server && !w.Actor.HasRole(RoleAdmin) && !slices.Contains(w.Reports, cur.Owner) {
				return nil, engine.Errorf(engine.KindForbidden, engine.CodeFieldNotWritable, "/fields/review",
					"only a manager of %s (or an admin) reviews their visits", cur.Owner)
			}
			if r, ok := body[fieldReview].(map[string]any); ok {
				r["by"] = w.Actor.User
				r["at"] = formatTime(w.Now)
			}
		}
		touchesIn, touchesOut := slices.Contains(applied, "check_in"), slices.Contains(applied, "check_out")
		if !touchesIn && !touchesOut {
			return nil, nil
		}
		wasOpen := visitIsOpen(w.Before)
		var events []string
		var site *engine.Document
		if touchesIn {
			events = append(events, "check_in")
			if site = w.Parent; !w.ParentRead {
				site = b.sites[customerOf(CollVisitLogs, body)]
			}
		}
		if touchesOut {
			events = append(events, "check_out")
		}
		changed := b.deriveVisit(body, events, site)
		for k := range changed {
			derived = append(derived, k)
		}
		slices.Sort(derived)
		switch open := visitIsOpen(body); {
		case open && !wasOpen && !w.Server && cur.Owner == w.Actor.User:
			if err := b.checkIn(cur.ID, "/fields/check_out"); err != nil {
				return nil, err
			}
		case !open:
			b.checkOut(cur.ID)
		}
		return derived, nil
	case CollVisitPlans:
		if slices.Contains(applied, fieldPlanRep) {
			return nil, engine.Errorf(engine.KindForbidden, engine.CodeImmutableField, "/fields/rep_id",
				"rep_id is fixed when the plan is created: cancel the plan and create one for the other rep")
		}
	}
	return nil, nil
}

// mustDecode decodes a stored body (validated on the way in).
func mustDecode(raw json.RawMessage) map[string]any {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	dec.Decode(&m)
	return m
}

// deriveVisit sets a visit log's corrected times, duration and
// verification in body. events lists which of check_in and check_out this
// push carried (nil: both, a create); the others keep their earlier
// correction. It returns the fields it set or removed.
func (b *batch) deriveVisit(body map[string]any, events []string, site *engine.Document) map[string]bool {
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
	off := b.clock.offset
	if carries("check_in") {
		if t, ok := eventTime(body["check_in"]); ok {
			set(fieldCheckInAt, formatTime(t.Add(off)))
			if b.clock.known {
				set(fieldClockOffset, intNumber(int64(off/time.Second)))
			} else {
				drop(fieldClockOffset)
			}
		}
		ci, _ := body["check_in"].(map[string]any)
		set(fieldVerification, b.rules.visits.verify(ci, siteOf(site)))
	}
	if carries("check_out") {
		if t, ok := eventTime(body["check_out"]); ok {
			set(fieldCheckOutAt, formatTime(t.Add(off)))
			if b.clock.known {
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
func (b *batch) checkIn(id, pointer string) error {
	if b.open == nil { // the server's writes
		return nil
	}
	var others []string
	for v, open := range b.open {
		if open && v != id {
			others = append(others, v)
		}
	}
	if len(others) > 0 {
		slices.Sort(others)
		return engine.Errorf(engine.KindConflict, CodeVisitInProgress, pointer,
			"visit_logs/%s is still in progress: check out of it before checking in again", others[0])
	}
	b.open[id] = true
	return nil
}

func (b *batch) checkOut(id string) {
	delete(b.open, id) // nil for the server's writes: a no-op
}

// checkPlanAssignment enforces who may plan a visit for whom: anyone for
// themselves; a manager for a rep of a team they lead, an admin for
// anyone; the rep must be assigned to the customer, so the plan is in the
// rep's scope. An assignment records assigned_by.
func checkPlanAssignment(w *engine.Write, customer *engine.Document) (bool, error) {
	body := w.Body
	rep, _ := body[fieldPlanRep].(string)
	a := w.Actor
	if rep == "" || rep == a.User {
		return false, nil
	}
	if !w.Server && !a.HasRole(RoleAdmin) && !(a.HasRole(RoleManager) && slices.Contains(w.Reports, rep)) {
		return false, engine.Errorf(engine.KindForbidden, CodeCannotAssign, "/doc/rep_id",
			"only a manager of %s (or an admin) may plan visits for them", rep)
	}
	if customer == nil || customer.Deleted || !slices.Contains(customer.Scopes, UserScope(rep)) {
		return false, engine.Errorf(engine.KindForbidden, CodeCustomerNotInScope, "/doc/rep_id",
			"the customer is not assigned to %s: assign it first", rep)
	}
	if w.Server {
		if _, ok := body[fieldPlanAssignedBy]; ok {
			return false, nil
		}
	}
	body[fieldPlanAssignedBy] = a.User
	return true, nil
}

// siteOf reads a customer's location ({lat, lng}; nil: unknown).
func siteOf(customer *engine.Document) *latLng {
	if customer == nil || customer.Deleted {
		return nil
	}
	var body struct {
		Location *struct {
			Lat float64 `json:"lat"`
			Lng float64 `json:"lng"`
		} `json:"location"`
	}
	json.Unmarshal(customer.Body, &body) // validated on the way in
	if l := body.Location; l != nil {
		return &latLng{lat: l.Lat, lng: l.Lng}
	}
	return nil
}
