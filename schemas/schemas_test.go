package schemas

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// loaded is shared by the tests: a Set is immutable after Load.
var loaded = sync.OnceValues(Load)

func mustLoad(t testing.TB) *Set {
	t.Helper()
	s, err := loaded()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return s
}

// decode parses a document the way the engine does: numbers as json.Number.
func decode(t testing.TB, src string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(src))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", src, err)
	}
	return m
}

// Realistic valid documents, one per collection, as a device (or, with server
// fields, the server) would store them.
const (
	validCustomer = `{
		"name": "Rheinland Pumpen GmbH", "code": "100482", "segment": "OEM",
		"contacts": [
			{"name": "Petra Kühn", "role": "Head of purchasing", "phone": "+49 211 555 0142", "email": "p.kuehn@rheinland-pumpen.de"},
			{"name": "Jens Albers", "role": "Maintenance"}
		],
		"address": {"line1": "Industriestraße 12", "city": "Düsseldorf", "postcode": "40231", "country": "DE"},
		"location": {"lat": 51.2101, "lng": 6.8433},
		"assigned_reps": ["u-rep-17", "u-rep-23"],
		"credit_status": "ok",
		"notes": "Buys IE3 motors for their pump sets; annual framework in January."
	}`
	validVisitPlan = `{
		"customer_id": "c-42", "planned_start": "2026-12-01T09:00:00+01:00", "planned_end": "2026-12-01T10:30:00+01:00",
		"purpose": "Quarterly review, switchgear retrofit quote", "status": "planned", "assigned_by": "u-mgr-3"
	}`
	validVisitLog = `{
		"customer_id": "c-42", "visit_plan_id": "vp-01JD6Q5T3V",
		"check_in": {"at": "2026-12-01T09:04:12Z", "lat": 51.2102, "lng": 6.8431, "accuracy_m": 12.5},
		"check_out": {"at": "2026-12-01T10:11:40Z", "lat": 51.2103, "lng": 6.8430, "accuracy_m": 8},
		"outcome": "order", "notes": "Ordered 40 motors, wants delivery in March.",
		"check_in_at": "2026-12-01T09:04:14.000Z", "check_out_at": "2026-12-01T10:11:42.000Z",
		"duration_s": 4048, "verification": {"status": "verified", "distance_m": 12}, "clock_offset_s": 2,
		"check_out_clock_offset_s": 2,
		"review": {"status": "approved", "comment": "Good visit", "by": "u-mgr-3", "at": "2026-12-02T08:00:00Z"}
	}`
	validOrder = `{
		"customer_id": "c-42",
		"lines": [
			{"product_id": "MOT-IE3-7.5KW-4P", "quantity": 40, "unit_price": "612.50", "discount_pct": 12},
			{"product_id": "CBL-NYY-J-4X16", "quantity": 1250.5, "unit_price": "9.85"},
			{"product_id": "SWG-MCC-400A", "quantity": 2}
		],
		"currency": "EUR", "requested_delivery": "2027-03-15", "notes": "Deliver to gate 3, forklift on site.",
		"status": "submitted", "erp_number": "4500012345", "total": "34239.43", "status_reason": "",
		"submitted_at": "2026-12-01T10:15:00Z", "confirmed_at": "2026-12-01T14:02:00Z"
	}`
	validNote = `{
		"customer_id": "c-42", "text": "Competitor offered 8% lower on cables; decision in two weeks.",
		"created_at": "2026-11-29T09:12:00Z", "tags": ["competitor", "pricing"], "visit_log_id": "vl-01JD6Q5T3V"
	}`
	validFollowUp = `{
		"customer_id": "c-42", "order_id": "o-01JD6Q5T3V", "activity": "delivery_status_query",
		"description": "Customer asks when the 40 motors ship."
	}`
	validFollowUpServer = `{
		"customer_id": "c-42", "order_id": "o-01JD6Q5T3V", "activity": "delivery_status_query",
		"description": "Customer asks when the 40 motors ship.",
		"status": "blocked", "responsible_role": "order_desk", "assigned_to": "u-od-5",
		"due_at": "2026-12-02T12:00:00Z", "blocked_reason": "waiting for the factory's date",
		"result": {"eta": "2027-03-10"}, "matrix_version": "7", "closed_at": "2026-12-05T16:00:00Z"
	}`
)

