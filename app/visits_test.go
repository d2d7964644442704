package app_test

// Visits and KPIs through the real server (docs/workflows.md, "Visits" and
// "KPIs"), on SQLite and on the MongoDB store (FerretDB), from one source.
//
// Organisation org-v works in Asia/Kolkata (UTC+05:30, no daylight saving):
// teams T (rep-a, rep-v; led by mgr) and U (rep-b; led by mgr-u). Customer
// c1 has a location in Munich and is assigned to rep-a and rep-v; c2 has no
// location (rep-v); cB belongs to rep-b; cS is shared by rep-b and rep-v.

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
)

func TestVisitsAndKPIs(t *testing.T) {
	t.Parallel()
	testVisitsAndKPIs(t, onSQLite)
}

func TestVisitsAndKPIsMongoDB(t *testing.T) {
	t.Parallel()
	testVisitsAndKPIs(t, onMongoDB)
}

const vOrg = "org-v"

// The site of c1 and positions around it: 50 m north, 1 km east.
var (
	vSite  = [2]float64{48.137154, 11.576124}
	vNear  = [2]float64{vSite[0] + 50/111195.0, vSite[1]}
	vFar   = [2]float64{vSite[0], vSite[1] + 1000/(111195.0*math.Cos(vSite[0]*math.Pi/180))}
	vSite0 = map[string]any{"lat": vSite[0], "lng": vSite[1]}
)

func testVisitsAndKPIs(t *testing.T, store accStore) {
	w := newAccWorld(t, store)
	w.Admin(vOrg, "PUT", "/org", map[string]any{"time_zone": "Asia/Kolkata"}, 200)
	w.AddTeam(vOrg, "T")
	w.AddTeam(vOrg, "U")
	for _, u := range []accUser{
		{ID: "rep-a", Roles: []string{"rep"}, Teams: []string{"T"}},
		{ID: "rep-v", Roles: []string{"rep"}, Teams: []string{"T"}},
		{ID: "rep-b", Roles: []string{"rep"}, Teams: []string{"U"}},
		{ID: "mgr", Roles: []string{"manager"}, Leads: []string{"T"}},
		{ID: "mgr-u", Roles: []string{"manager"}, Leads: []string{"U"}},
	} {
		w.AddUser(vOrg, u)
	}
	w.MustApply(w.Operator(vOrg), "console", []map[string]any{
		mCreate("c-1", "customers", "c1", map[string]any{"name": "Kessler Pumps", "assigned_reps": []string{"rep-a", "rep-v"}, "location": vSite0}),
		mCreate("c-2", "customers", "c2", map[string]any{"name": "No Site GmbH", "assigned_reps": []string{"rep-v"}}),
		mCreate("c-b", "customers", "cB", map[string]any{"name": "Ullmann AG", "assigned_reps": []string{"rep-b"}}),
		mCreate("c-s", "customers", "cS", map[string]any{"name": "Shared Site KG", "assigned_reps": []string{"rep-b", "rep-v"}}),
	})
	v := &visitWorld{accWorld: w, rep: w.Token(vOrg, "rep-v", "rep"), mgr: w.Token(vOrg, "mgr", "manager"),
		mgrU: w.Token(vOrg, "mgr-u", "manager")}
	t.Run("verification", v.verification)
	t.Run("clock", v.clock)
	t.Run("review", v.review)
	t.Run("plans", v.plans)
	t.Run("kpis", v.kpis)
}

type visitWorld struct {
	*accWorld
	rep, mgr, mgrU string // tokens of rep-v, mgr, mgr-u
}

// pushAt pushes muts with tok, the device's clock reading deviceTime
// (omitted when zero).
func (v *visitWorld) pushAt(tok string, deviceTime time.Time, muts ...map[string]any) []engine.Outcome {
	v.T.Helper()
	body := push("phone", muts...)
	if !deviceTime.IsZero() {
		body["device_time"] = deviceTime.Format(time.RFC3339Nano)
	}
	st, raw := doRaw(v.T, "POST", v.Server.URL+"/v1/sync/push", tok, mustJSON(v.T, body))
	var r pushReply
	if st != 200 || json.Unmarshal(raw, &r) != nil || len(r.Results) != len(muts) {
		v.T.Fatalf("push: %d %s", st, raw)
	}
	return r.Results
}

