package workflow

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// builtin knows the roles every organisation has.
var builtin = (&identity.Org{}).KnownRole

func TestDefaultMatrixIsValid(t *testing.T) {
	t.Parallel()
	m, err := Parse(DefaultMatrix(), builtin)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"availability_check", "erp_entry", "dispatch", "delivery", "invoice", "price_approval",
		"credit_release", "delivery_status_query"} {
		if m.Activity(id) == nil {
			t.Errorf("default matrix lacks %s", id)
		}
	}
	if a := m.Activity("delivery_status_query"); a.Responsible != "order_desk" || a.Trigger.On != OnRaised {
		t.Errorf("delivery_status_query: %+v", a)
	}
}

// mutate returns the default matrix with change applied to its decoded form.
func mutate(t *testing.T, change func(m map[string]any, acts []any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(DefaultMatrix(), &m); err != nil {
		t.Fatal(err)
	}
	change(m, m["activities"].([]any))
	b, _ := json.Marshal(m)
	return b
}

func act(acts []any, i int) map[string]any { return acts[i].(map[string]any) }

func TestMatrixValidation(t *testing.T) {
	t.Parallel()
	// Index of erp_entry and availability_check in the default matrix.
	const avail, erp = 2, 3
	cases := []struct {
		name    string
		change  func(m map[string]any, acts []any)
		pointer string
	}{
		{"unknown responsible role", func(_ map[string]any, a []any) { act(a, erp)["responsible"] = "order_dsek" }, "/activities/3/responsible"},
		{"unknown informed role", func(_ map[string]any, a []any) { act(a, erp)["informed"] = []any{"rep", "ghost"} }, "/activities/3/informed/1"},
		{"rep responsible", func(_ map[string]any, a []any) { act(a, erp)["responsible"] = "rep" }, "/activities/3/responsible"},
		{"missing SLA", func(_ map[string]any, a []any) { delete(act(a, erp), "sla") }, "/activities/3/sla"},
		{"bad SLA", func(_ map[string]any, a []any) { act(a, erp)["sla"] = "-2h" }, "/activities/3/sla"},
		{"unknown dependency", func(_ map[string]any, a []any) { act(a, erp)["depends_on"] = []any{"availabilty_check"} }, "/activities/3/depends_on/0"},
		{"cycle", func(_ map[string]any, a []any) { act(a, avail)["depends_on"] = []any{"invoice"} }, "/activities/3/depends_on/0"},
		{"duplicate id", func(_ map[string]any, a []any) { act(a, erp)["id"] = "availability_check" }, "/activities/3/id"},
		{"unknown field", func(_ map[string]any, a []any) { act(a, erp)["resposible"] = "x" }, ""},
		{"bad trigger", func(_ map[string]any, a []any) {
			act(a, erp)["trigger"] = map[string]any{"on": "order_status", "status": "draft"}
		}, "/activities/3/trigger/status"},
		{"bad copy", func(_ map[string]any, a []any) { act(a, erp)["on_done"].(map[string]any)["copy"] = []any{"total"} }, "/activities/3/on_done/copy/0"},
		{"discount limit", func(m map[string]any, _ []any) { m["policy"] = map[string]any{"discount_limit_pct": 120} }, "/policy/discount_limit_pct"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse(mutate(t, c.change), builtin)
			var e *engine.Error
			if err == nil || !asError(err, &e) || e.Code != CodeInvalidMatrix || e.Pointer != c.pointer || e.Kind != engine.KindInvalid {
				t.Fatalf("got %v, want %s at %q", err, CodeInvalidMatrix, c.pointer)
			}
		})
	}
	// A role the organisation added is known.
	raw := mutate(t, func(_ map[string]any, a []any) { act(a, erp)["responsible"] = "inside_sales" })
	if _, err := Parse(raw, (&identity.Org{Roles: []string{"inside_sales"}}).KnownRole); err != nil {
		t.Fatalf("organisation role: %v", err)
	}
}

func asError(err error, target **engine.Error) bool { return errors.As(err, target) }
