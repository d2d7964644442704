package fieldsales_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/schemas"
	"github.com/fieldsync/fieldsync/sqlite"
	"github.com/fieldsync/fieldsync/sync/engine"
)

var rules = fieldsales.New(fieldsales.VisitRules{})

func body(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// The keys of docs/access.md, computed from the document and its customer.
func TestKeys(t *testing.T) {
	t.Parallel()
	customer := &engine.Document{Collection: fieldsales.CollCustomers, ID: "c-1",
		Scopes: []string{"cust:c-1", "ix:customers", "org", "role:order_desk", "user:rep-1", "user:rep-2"}}
	for _, tc := range []struct {
		name string
		k    engine.Keying
		want []string
	}{
		{"a customer: its reps, its own key, the admin list",
			engine.Keying{Collection: "customers", ID: "c-1", Body: body(t, `{"name":"A","assigned_reps":["rep-1"]}`)},
			[]string{"cust:c-1", "ix:customers", "org", "user:rep-1"}},
		{"a note follows its customer's reps, not its author",
			engine.Keying{Collection: "customer_notes", ID: "n-1", Owner: "rep-9", Body: body(t, `{"customer_id":"c-1","text":"x"}`), Parent: customer},
			[]string{"cust:c-1", "org", "user:rep-1", "user:rep-2"}},
		{"a note on a missing customer: nobody's but the admins'",
			engine.Keying{Collection: "customer_notes", ID: "n-1", Owner: "rep-9", Body: body(t, `{"customer_id":"c-9","text":"x"}`)},
			[]string{"cust:c-9", "org"}},
		{"a document without a customer is its owner's",
			engine.Keying{Collection: "visit_plans", ID: "p-1", Owner: "rep-1", Body: body(t, `{"planned_start":"2026-12-01T09:00:00Z"}`)},
			[]string{"ix:kpi:rep-1:2026-12", "org", "user:rep-1"}},
		{"reference data is public",
			engine.Keying{Collection: "products", ID: "p-1", Body: body(t, `{"sku":"X"}`)},
			[]string{"pub"}},
		{"a routed follow-up: its role, informed roles, the sweep's index; not the rep role",
			engine.Keying{Collection: "follow_ups", ID: "f-1", Owner: "fieldsync", Parent: customer, Body: body(t,
				`{"customer_id":"c-1","order_id":"o-1","status":"open","responsible_role":"order_desk","informed_roles":["rep","billing"],"accountable_role":"sales_ops"}`)},
			[]string{"cust:c-1", "ix:fu-unescalated", "org", "role:billing", "role:order_desk", "user:rep-1", "user:rep-2"}},
		{"an escalated follow-up: its accountable role reads it, the sweep is done with it",
			engine.Keying{Collection: "follow_ups", ID: "f-1", Owner: "fieldsync", Parent: customer, Body: body(t,
				`{"customer_id":"c-1","status":"open","responsible_role":"order_desk","accountable_role":"sales_ops","escalated_at":"2026-12-01T09:00:00Z"}`)},
			[]string{"cust:c-1", "org", "role:order_desk", "role:sales_ops", "user:rep-1", "user:rep-2"}},
		{"an order keeps the role keys granted to it; unsettled past draft",
			engine.Keying{Collection: "orders", ID: "o-1", Owner: "rep-1", Parent: customer, Prev: []string{"role:credit", "user:old"},
				Body: body(t, `{"customer_id":"c-1","status":"submitted","submitted_at":"2026-11-30T10:00:00Z"}`)},
			[]string{"cust:c-1", "ix:kpi:rep-1:2026-11", "ix:order-unsettled", "org", "role:credit", "user:rep-1", "user:rep-2"}},
		{"a device's update recomputes only what the document's own fields decide",
			engine.Keying{Collection: "orders", ID: "o-1", Owner: "rep-1", Own: true, Prev: []string{"cust:c-1", "org", "user:rep-1"},
				Body: body(t, `{"customer_id":"c-1","status":"submitted","submitted_at":"2026-11-30T10:00:00Z"}`)},
			[]string{"cust:c-1", "ix:kpi:rep-1:2026-11", "ix:order-unsettled", "org", "user:rep-1"}},
	} {
		if got := rules.Keys(tc.k); !slices.Equal(got, tc.want) {
			t.Errorf("%s:\n got %v\nwant %v", tc.name, got, tc.want)
		}
	}
}

func TestReadSet(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		roles, reports, want []string
	}{
		{[]string{"rep"}, nil, []string{"pub", "user:u"}},
		{[]string{"manager"}, []string{"r1", "r2"}, []string{"pub", "role:manager", "user:r1", "user:r2", "user:u"}},
		{[]string{"admin"}, nil, []string{"org", "pub", "user:u"}},
		{[]string{"order_desk", "billing"}, nil, []string{"pub", "role:billing", "role:order_desk", "user:u"}},
	} {
		if got := rules.ReadSet(engine.Actor{User: "u", Roles: tc.roles}, tc.reports); !slices.Equal(got, tc.want) {
			t.Errorf("ReadSet(%v, %v) = %v, want %v", tc.roles, tc.reports, got, tc.want)
		}
	}
}