// doc returns the server's copy of coll/id as tok pulls it.
func (v *visitWorld) doc(tok, coll, id string) map[string]any {
	v.T.Helper()
	raw, ok := v.Visible(tok)[coll+"/"+id]
	if !ok {
		v.T.Fatalf("%s/%s is not in the caller's feed", coll, id)
	}
	var d map[string]any
	if err := json.Unmarshal(raw, &d); err != nil {
		v.T.Fatal(err)
	}
	return d
}

func event(at string, pos [2]float64, accuracy float64) map[string]any {
	e := map[string]any{"at": at}
	if pos != [2]float64{} {
		e["lat"], e["lng"] = pos[0], pos[1]
	}
	if accuracy > 0 {
		e["accuracy_m"] = accuracy
	}
	return e
}

func visitLog(customer string, in, out map[string]any) map[string]any {
	d := map[string]any{"customer_id": customer, "check_in": in}
	if out != nil {
		d["check_out"] = out
	}
	return d
}

func wantApplied(t *testing.T, what string, outs ...engine.Outcome) {
	t.Helper()
	for i, o := range outs {
		if o.Status != engine.StatusApplied {
			t.Fatalf("%s [%d]: %+v, want applied", what, i, o)
		}
	}
}

func wantRejection(t *testing.T, what string, o engine.Outcome, code, pointer string) {
	t.Helper()
	if o.Status != engine.StatusRejected || o.Error == nil || o.Error.Code != code || o.Error.Pointer != pointer {
		t.Fatalf("%s: %+v, want rejected %s at %s", what, o, code, pointer)
	}
}

// verification: each status, with its distance; flagged visits are
// stored, never rejected.
func (v *visitWorld) verification(t *testing.T) {
	out := event("2026-11-20T10:00:00+05:30", [2]float64{}, 0)
	cases := []struct {
		id, customer string
		in           map[string]any
		status       string
		distance     float64 // -1: none
	}{
		{"vl-in", "c1", event("2026-11-20T09:00:00+05:30", vNear, 20), fieldsales.VisitVerified, 50},
		{"vl-far", "c1", event("2026-11-20T09:00:00+05:30", vFar, 10), fieldsales.VisitOutOfRange, 1000},
		{"vl-nogps", "c1", event("2026-11-20T09:00:00+05:30", [2]float64{}, 0), fieldsales.VisitNoGPS, -1},
		{"vl-vague", "c1", event("2026-11-20T09:00:00+05:30", vSite, 500), fieldsales.VisitLowAccuracy, 0},
		{"vl-nosite", "c2", event("2026-11-20T09:00:00+05:30", vSite, 10), fieldsales.VisitNoSite, -1},
	}
	var muts []map[string]any
	for _, c := range cases {
		muts = append(muts, mCreate("m-"+c.id, "visit_logs", c.id, visitLog(c.customer, c.in, out)))
	}
	wantApplied(t, "flagged visits", v.pushAt(v.rep, time.Time{}, muts...)...)
	for _, c := range cases {
		d := v.doc(v.rep, "visit_logs", c.id)
		ver, _ := d["verification"].(map[string]any)
		dist, hasDist := ver["distance_m"].(float64)
		if ver["status"] != c.status || hasDist != (c.distance >= 0) || (hasDist && math.Abs(dist-c.distance) > 2) {
			t.Errorf("%s: verification %v, want %s at %v m", c.id, ver, c.status, c.distance)
		}
		// 09:00 to 10:00 device time, no device_time: no correction.
		if d["duration_s"] != 3600.0 || d["check_in_at"] != "2026-11-20T03:30:00.000Z" || d["check_out_at"] != "2026-11-20T04:30:00.000Z" {
			t.Errorf("%s: duration %v, check_in_at %v, check_out_at %v", c.id, d["duration_s"], d["check_in_at"], d["check_out_at"])
		}
		if _, ok := d["clock_offset_s"]; ok {
			t.Errorf("%s: clock_offset_s %v without a device_time", c.id, d["clock_offset_s"])
		}
	}
	// The GPS fix arrives late: an update of check_in is verified again
	// against the customer's site.
	wantApplied(t, "late fix", v.pushAt(v.rep, time.Time{}, mUpdate("m-fix", "visit_logs", "vl-nogps", 1,
		map[string]any{"check_in": event("2026-11-20T09:00:00+05:30", vNear, 20)}))...)
	d := v.doc(v.rep, "visit_logs", "vl-nogps")
	ver, _ := d["verification"].(map[string]any)
	if dist, _ := ver["distance_m"].(float64); ver["status"] != fieldsales.VisitVerified || math.Abs(dist-50) > 2 || d["duration_s"] != 3600.0 {
		t.Errorf("after the late fix: %v, duration %v", ver, d["duration_s"])
	}
}