// with returns the valid document src with the top-level fields of patch
// replaced (a JSON null in patch deletes the field).
func with(t testing.TB, src, patch string) string {
	t.Helper()
	doc := decode(t, src)
	for k, v := range decode(t, patch) {
		if v == nil {
			delete(doc, k)
		} else {
			doc[k] = v
		}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestValidate(t *testing.T) {
	t.Parallel()
	s := mustLoad(t)
	const valid = "<valid>"
	cases := []struct {
		name, coll, doc string
		want            string // pointer, or valid
	}{
		// customers
		{"customer valid", "customers", validCustomer, valid},
		{"customer minimal", "customers", `{"name": "Prospect AG"}`, valid},
		{"customer missing name", "customers", with(t, validCustomer, `{"name": null}`), "/name"},
		{"customer empty name", "customers", with(t, validCustomer, `{"name": ""}`), "/name"},
		{"customer contact bad email", "customers", with(t, validCustomer, `{"contacts": [{"name": "A"}, {"name": "B", "email": "not-an-email"}]}`), "/contacts/1/email"},
		{"customer contact missing name", "customers", with(t, validCustomer, `{"contacts": [{"role": "buyer"}]}`), "/contacts/0/name"},
		{"customer contact extra field", "customers", with(t, validCustomer, `{"contacts": [{"name": "A", "mobile": "+49"}]}`), "/contacts/0/mobile"},
		{"customer lat out of range", "customers", with(t, validCustomer, `{"location": {"lat": 91, "lng": 6.8}}`), "/location/lat"},
		{"customer lng out of range", "customers", with(t, validCustomer, `{"location": {"lat": 51, "lng": -180.5}}`), "/location/lng"},
		{"customer location missing lng", "customers", with(t, validCustomer, `{"location": {"lat": 51}}`), "/location/lng"},
		{"customer location as string", "customers", with(t, validCustomer, `{"location": "51.2,6.8"}`), "/location"},
		{"customer duplicate rep", "customers", with(t, validCustomer, `{"assigned_reps": ["u-1", "u-1"]}`), "/assigned_reps"},
		{"customer rep not a string", "customers", with(t, validCustomer, `{"assigned_reps": ["u-1", 7]}`), "/assigned_reps/1"},
		{"customer bad credit status", "customers", with(t, validCustomer, `{"credit_status": "frozen"}`), "/credit_status"},
		{"customer typo field", "customers", with(t, validCustomer, `{"nmae": "x"}`), "/nmae"},
		{"customer envelope id in body", "customers", with(t, validCustomer, `{"id": "c-42"}`), "/id"},
		{"customer pointer escaping", "customers", with(t, validCustomer, `{"a/b~c": 1}`), "/a~1b~0c"},
		{"customer notes too long", "customers", with(t, validCustomer, fmt.Sprintf(`{"notes": %q}`, strings.Repeat("n", 10001))), "/notes"},

		// visit_plans
		{"plan valid", "visit_plans", validVisitPlan, valid},
		{"plan missing customer", "visit_plans", with(t, validVisitPlan, `{"customer_id": null}`), "/customer_id"},
		{"plan missing start", "visit_plans", with(t, validVisitPlan, `{"planned_start": null}`), "/planned_start"},
		{"plan start without T", "visit_plans", with(t, validVisitPlan, `{"planned_start": "2026-12-01 09:00:00Z"}`), "/planned_start"},
		{"plan end without zone", "visit_plans", with(t, validVisitPlan, `{"planned_end": "2026-12-01T10:30:00"}`), "/planned_end"},
		{"plan bad status", "visit_plans", with(t, validVisitPlan, `{"status": "postponed"}`), "/status"},
		{"plan empty customer id", "visit_plans", with(t, validVisitPlan, `{"customer_id": ""}`), "/customer_id"},
		{"plan id too long", "visit_plans", with(t, validVisitPlan, fmt.Sprintf(`{"customer_id": %q}`, strings.Repeat("c", 129))), "/customer_id"},

		// visit_logs
		{"log valid", "visit_logs", validVisitLog, valid},
		{"log device create", "visit_logs", `{"customer_id": "c-42", "check_in": {"at": "2026-12-01T09:04:12.345+01:00"}}`, valid},
		{"log missing check_in", "visit_logs", with(t, validVisitLog, `{"check_in": null}`), "/check_in"},
		{"log check_in missing at", "visit_logs", with(t, validVisitLog, `{"check_in": {"lat": 51.2, "lng": 6.8}}`), "/check_in/at"},
		{"log check_in bad time", "visit_logs", with(t, validVisitLog, `{"check_in": {"at": "yesterday 9am"}}`), "/check_in/at"},
		{"log check_out bad month", "visit_logs", with(t, validVisitLog, `{"check_out": {"at": "2026-13-01T10:00:00Z"}}`), "/check_out/at"},
		{"log negative accuracy", "visit_logs", with(t, validVisitLog, `{"check_in": {"at": "2026-12-01T09:04:12Z", "accuracy_m": -5}}`), "/check_in/accuracy_m"},
		{"log lat as string", "visit_logs", with(t, validVisitLog, `{"check_out": {"at": "2026-12-01T10:11:40Z", "lat": "51.2"}}`), "/check_out/lat"},
		{"log check_in extra", "visit_logs", with(t, validVisitLog, `{"check_in": {"at": "2026-12-01T09:04:12Z", "alt": 40}}`), "/check_in/alt"},
		{"log bad outcome", "visit_logs", with(t, validVisitLog, `{"outcome": "great"}`), "/outcome"},
		{"log fractional duration", "visit_logs", with(t, validVisitLog, `{"duration_s": 12.5}`), "/duration_s"},
		{"log bad review status", "visit_logs", with(t, validVisitLog, `{"review": {"status": "maybe"}}`), "/review/status"},
		{"log bad review time", "visit_logs", with(t, validVisitLog, `{"review": {"status": "flagged", "at": "2026-12-02"}}`), "/review/at"},
		{"log bad verification status", "visit_logs", with(t, validVisitLog, `{"verification": {"status": "maybe"}}`), "/verification/status"},
		{"log fractional offset", "visit_logs", with(t, validVisitLog, `{"clock_offset_s": 1.5}`), "/clock_offset_s"},

		// orders
		{"order valid", "orders", validOrder, valid},
		{"order draft without lines", "orders", `{"customer_id": "c-42", "status": "draft"}`, valid},
		{"order missing customer", "orders", with(t, validOrder, `{"customer_id": null}`), "/customer_id"},
		{"order negative quantity", "orders", with(t, validOrder, `{"lines": [{"product_id": "P1", "quantity": -1}]}`), "/lines/0/quantity"},
		{"order zero quantity", "orders", with(t, validOrder, `{"lines": [{"product_id": "P1", "quantity": 1}, {"product_id": "P2", "quantity": 0}]}`), "/lines/1/quantity"},
		{"order string quantity", "orders", with(t, validOrder, `{"lines": [{"product_id": "P1", "quantity": 2}, {"product_id": "P2", "quantity": "x"}]}`), "/lines/1/quantity"},
		{"order tiny negative quantity", "orders", with(t, validOrder, `{"lines": [{"product_id": "P1", "quantity": -0.000000000000000000000001}]}`), "/lines/0/quantity"},
		{"order smallest quantity", "orders", with(t, validOrder, `{"lines": [{"product_id": "P1", "quantity": 0.001}]}`), valid},
		{"order quantity too fine", "orders", with(t, validOrder, `{"lines": [{"product_id": "P1", "quantity": 0.000000000000000000000001}]}`), "/lines/0/quantity"},
		{"order price as a number", "orders", with(t, validOrder, `{"lines": [{"product_id": "P1", "quantity": 1, "unit_price": 9.85}]}`), "/lines/0/unit_price"},
		{"order price with a comma", "orders", with(t, validOrder, `{"lines": [{"product_id": "P1", "quantity": 1, "unit_price": "9,85"}]}`), "/lines/0/unit_price"},
		{"product price as a number", "products", `{"sku": "S", "name": "N", "list_price": 100}`, "/list_price"},
		{"price list price as a number", "price_lists", `{"name": "N", "currency": "EUR", "prices": {"p": 1.5}}`, "/prices/p"},
		{"order line missing product", "orders", with(t, validOrder, `{"lines": [{"quantity": 3}]}`), "/lines/0/product_id"},
		{"order line extra field", "orders", with(t, validOrder, `{"lines": [{"product_id": "P1", "quantity": 3, "qty": 3}]}`), "/lines/0/qty"},
		{"order discount over 100", "orders", with(t, validOrder, `{"lines": [{"product_id": "P1", "quantity": 3, "discount_pct": 101}]}`), "/lines/0/discount_pct"},
		{"order negative price", "orders", with(t, validOrder, `{"lines": [{"product_id": "P1", "quantity": 3, "unit_price": -0.01}]}`), "/lines/0/unit_price"},
		{"order empty lines", "orders", with(t, validOrder, `{"lines": []}`), "/lines"},
		{"order lines not an array", "orders", with(t, validOrder, `{"lines": {"product_id": "P1"}}`), "/lines"},
		{"order lowercase currency", "orders", with(t, validOrder, `{"currency": "eur"}`), "/currency"},
		{"order impossible date", "orders", with(t, validOrder, `{"requested_delivery": "2027-02-30"}`), "/requested_delivery"},
		{"order date-time as date", "orders", with(t, validOrder, `{"requested_delivery": "2027-03-15T00:00:00Z"}`), "/requested_delivery"},
		{"order unknown status", "orders", with(t, validOrder, `{"status": "shipped"}`), "/status"},
		{"order server status", "orders", with(t, validOrder, `{"status": "part_delivered"}`), valid},
		{"order negative total", "orders", with(t, validOrder, `{"total": -1}`), "/total"},
		{"order bad submitted_at", "orders", with(t, validOrder, `{"submitted_at": "2026-12-01T25:00:00Z"}`), "/submitted_at"},
		{"order typo field", "orders", with(t, validOrder, `{"lnes": []}`), "/lnes"},

		// customer_notes
		{"note valid", "customer_notes", validNote, valid},
		{"note protocol example", "customer_notes", `{"customer_id": "c-42", "text": "Wants 40 motors in March", "created_at": "2026-11-29T09:12:00Z"}`, valid},
		{"note missing text", "customer_notes", with(t, validNote, `{"text": null}`), "/text"},
		{"note missing customer", "customer_notes", with(t, validNote, `{"customer_id": null}`), "/customer_id"},
		{"note empty text", "customer_notes", with(t, validNote, `{"text": ""}`), "/text"},
		{"note text 10000 chars", "customer_notes", with(t, validNote, fmt.Sprintf(`{"text": %q}`, strings.Repeat("ä", 10000))), valid},
		{"note text 10001 chars", "customer_notes", with(t, validNote, fmt.Sprintf(`{"text": %q}`, strings.Repeat("ä", 10001))), "/text"},
		{"note text is a number", "customer_notes", with(t, validNote, `{"text": 42}`), "/text"},
		{"note bad created_at", "customer_notes", with(t, validNote, `{"created_at": "29.11.2026 09:12"}`), "/created_at"},
		{"note tag not a string", "customer_notes", with(t, validNote, `{"tags": ["pricing", 5]}`), "/tags/1"},
		{"note extra field", "customer_notes", with(t, validNote, `{"author": "u-1"}`), "/author"},

		// follow_ups
		{"follow-up valid", "follow_ups", validFollowUp, valid},
		{"follow-up with server fields", "follow_ups", validFollowUpServer, valid},
		{"follow-up missing activity", "follow_ups", with(t, validFollowUp, `{"activity": null}`), "/activity"},
		{"follow-up empty activity", "follow_ups", with(t, validFollowUp, `{"activity": ""}`), "/activity"},
		{"follow-up bad status", "follow_ups", with(t, validFollowUpServer, `{"status": "archived"}`), "/status"},
		{"follow-up bad due_at", "follow_ups", with(t, validFollowUpServer, `{"due_at": "tomorrow"}`), "/due_at"},
		{"follow-up order id as number", "follow_ups", with(t, validFollowUp, `{"order_id": 1234}`), "/order_id"},
		{"follow-up extra field", "follow_ups", with(t, validFollowUp, `{"priority": "high"}`), "/priority"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := s.Validate(tc.coll, decode(t, tc.doc))
			if tc.want == valid {
				if v != nil {
					t.Fatalf("want valid, got %+v", *v)
				}
				return
			}
			if v == nil {
				t.Fatalf("want a violation at %q, got valid", tc.want)
			}
			if v.Pointer != tc.want {
				t.Errorf("pointer = %q (%s), want %q", v.Pointer, v.Message, tc.want)
			}
			if v.Message == "" || strings.Contains(v.Message, "\n") {
				t.Errorf("message %q should be one non-empty line", v.Message)
			}
		})
	}
}

func TestValidateMessages(t *testing.T) {
	t.Parallel()
	s := mustLoad(t)
	cases := []struct {
		coll, doc, wantPtr, wantMsg string
	}{
		{"orders", `{"lines": [{"product_id": "P", "quantity": 1}]}`, "/customer_id", `missing required property "customer_id"`},
		{"orders", `{"customer_id": "c", "lnes": []}`, "/lnes", `property "lnes" is not allowed`},
		{"orders", `{"customer_id": "c", "lines": [{"product_id": "P", "quantity": -1}]}`, "/lines/0/quantity", "must be greater than 0, got -1"},
		{"orders", `{"customer_id": "c", "lines": [{"product_id": "P", "quantity": "x"}]}`, "/lines/0/quantity", "must be of type number, got string"},
		{"customer_notes", `{"customer_id": "c", "text": "t", "created_at": "2026-11-29"}`, "/created_at", "date-time"},
		{"customer_notes", `{"customer_id": "c", "text": ""}`, "/text", "must not be empty"},
		{"customers", `{"name": "n", "notes": "` + strings.Repeat("x", 10001) + `"}`, "/notes", "must be at most 10000 characters long, got 10001"},
		{"orders", `{"customer_id": "c", "lines": [{"product_id": "P", "quantity": -0.000000000000000000000001}]}`, "/lines/0/quantity", "must be greater than 0, got -1e-24"},
		{"orders", `{"customer_id": "c", "lines": [{"product_id": "P", "quantity": 1, "discount_pct": 100.5}]}`, "/lines/0/discount_pct", "must be at most 100, got 100.5"},
		{"orders", `{"customer_id": "c", "status": "shipped"}`, "/status", "value must be one of 'draft'"},
		{"customer_notes", `{"customer_id": "c", "text": "t", "created_at": "` + strings.Repeat("ü", 5000) + `"}`, "/created_at", "…"},
	}
	for _, tc := range cases {
		v := s.Validate(tc.coll, decode(t, tc.doc))
		if v == nil || v.Pointer != tc.wantPtr || !strings.Contains(v.Message, tc.wantMsg) || len(v.Message) > maxMessage+len("…") || !utf8.ValidString(v.Message) {
			t.Errorf("%s %s: got %+v, want pointer %q and a message containing %q", tc.coll, tc.doc, v, tc.wantPtr, tc.wantMsg)
		}
	}
}

// With several failures the deepest wins, and the choice does not depend on
// the validator's map iteration order.
func TestValidateMostSpecificAndDeterministic(t *testing.T) {
	t.Parallel()
	s := mustLoad(t)
	cases := []struct {
		coll, doc, want string
	}{
		{"orders", `{"lnes": 1, "currency": "eur", "lines": [{"product_id": "P", "quantity": 1}, {"product_id": "Q", "quantity": -1}]}`, "/lines/1/quantity"},
		{"orders", `{"customer_id": "c", "zz": 1, "aa": 2, "mm": 3}`, "/aa"},
		{"visit_logs", `{"outcome": "order"}`, "/customer_id"}, // required lists customer_id first
		{"customers", `{"name": "n", "location": {"lat": 100, "lng": 200}, "contacts": [{"name": "x", "email": "bad"}]}`, "/contacts/0/email"},
	}
	for _, tc := range cases {
		for i := range 50 {
			v := s.Validate(tc.coll, decode(t, tc.doc))
			if v == nil || v.Pointer != tc.want {
				t.Fatalf("%s %s (run %d): got %+v, want pointer %q", tc.coll, tc.doc, i, v, tc.want)
			}
		}
	}
}

// Documents built in Go by the server (float64, int) validate like decoded ones.
func TestValidateGoNumbers(t *testing.T) {
	t.Parallel()
	s := mustLoad(t)
	doc := map[string]any{"customer_id": "c-1", "total": "12.50", "lines": []any{
		map[string]any{"product_id": "P", "quantity": int64(3), "discount_pct": 12.5},
	}}
	if v := s.Validate("orders", doc); v != nil {
		t.Fatalf("valid order with Go numbers: %+v", *v)
	}
	doc["lines"].([]any)[0].(map[string]any)["quantity"] = -2.5
	if v := s.Validate("orders", doc); v == nil || v.Pointer != "/lines/0/quantity" {
		t.Fatalf("got %+v, want /lines/0/quantity", v)
	}
	if v := s.Validate("visit_logs", map[string]any{"customer_id": "c", "check_in": map[string]any{"at": "2026-12-01T09:00:00Z"}, "duration_s": 60.0}); v != nil {
		t.Fatalf("integral float64 is an integer: %+v", *v)
	}
}

func TestValidateUnknownCollection(t *testing.T) {
	t.Parallel()
	s := mustLoad(t)
	if s.Has("invoices") || s.Has("") {
		t.Fatal("Has reports a collection that is not synced")
	}
	v := s.Validate("invoices", map[string]any{})
	if v == nil || !strings.Contains(v.Message, "invoices") {
		t.Fatalf("got %+v, want an unknown-collection violation", v)
	}
}

func TestCollections(t *testing.T) {
	t.Parallel()
	s := mustLoad(t)
	want := []string{"attachments", "customer_notes", "customers", "follow_ups", "orders", "price_lists", "products", "visit_logs", "visit_plans"}
	got := s.Collections()
	if !slices.Equal(got, want) {
		t.Fatalf("Collections = %v, want %v", got, want)
	}
	got[0] = "mutated"
	if s.Collections()[0] != want[0] {
		t.Fatal("Collections shares its slice with the caller")
	}
	for _, c := range want {
		if !s.Has(c) {
			t.Errorf("Has(%q) = false", c)
		}
	}
}

func TestRules(t *testing.T) {
	t.Parallel()
	s := mustLoad(t)
	serverOnly := map[string][]string{
		"customers":   {"credit_status"},
		"visit_plans": {"assigned_by"},
		"visit_logs":  {"check_in_at", "check_out_at", "duration_s", "verification", "clock_offset_s", "check_out_clock_offset_s"},
		"orders":      {"erp_number", "total", "status_reason", "submitted_at", "confirmed_at"},
		"follow_ups":  {"status", "responsible_role", "assigned_to", "due_at", "blocked_reason", "result", "matrix_version", "closed_at"},
	}
	for coll, fields := range serverOnly {
		rules := s.Rules(coll)
		for _, f := range fields {
			if !rules[f].ServerOnly {
				t.Errorf("%s.%s: ServerOnly = false", coll, f)
			}
		}
	}
	if r := s.Rules("orders")["status"]; r.ServerOnly || !slices.Equal(r.ClientValues, []string{"draft", "submitted", "cancelled"}) {
		t.Errorf("orders.status = %+v, want client values draft, submitted, cancelled", r)
	}
	if r := s.Rules("visit_logs")["review"]; r.ServerOnly || !slices.Equal(r.WritableBy, []string{"manager", "admin"}) {
		t.Errorf("visit_logs.review = %+v, want writable by managers and admins only", r)
	}
	for _, coll := range []string{"products", "price_lists"} {
		for f, r := range s.Rules(coll) {
			if !slices.Equal(r.WritableBy, []string{"admin"}) {
				t.Errorf("%s.%s = %+v, want writable by admin only", coll, f, r)
			}
		}
	}
	if r := s.Rules("visit_plans")["status"]; r.ServerOnly || !slices.Equal(r.ClientValues, []string{"planned", "cancelled"}) {
		t.Errorf("visit_plans.status = %+v, want client values planned, cancelled", r)
	}
	if r := s.Rules("customers")["assigned_reps"]; r.ServerOnly || !slices.Equal(r.WritableBy, []string{"admin", "manager"}) {
		t.Errorf("customers.assigned_reps = %+v, want writable by admin, manager", r)
	}
	// Fields a device writes freely carry no rule.
	for coll, field := range map[string]string{"customer_notes": "text", "orders": "lines", "visit_logs": "check_in", "customers": "name", "follow_ups": "activity"} {
		if r, ok := s.Rules(coll)[field]; ok {
			t.Errorf("%s.%s has rule %+v, want none", coll, field, r)
		}
	}
	if rules := s.Rules("customer_notes"); len(rules) != 0 {
		t.Errorf("customer_notes rules = %v, want none", rules)
	}
	if s.Rules("invoices") != nil {
		t.Error("Rules of an unknown collection should be nil")
	}
	// The caller owns the returned map.
	r := s.Rules("orders")
	r["status"].ClientValues[0] = "confirmed"
	delete(r, "total")
	if again := s.Rules("orders"); again["status"].ClientValues[0] != "draft" || !again["total"].ServerOnly {
		t.Error("Rules shares its map or slices with the caller")
	}
}

// Every server-owned rule matches an annotation in the served schema, so
// clients see the same rules the engine enforces.
func TestJSON(t *testing.T) {
	t.Parallel()
	s := mustLoad(t)
	var served struct {
		Version     int                       `json:"version"`
		Collections map[string]map[string]any `json:"collections"`
	}
	if err := json.Unmarshal(s.JSON(), &served); err != nil {
		t.Fatalf("JSON is not valid JSON: %v", err)
	}
	if served.Version != engine.ProtocolVersion {
		t.Errorf("version = %d, want %d", served.Version, engine.ProtocolVersion)
	}
	if got := slices.Sorted(func(yield func(string) bool) {
		for k := range served.Collections {
			if !yield(k) {
				return
			}
		}
	}); !slices.Equal(got, s.Collections()) {
		t.Fatalf("collections = %v, want %v", got, s.Collections())
	}
	for name, sch := range served.Collections {
		if sch["$schema"] != draft2020 || sch["$id"] != idBase+name+".json" || sch["type"] != "object" ||
			sch["additionalProperties"] != false || sch["title"] == "" || sch["description"] == "" {
			t.Errorf("%s: header %v %v %v %v", name, sch["$schema"], sch["$id"], sch["type"], sch["additionalProperties"])
		}
		props := sch["properties"].(map[string]any)
		for field, rule := range s.Rules(name) {
			p := props[field].(map[string]any)
			if rule.ServerOnly != (p["readOnly"] == true) {
				t.Errorf("%s.%s: served readOnly %v, rule %+v", name, field, p["readOnly"], rule)
			}
		}
	}
	if !strings.Contains(string(s.JSON()), `"x-fieldsync-client-values":["draft","submitted","cancelled"]`) {
		t.Error("served orders schema lacks its client values")
	}
	b := s.JSON()
	b[0] = 'X'
	if s.JSON()[0] != '{' {
		t.Error("JSON shares its bytes with the caller")
	}
}

// checkSchema guards the conventions the engine relies on.
func TestCheckSchemaRejects(t *testing.T) {
	t.Parallel()
	head := `"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "https://fieldsync.dev/schemas/v1/things.json",
		"title": "T", "description": "D", "type": "object"`
	cases := map[string]string{
		"nested annotation":    `{` + head + `, "additionalProperties": false, "properties": {"a": {"type": "object", "properties": {"b": {"readOnly": true}}}}}`,
		"nested x- annotation": `{` + head + `, "additionalProperties": false, "properties": {"a": {"type": "array", "items": {"x-fieldsync-writable-by": ["admin"]}}}}`,
		"misspelt annotation":  `{` + head + `, "additionalProperties": false, "properties": {"a": {"x-fieldsync-writeable-by": ["admin"]}}}`,
		"readOnly not a bool":  `{` + head + `, "additionalProperties": false, "properties": {"a": {"readOnly": "yes"}}}`,
		"client value not in enum": `{` + head + `, "additionalProperties": false, "properties": {"s": {"enum": ["a", "b"],
			"x-fieldsync-client-values": ["c"]}}}`,
		"open object":     `{` + head + `, "properties": {}}`,
		"wrong id":        strings.Replace(`{`+head+`, "additionalProperties": false}`, "things.json", "other.json", 1),
		"draft 7":         strings.Replace(`{`+head+`, "additionalProperties": false}`, "2020-12/schema", "draft-07/schema#", 1),
		"missing title":   strings.Replace(`{`+head+`, "additionalProperties": false}`, `"title": "T",`, "", 1),
		"not a JSON text": `{` + head,
	}
	for name, src := range cases {
		if _, err := checkSchema("things", []byte(src)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	ok := `{` + head + `, "additionalProperties": false, "properties": {"s": {"type": "string", "enum": ["a", "b"], "x-fieldsync-client-values": ["a"]},
		"r": {"readOnly": true}, "w": {"x-fieldsync-writable-by": ["admin"]}, "f": {"type": "string"}}}`
	rules, err := checkSchema("things", []byte(ok))
	if err != nil {
		t.Fatalf("valid schema rejected: %v", err)
	}
	want := map[string]engine.FieldRule{"s": {ClientValues: []string{"a"}}, "r": {ServerOnly: true}, "w": {WritableBy: []string{"admin"}}}
	if !reflect.DeepEqual(rules, want) {
		t.Errorf("rules = %+v, want %+v", rules, want)
	}
}

// Validate is called from many push handlers at once.
func TestValidateConcurrent(t *testing.T) {
	t.Parallel()
	s := mustLoad(t)
	good := decode(t, validOrder)
	bad := decode(t, with(t, validOrder, `{"lines": [{"product_id": "P1", "quantity": 1}, {"product_id": "P2", "quantity": "x"}]}`))
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for g := range 8 {
		wg.Go(func() {
			for i := range 300 {
				if (g+i)%2 == 0 {
					if v := s.Validate("orders", good); v != nil {
						errs <- fmt.Sprintf("valid order rejected: %+v", *v)
						return
					}
				} else if v := s.Validate("orders", bad); v == nil || v.Pointer != "/lines/1/quantity" {
					errs <- fmt.Sprintf("bad order: got %+v", v)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func BenchmarkValidate(b *testing.B) {
	s := mustLoad(b)
	cases := []struct{ name, coll, doc string }{
		{"order", "orders", validOrder},
		{"visit_log", "visit_logs", validVisitLog},
		{"customer", "customers", validCustomer},
		{"note", "customer_notes", validNote},
		{"order_invalid", "orders", with(b, validOrder, `{"lnes": 1, "lines": [{"product_id": "P", "quantity": -1}]}`)},
	}
	for _, bc := range cases {
		doc := decode(b, bc.doc)
		wantValid := !strings.HasSuffix(bc.name, "_invalid")
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if v := s.Validate(bc.coll, doc); (v == nil) != wantValid {
					b.Fatalf("unexpected result %+v", v)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "docs/s")
		})
	}
	b.Run("order_parallel", func(b *testing.B) {
		doc := decode(b, validOrder)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if v := s.Validate("orders", doc); v != nil {
					b.Errorf("unexpected violation %+v", *v)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "docs/s")
	})
}