// A customer passes its reps on; a reassignment changes what it passes on,
// which moves its history.
func TestParentAndInherited(t *testing.T) {
	t.Parallel()
	p, ok := rules.Parent("orders", body(t, `{"customer_id":"c-1"}`))
	if !ok || p != (engine.DocRef{Collection: "customers", ID: "c-1"}) {
		t.Errorf("Parent(order) = %v %v", p, ok)
	}
	if _, ok := rules.Parent("customers", body(t, `{"customer_id":"c-1"}`)); ok {
		t.Error("a customer hangs off nothing")
	}
	if _, ok := rules.Parent("products", body(t, `{"customer_id":"c-1"}`)); ok {
		t.Error("reference data hangs off nothing")
	}
	if got := rules.ChildKey(p); got != "cust:c-1" {
		t.Errorf("ChildKey = %q", got)
	}
	c := &engine.Document{Collection: "customers", ID: "c-1", Scopes: []string{"cust:c-1", "org", "role:x", "user:a", "user:b"}}
	if got := rules.Inherited(c); !slices.Equal(got, []string{"user:a", "user:b"}) {
		t.Errorf("Inherited = %v", got)
	}
	c.Deleted = true
	if got := rules.Inherited(c); got != nil {
		t.Errorf("a deleted customer passes on %v", got)
	}
	if !rules.Recheck("customers", map[string]json.RawMessage{"assigned_reps": []byte(`[]`)}) ||
		rules.Recheck("customers", map[string]json.RawMessage{"name": []byte(`"x"`)}) ||
		rules.Recheck("orders", map[string]json.RawMessage{"assigned_reps": []byte(`[]`)}) {
		t.Error("Recheck: only a customer's assigned_reps")
	}
}

func TestGrants(t *testing.T) {
	t.Parallel()
	fu := &engine.Document{Collection: "follow_ups", ID: "f-1"}
	got := rules.Grants(fu, body(t, `{"order_id":"o-1","customer_id":"c-1","responsible_role":"credit","accountable_role":"ops","escalated_at":"2026-12-01T00:00:00Z"}`))
	want := map[engine.DocRef][]string{
		{Collection: "orders", ID: "o-1"}:    {"role:credit", "role:ops"},
		{Collection: "customers", ID: "c-1"}: {"role:credit"},
	}
	if len(got) != len(want) {
		t.Fatalf("Grants = %v, want %v", got, want)
	}
	for ref, keys := range want {
		if !slices.Equal(got[ref], keys) {
			t.Errorf("Grants[%v] = %v, want %v", ref, got[ref], keys)
		}
	}
	if g := rules.Grants(&engine.Document{Collection: "orders"}, body(t, `{"responsible_role":"credit","order_id":"o"}`)); g != nil {
		t.Errorf("an order grants %v", g)
	}
}