// clock: a device clock 3 hours slow at check-in, right at check-out; one
// visit in progress per rep.
func (v *visitWorld) clock(t *testing.T) {
	now := time.Now()
	slow := -3 * time.Hour
	// The phone checks in 30 minutes ago by the real clock; its own clock
	// says 3 h earlier, and so does device_time in the push.
	rawIn := now.Add(-30 * time.Minute).Add(slow)
	in := event(rawIn.Format(time.RFC3339), vNear, 15)
	wantApplied(t, "check-in", v.pushAt(v.rep, now.Add(slow), mCreate("m-clk", "visit_logs", "vl-clock", visitLog("c1", in, nil)))...)

	// A second check-in while vl-clock is open is rejected, naming it; so
	// is the second of two in one batch.
	second := visitLog("c1", event(now.Format(time.RFC3339), vNear, 15), nil)
	o := v.pushAt(v.rep, now, mCreate("m-2nd", "visit_logs", "vl-second", second))[0]
	wantRejection(t, "second check-in", o, fieldsales.CodeVisitInProgress, "/doc/check_in")
	if !strings.Contains(o.Error.Message, "vl-clock") {
		t.Errorf("visit_in_progress does not name the open visit: %q", o.Error.Message)
	}

	// Checked out 5 minutes ago, by a clock that is right again.
	rawOut := now.Add(-5 * time.Minute)
	wantApplied(t, "check-out", v.pushAt(v.rep, now, mUpdate("m-clk-out", "visit_logs", "vl-clock", 1,
		map[string]any{"check_out": event(rawOut.Format(time.RFC3339), vNear, 15)}))...)
	d := v.doc(v.rep, "visit_logs", "vl-clock")
	// The check-in's offset is the push's: server receive time - device
	// time = +3 h (rounded to the second); the check-out's is 0.
	if off, _ := d["clock_offset_s"].(float64); math.Abs(off-10800) > 1 || d["check_out_clock_offset_s"] != 0.0 {
		t.Errorf("offsets: check-in %v, check-out %v; want 10800 and 0", d["clock_offset_s"], d["check_out_clock_offset_s"])
	}
	if ci := d["check_in"].(map[string]any); ci["at"] != rawIn.Format(time.RFC3339) {
		t.Errorf("the device's check-in time was changed: %v", ci["at"])
	}
	corrected, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(d["check_in_at"]))
	if corrected.Sub(now.Add(-30*time.Minute)).Abs() > 2*time.Second {
		t.Errorf("check_in_at %v, want %v", d["check_in_at"], now.Add(-30*time.Minute).UTC())
	}
	// 25 minutes on corrected times, not 3 h 25 min on the device's.
	if dur, _ := d["duration_s"].(float64); math.Abs(dur-1500) > 2 {
		t.Errorf("duration_s %v, want 1500", d["duration_s"])
	}

	// Now a new visit may start; the second of two in one batch may not.
	outs := v.pushAt(v.rep, now,
		mCreate("m-3rd", "visit_logs", "vl-third", second),
		mCreate("m-4th", "visit_logs", "vl-fourth", second))
	wantApplied(t, "check-in after the check-out", outs[0])
	wantRejection(t, "second check-in of one batch", outs[1], fieldsales.CodeVisitInProgress, "/doc/check_in")
	wantApplied(t, "close", v.pushAt(v.rep, now, mUpdate("m-3rd-out", "visit_logs", "vl-third", 1,
		map[string]any{"check_out": event(now.Format(time.RFC3339), vNear, 15)}))...)

	// A push without device_time is accepted as before; a malformed one
	// is refused whole.
	st, raw := doRaw(t, "POST", v.Server.URL+"/v1/sync/push", v.rep, []byte(`{"device_id":"phone","device_time":"yesterday","mutations":[]}`))
	if st != 400 || !strings.Contains(string(raw), `"pointer":"/device_time"`) {
		t.Errorf("bad device_time: %d %s", st, raw)
	}
}

// review: the rep's manager reviews, the rep sees it on the next pull; the
// rep may not, nor may another team's manager.
func (v *visitWorld) review(t *testing.T) {
	_, cp, _ := v.Drain(v.rep, "")
	review := map[string]any{"review": map[string]any{"status": "flagged", "comment": "GPS far from site: call me"}}
	wantRejection(t, "the rep's own review", v.pushAt(v.rep, time.Time{}, mUpdate("m-rv-rep", "visit_logs", "vl-far", 1, review))[0],
		engine.CodeFieldNotWritable, "/fields/review")
	wantRejection(t, "another team's manager", v.pushAt(v.mgrU, time.Time{}, mUpdate("m-rv-u", "visit_logs", "vl-far", 1, review))[0],
		engine.CodeForbidden, "/id")
	wantApplied(t, "the manager's review", v.pushAt(v.mgr, time.Time{}, mUpdate("m-rv", "visit_logs", "vl-far", 1, review))...)
	changes, _, _ := v.Drain(v.rep, cp)
	c, ok := changes["visit_logs/vl-far"]
	if !ok || len(changes) != 1 {
		t.Fatalf("the rep's next pull: %v, want only the reviewed visit", changes)
	}
	var d struct {
		Review map[string]any `json:"review"`
	}
	json.Unmarshal(c.Doc, &d)
	if d.Review["status"] != "flagged" || d.Review["by"] != "mgr" || d.Review["comment"] != "GPS far from site: call me" || d.Review["at"] == nil {
		t.Errorf("review as the rep sees it: %v", d.Review)
	}

	// rep-b's visit at the shared customer: mgr sees it (through rep-v)
	// but does not lead rep-b, so may not review it; rep-b's manager may.
	bTok := v.Token(vOrg, "rep-b", "rep")
	wantApplied(t, "rep-b's visit", v.pushAt(bTok, time.Time{}, mCreate("m-vs", "visit_logs", "vl-shared",
		visitLog("cS", event("2026-11-21T09:00:00+05:30", [2]float64{}, 0), event("2026-11-21T09:30:00+05:30", [2]float64{}, 0))))...)
	v.doc(v.mgr, "visit_logs", "vl-shared")
	approve := map[string]any{"review": map[string]any{"status": "approved"}}
	wantRejection(t, "review by a manager who sees but does not lead", v.pushAt(v.mgr, time.Time{},
		mUpdate("m-rv-s", "visit_logs", "vl-shared", 1, approve))[0], engine.CodeFieldNotWritable, "/fields/review")
	wantApplied(t, "review by rep-b's manager", v.pushAt(v.mgrU, time.Time{}, mUpdate("m-rv-s", "visit_logs", "vl-shared", 1, approve))...)
}