// The write rules that need no stored state, each with its code and field.
func TestCheck(t *testing.T) {
	t.Parallel()
	rep := engine.Actor{Org: "o", User: "rep-1", Roles: []string{"rep"}}
	clerk := engine.Actor{Org: "o", User: "clerk", Roles: []string{"order_desk"}}
	create := func(coll, id, doc string) *engine.Mutation {
		return &engine.Mutation{ID: "m", Collection: coll, DocID: id, Op: engine.OpCreate, Doc: json.RawMessage(doc)}
	}
	for _, tc := range []struct {
		name          string
		actor         engine.Actor
		m             *engine.Mutation
		body, fields  map[string]any
		code, pointer string
	}{
		{"a rep takes an id the matrix will give", rep, create("follow_ups", "fu-o-1-price_approval", `{}`),
			body(t, `{"customer_id":"c-1","activity":"query"}`), nil, fieldsales.CodeReservedID, "/id"},
		{"a rep sets a server field", rep, create("orders", "o-1", `{}`),
			body(t, `{"customer_id":"c-1","status":"draft","erp_number":"E-1"}`), nil, engine.CodeServerField, "/doc/erp_number"},
		{"a rep creates a confirmed order", rep, create("orders", "o-1", `{}`),
			body(t, `{"customer_id":"c-1","status":"confirmed"}`), nil, engine.CodeServerField, "/doc/status"},
		{"a rep moves a customer's site", rep, &engine.Mutation{ID: "m", Collection: "customers", DocID: "c-1", Op: engine.OpUpdate},
			nil, body(t, `{"location":{"lat":1,"lng":2}}`), engine.CodeFieldNotWritable, "/fields/location"},
		{"an order changes customers", rep, &engine.Mutation{ID: "m", Collection: "orders", DocID: "o-1", Op: engine.OpUpdate},
			nil, body(t, `{"customer_id":"c-2"}`), engine.CodeImmutableField, "/fields/customer_id"},
		{"the back office creates an order", clerk, create("orders", "o-1", `{}`),
			body(t, `{"customer_id":"c-1","status":"draft"}`), nil, engine.CodeForbidden, "/id"},
		{"a rep writes a note", rep, create("customer_notes", "n-1", `{}`),
			body(t, `{"customer_id":"c-1","text":"x"}`), nil, "", ""},
	} {
		err := rules.Check(tc.actor, tc.m, tc.body, tc.fields)
		var e *engine.Error
		switch {
		case tc.code == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.code == "":
		case !asError(err, &e) || e.Code != tc.code || e.Pointer != tc.pointer:
			t.Errorf("%s: %v, want %s at %s", tc.name, err, tc.code, tc.pointer)
		}
	}
}

func asError(err error, e **engine.Error) bool {
	x, ok := err.(*engine.Error)
	*e = x
	return ok
}

// pushCounter counts the store's writes.
type pushCounter struct {
	engine.Store
	pushes atomic.Int64
}

func (c *pushCounter) Push(ctx context.Context, b engine.PushBatch, d engine.Decide) ([]engine.Outcome, error) {
	c.pushes.Add(1)
	return c.Store.Push(ctx, b, d)
}