// plans: a manager assigns a visit to a rep of their team; nobody else
// assigns.
func (v *visitWorld) plans(t *testing.T) {
	plan := func(rep string) map[string]any {
		p := map[string]any{"customer_id": "c1", "planned_start": "2026-12-01T10:00:00+05:30", "status": "planned"}
		if rep != "" {
			p["rep_id"] = rep
		}
		return p
	}
	wantApplied(t, "assign to rep-v", v.pushAt(v.mgr, time.Time{}, mCreate("m-p1", "visit_plans", "vp-assigned", plan("rep-v")))...)
	d := v.doc(v.rep, "visit_plans", "vp-assigned")
	if d["assigned_by"] != "mgr" || d["rep_id"] != "rep-v" {
		t.Errorf("assigned plan as rep-v sees it: %v", d)
	}
	bTok := v.Token(vOrg, "rep-b", "rep")
	for _, c := range []struct {
		who, tok, rep, customer, code, ptr string
	}{
		{"rep-v for rep-a", v.rep, "rep-a", "c1", fieldsales.CodeCannotAssign, "/doc/rep_id"},
		{"mgr for rep-b (team U)", v.mgr, "rep-b", "c1", fieldsales.CodeCannotAssign, "/doc/rep_id"},
		{"mgr for rep-a on c2 (not rep-a's)", v.mgr, "rep-a", "c2", fieldsales.CodeCustomerNotInScope, "/doc/rep_id"},
		{"rep-b for rep-b on c1", bTok, "rep-b", "c1", fieldsales.CodeCustomerNotInScope, "/doc/customer_id"},
	} {
		p := plan(c.rep)
		p["customer_id"] = c.customer
		wantRejection(t, c.who, v.pushAt(c.tok, time.Time{}, mCreate("m-vp-"+c.rep+"-"+c.customer, "visit_plans", "vp-x", p))[0], c.code, c.ptr)
	}
	wantRejection(t, "changing rep_id", v.pushAt(v.mgr, time.Time{}, mUpdate("m-p1-move", "visit_plans", "vp-assigned", 1,
		map[string]any{"rep_id": "rep-a"}))[0], engine.CodeImmutableField, "/fields/rep_id")
}