// A visit log of the plan's rep at the plan's customer marks the plan done,
// in the push's one write; a plan no visit names stays planned. The
// check-in is verified against the customer's site, its time corrected by
// the device clock's offset.
func TestVisitMarksPlanDone(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "fs.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sch, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	pc := &pushCounter{Store: st}
	device := time.Date(2026, 12, 1, 9, 5, 0, 0, time.UTC) // the server's clock when the visits are pushed
	eng, err := engine.New(ctx, engine.Config{Store: pc, Schemas: sch, Rules: rules, Now: func() time.Time { return device }})
	if err != nil {
		t.Fatal(err)
	}
	admin := engine.Actor{Org: "o", User: "boss", Roles: []string{"admin"}}
	rep := engine.Actor{Org: "o", User: "rep-1", Roles: []string{"rep"}}
	if _, err := eng.Upsert(ctx, admin, "test", []engine.UpsertDoc{
		{Collection: "customers", ID: "c-1", Fields: raw(t, `{"name":"A","assigned_reps":["rep-1"],"location":{"lat":48.1,"lng":11.5}}`)},
		{Collection: "customers", ID: "c-2", Fields: raw(t, `{"name":"B","assigned_reps":["rep-1"]}`)},
	}); err != nil {
		t.Fatal(err)
	}
	mut := func(id, coll, doc string) engine.Mutation {
		return engine.Mutation{ID: "m-" + id, Collection: coll, DocID: id, Op: engine.OpCreate, Doc: json.RawMessage(doc)}
	}
	outs, err := eng.Push(ctx, rep, engine.PushRequest{DeviceID: "d", Mutations: []engine.Mutation{
		mut("p-1", "visit_plans", `{"customer_id":"c-1","planned_start":"2026-12-01T09:00:00Z"}`),
		mut("p-2", "visit_plans", `{"customer_id":"c-2","planned_start":"2026-12-01T11:00:00Z"}`),
	}})
	if err != nil || outs[0].Status != engine.StatusApplied || outs[1].Status != engine.StatusApplied {
		t.Fatalf("plans: %v %+v", err, outs)
	}
	before := pc.pushes.Load()
	outs, err = eng.Push(ctx, rep, engine.PushRequest{DeviceID: "d", DeviceTime: device.Add(-10 * time.Minute).Format(time.RFC3339),
		Mutations: []engine.Mutation{
			mut("v-1", "visit_logs", `{"customer_id":"c-1","visit_plan_id":"p-1","check_in":{"at":"2026-12-01T08:55:00Z","lat":48.1001,"lng":11.5001,"accuracy_m":10},"check_out":{"at":"2026-12-01T09:25:00Z"}}`),
		}})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range outs {
		if o.Status != engine.StatusApplied {
			t.Fatalf("visit: %+v", o)
		}
	}
	if n := pc.pushes.Load() - before; n != 1 {
		t.Errorf("the visits and the plan they fulfil took %d store writes, want 1", n)
	}
	got, err := st.Get(ctx, "o", []engine.DocRef{{Collection: "visit_plans", ID: "p-1"}, {Collection: "visit_plans", ID: "p-2"},
		{Collection: "visit_logs", ID: "v-1"}})
	if err != nil {
		t.Fatal(err)
	}
	status := func(id string) string {
		var b struct{ Status string }
		json.Unmarshal(got[engine.DocRef{Collection: "visit_plans", ID: id}].Body, &b)
		return b.Status
	}
	if s := status("p-1"); s != "done" {
		t.Errorf("p-1 is %q after its visit, want done", s)
	}
	if s := status("p-2"); s != "" && s != "planned" {
		t.Errorf("p-2 (no visit names it) is %q, want planned", s)
	}
	var v struct {
		CheckInAt    string `json:"check_in_at"`
		Offset       int    `json:"clock_offset_s"`
		Duration     int    `json:"duration_s"`
		Verification struct {
			Status    string `json:"status"`
			DistanceM int    `json:"distance_m"`
		} `json:"verification"`
	}
	json.Unmarshal(got[engine.DocRef{Collection: "visit_logs", ID: "v-1"}].Body, &v)
	// The device's clock ran 10 minutes behind the server's: its times
	// move 10 minutes on.
	if v.CheckInAt != "2026-12-01T09:05:00.000Z" || v.Offset != 600 || v.Duration != 1800 {
		t.Errorf("corrected times = %+v", v)
	}
	if v.Verification.Status != fieldsales.VisitVerified || v.Verification.DistanceM > 20 {
		t.Errorf("verification = %+v, want verified within 20 m", v.Verification)
	}
}

func raw(t *testing.T, s string) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}