// kpis: a fixture day of rep-a worked out by hand, and who may ask.
func (v *visitWorld) kpis(t *testing.T) {
	aTok := v.Token(vOrg, "rep-a", "rep")
	lv := func(id, in, out string, pos [2]float64, plan, outcome string) map[string]any {
		d := visitLog("c1", event(in, pos, 10), event(out, pos, 10))
		if plan != "" {
			d["visit_plan_id"] = plan
		}
		if outcome != "" {
			d["outcome"] = outcome
		}
		return mCreate("m-"+id, "visit_logs", id, d)
	}
	pl := func(id, start, status string) map[string]any {
		return mCreate("m-"+id, "visit_plans", id, map[string]any{"customer_id": "c1", "planned_start": start, "status": status})
	}
	// Tuesday 2026-11-24 in Kolkata (device times carry +05:30):
	//   09:00-09:45 verified (45 min), plan p1, outcome order
	//   11:00-11:30 verified (30 min)
	//   13:00-13:20 out of range (1 km): not face time, inside the span
	//   14:00-14:10 no GPS: not face time
	//   16:00-17:00 verified (60 min), plan p2
	// visits 5, verified 3, face time 45+30+60 = 135 min = 8100 s,
	// span 09:00-17:00 = 480 min = 28800 s, face time 8100/28800 = 28.125 %.
	// Plans that day: p1 (visited), p2 (visited), p3 (assigned by mgr, not
	// visited), p4 (cancelled: not counted): planned 3, visited 2.
	// Productive calls: 1 (outcome order).
	// Wednesday 2026-11-25 00:30-01:00 in Kolkata is 2026-11-24 19:00-19:30
	// UTC: it belongs to the 25th. One verified visit of 30 min: 1800/1800
	// = 100 %.
	// Period 24-25: visits 6 over 2 days = 3/day, face 9900 s of 30600 s
	// = 32.353 %.
	// Outside the period: 2026-11-23 23:00 Kolkata (17:30 UTC, same UTC day
	// as a visit on the 24th in UTC terms) is not counted.
	muts := []map[string]any{
		lv("k1", "2026-11-24T09:00:00+05:30", "2026-11-24T09:45:00+05:30", vNear, "p1", "order"),
		lv("k2", "2026-11-24T11:00:00+05:30", "2026-11-24T11:30:00+05:30", vNear, "", "info"),
		lv("k3", "2026-11-24T13:00:00+05:30", "2026-11-24T13:20:00+05:30", vFar, "", ""),
		lv("k4", "2026-11-24T14:00:00+05:30", "2026-11-24T14:10:00+05:30", [2]float64{}, "", ""),
		lv("k5", "2026-11-24T16:00:00+05:30", "2026-11-24T17:00:00+05:30", vSite, "p2", ""),
		lv("k6", "2026-11-25T00:30:00+05:30", "2026-11-25T01:00:00+05:30", vSite, "", ""),
		lv("k0", "2026-11-23T23:00:00+05:30", "2026-11-23T23:30:00+05:30", vSite, "", ""),
		pl("p1", "2026-11-24T09:00:00+05:30", "planned"),
		pl("p2", "2026-11-24T16:00:00+05:30", "planned"),
		pl("p4", "2026-11-24T12:00:00+05:30", "cancelled"),
	}
	wantApplied(t, "rep-a's day", v.pushAt(aTok, time.Time{}, muts...)...)
	p3 := map[string]any{"customer_id": "c1", "planned_start": "2026-11-24T15:00:00+05:30", "status": "planned", "rep_id": "rep-a"}
	wantApplied(t, "p3 assigned by mgr", v.pushAt(v.mgr, time.Time{}, mCreate("m-p3", "visit_plans", "p3", p3))...)
	// The visits that name p1 and p2 marked them done; p3 and p4 are as
	// they were.
	for id, want := range map[string]string{"p1": "done", "p2": "done", "p3": "planned", "p4": "cancelled"} {
		if got := v.doc(aTok, "visit_plans", id)["status"]; got != want {
			t.Errorf("plan %s: status %v, want %s", id, got, want)
		}
	}

	type figures struct {
		Visits          int      `json:"visits"`
		VerifiedVisits  int      `json:"verified_visits"`
		DaysWorked      int      `json:"days_worked"`
		VisitsPerDay    float64  `json:"visits_per_day"`
		FaceTimeS       int64    `json:"face_time_s"`
		SpanS           int64    `json:"span_s"`
		FaceTimePct     *float64 `json:"face_time_pct"`
		Planned         int      `json:"planned"`
		PlannedVisited  int      `json:"planned_visited"`
		ProductiveCalls int      `json:"productive_calls"`
		Orders          int      `json:"orders"`
	}
	type report struct {
		TimeZone string `json:"time_zone"`
		Reps     []struct {
			Rep  string
			Days []struct {
				Date string
				figures
			}
			Period figures
		}
		Total figures
	}
	get := func(tok, query string, want int) (report, []byte) {
		t.Helper()
		st, raw := doRaw(t, "GET", v.Server.URL+"/v1/kpis?"+query, tok, nil)
		if st != want {
			t.Fatalf("GET /v1/kpis?%s: %d %s, want %d", query, st, raw, want)
		}
		var r report
		if st == 200 {
			dec := json.NewDecoder(strings.NewReader(string(raw)))
			if err := dec.Decode(&r); err != nil {
				t.Fatal(err)
			}
		}
		return r, raw
	}
	q := url.Values{"rep": {"rep-a"}, "from": {"2026-11-24"}, "to": {"2026-11-25"}}.Encode()
	pct := func(f float64) *float64 { return &f }
	check := func(what string, got figures, want figures) {
		t.Helper()
		gp, wp := "null", "null"
		if got.FaceTimePct != nil {
			gp = fmt.Sprint(*got.FaceTimePct)
		}
		if want.FaceTimePct != nil {
			wp = fmt.Sprint(*want.FaceTimePct)
		}
		got.FaceTimePct, want.FaceTimePct = nil, nil
		if got != want || gp != wp {
			t.Errorf("%s: got %+v (face time %s %%), want %+v (%s %%)", what, got, gp, want, wp)
		}
	}
	for _, who := range []struct{ name, tok string }{{"mgr", v.mgr}, {"admin", v.Operator(vOrg)}, {"rep-a", aTok}} {
		r, raw := get(who.tok, q, 200)
		if r.TimeZone != "Asia/Kolkata" || len(r.Reps) != 1 || len(r.Reps[0].Days) != 2 {
			t.Fatalf("%s: report %s", who.name, raw)
		}
		d24, d25 := r.Reps[0].Days[0], r.Reps[0].Days[1]
		if d24.Date != "2026-11-24" || d25.Date != "2026-11-25" {
			t.Fatalf("%s: days %s, %s", who.name, d24.Date, d25.Date)
		}
		check(who.name+" 2026-11-24", d24.figures, figures{Visits: 5, VerifiedVisits: 3, DaysWorked: 1, VisitsPerDay: 5,
			FaceTimeS: 8100, SpanS: 28800, FaceTimePct: pct(28.125), Planned: 3, PlannedVisited: 2, ProductiveCalls: 1})
		check(who.name+" 2026-11-25", d25.figures, figures{Visits: 1, VerifiedVisits: 1, DaysWorked: 1, VisitsPerDay: 1,
			FaceTimeS: 1800, SpanS: 1800, FaceTimePct: pct(100)})
		check(who.name+" period", r.Reps[0].Period, figures{Visits: 6, VerifiedVisits: 4, DaysWorked: 2, VisitsPerDay: 3,
			FaceTimeS: 9900, SpanS: 30600, FaceTimePct: pct(32.353), Planned: 3, PlannedVisited: 2, ProductiveCalls: 1})
	}
	// The team report holds rep-a and rep-v (whose flagged visits of the
	// 20th are outside the period).
	r, raw := get(v.mgr, url.Values{"team": {"T"}, "from": {"2026-11-24"}, "to": {"2026-11-25"}}.Encode(), 200)
	if len(r.Reps) != 2 || r.Reps[0].Rep != "rep-a" || r.Reps[1].Rep != "rep-v" || r.Total.Visits != 6 || r.Total.FaceTimeS != 9900 {
		t.Errorf("team T: %s", raw)
	}

	// Who may ask: not another team's manager, not another rep, not a rep
	// for a team; bad queries get a code and a pointer; another
	// organisation's reps and teams answer like unknown ones.
	other := v.Token("org-w", "adm-w", "admin")
	type errorReply struct {
		Error struct{ Code, Message, Pointer string }
	}
	unknown := func(tok, query string) string {
		_, raw := get(tok, query, 404)
		var e errorReply
		json.Unmarshal(raw, &e)
		return fmt.Sprintf("%+v", e.Error)
	}
	for _, c := range []struct {
		name, tok, query string
		status           int
		code, pointer    string
	}{
		{"another team's manager", v.mgrU, q, 403, "forbidden", "/rep"},
		{"another rep", v.rep, q, 403, "forbidden", "/rep"},
		{"a rep for a team", aTok, "team=T&from=2026-11-24&to=2026-11-25", 403, "forbidden", "/team"},
		{"a team not led", v.mgrU, "team=T&from=2026-11-24&to=2026-11-25", 403, "forbidden", "/team"},
		{"neither rep nor team", v.mgr, "from=2026-11-24&to=2026-11-25", 400, "invalid_request", "/rep"},
		{"bad from", v.mgr, "rep=rep-a&from=24.11.2026&to=2026-11-25", 400, "invalid_request", "/from"},
		{"to before from", v.mgr, "rep=rep-a&from=2026-11-25&to=2026-11-24", 400, "invalid_request", "/to"},
		{"93 days", v.mgr, "rep=rep-a&from=2026-09-01&to=2026-12-02", 400, "invalid_request", "/to"},
		{"no token", "", q, 401, "unauthenticated", ""},
	} {
		st, raw := doRaw(t, "GET", v.Server.URL+"/v1/kpis?"+c.query, c.tok, nil)
		var e errorReply
		json.Unmarshal(raw, &e)
		if st != c.status || e.Error.Code != c.code || e.Error.Pointer != c.pointer {
			t.Errorf("%s: %d %s, want %d %s at %q", c.name, st, raw, c.status, c.code, c.pointer)
		}
	}
	if a, b := unknown(other, q), unknown(other, "rep=nobody&from=2026-11-24&to=2026-11-25"); a != strings.ReplaceAll(b, "nobody", "rep-a") {
		t.Errorf("another organisation's rep: %s; an unknown one: %s", a, b)
	}
	if a, b := unknown(other, "team=T&from=2026-11-24&to=2026-11-25"), unknown(other, "team=none&from=2026-11-24&to=2026-11-25"); a != strings.ReplaceAll(b, "none", "T") {
		t.Errorf("another organisation's team: %s; an unknown one: %s", a, b)
	}
}
