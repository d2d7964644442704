package workflow_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// TestOrderMoneyIsExact routes orders whose totals binary floating point gets
// wrong (1.005 rounds down, 1250.5 x 9.85 lands below the half cent) and
// discounts exactly at and just over the rep's limit (10 % by default).
func TestOrderMoneyIsExact(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	for id, price := range map[string]string{"p-a": "1.005", "p-b": "2.345", "p-c": "9.85", "p-d": "3.00"} {
		r.upsert(t, fieldsales.CollProducts, id, map[string]any{"sku": id, "name": id, "list_price": price})
	}
	rep := engine.Actor{Org: org, User: "rep-1", Roles: []string{"rep"}}
	cases := []struct {
		id       string
		currency string
		lines    []map[string]any
		status   string
		totals   []string
		total    string
	}{
		{"o-float", "EUR", []map[string]any{
			{"product_id": "p-a", "quantity": 1},
			{"product_id": "p-b", "quantity": 1},
			{"product_id": "p-c", "quantity": 1250.5}},
			"submitted", []string{"1.01", "2.35", "12317.43"}, "12320.79"},
		// 1 - 2.70/3.00 is 0.09999999999999998 in float64: exactly 10 %.
		{"o-at-limit", "EUR", []map[string]any{{"product_id": "p-d", "quantity": 7, "unit_price": "2.70"}},
			"submitted", []string{"18.90"}, "18.90"},
		{"o-discount", "EUR", []map[string]any{{"product_id": "p-1", "quantity": 3, "discount_pct": 10}},
			"submitted", []string{"270.00"}, "270.00"},
		{"o-over-limit", "EUR", []map[string]any{{"product_id": "p-1", "quantity": 1, "discount_pct": 10.01}},
			"price_approval", nil, ""},
		{"o-yen", "JPY", []map[string]any{{"product_id": "p-1", "quantity": 0.335}},
			"submitted", []string{"34"}, "34"},
	}
	for _, c := range cases {
		doc, _ := json.Marshal(map[string]any{"customer_id": "c-1", "status": "submitted", "currency": c.currency, "lines": c.lines})
		outs, err := r.eng.Push(t.Context(), rep, engine.PushRequest{DeviceID: "phone",
			Mutations: []engine.Mutation{{ID: "m-" + c.id, Collection: "orders", DocID: c.id, Op: engine.OpCreate, Doc: doc}}})
		if err != nil || outs[0].Status != engine.StatusApplied {
			t.Fatalf("%s: %v %+v", c.id, err, outs)
		}
		_, o := r.doc(t, "orders", c.id)
		got, _ := json.Marshal(o["line_totals"])
		want, _ := json.Marshal(c.totals)
		if c.totals == nil {
			want = []byte("null")
		}
		if o["status"] != c.status || string(got) != string(want) || (c.total != "" && o["total"] != c.total) || (c.total == "" && o["total"] != nil) {
			t.Errorf("%s: status %v, line_totals %s, total %v; want %s, %s, %q", c.id, o["status"], got, o["total"], c.status, want, c.total)
		}
	}
}

// TestOrderMoneyFormatIsEnforced: a price as a JSON number, or a quantity or
// discount finer than the protocol allows, is refused at the push with the
// field's pointer, and nothing is stored.
func TestOrderMoneyFormatIsEnforced(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	rep := engine.Actor{Org: org, User: "rep-1", Roles: []string{"rep"}}
	i := 0
	for _, c := range []struct {
		line    map[string]any
		pointer string
	}{
		{map[string]any{"product_id": "p-1", "quantity": 1, "unit_price": 12.5}, "/doc/lines/0/unit_price"},
		{map[string]any{"product_id": "p-1", "quantity": 1, "unit_price": "12,50"}, "/doc/lines/0/unit_price"},
		{map[string]any{"product_id": "p-1", "quantity": 1, "unit_price": "0.00001"}, "/doc/lines/0/unit_price"},
		{map[string]any{"product_id": "p-1", "quantity": 1.0001}, "/doc/lines/0/quantity"},
		{map[string]any{"product_id": "p-1", "quantity": 1, "discount_pct": 0.125}, "/doc/lines/0/discount_pct"},
	} {
		i++
		doc, _ := json.Marshal(map[string]any{"customer_id": "c-1", "status": "submitted", "lines": []any{c.line}})
		outs, err := r.eng.Push(t.Context(), rep, engine.PushRequest{DeviceID: "phone",
			Mutations: []engine.Mutation{{ID: fmt.Sprint("m-", i), Collection: "orders", DocID: "o-bad", Op: engine.OpCreate, Doc: doc}}})
		if err != nil || outs[0].Status != engine.StatusRejected || outs[0].Error == nil || outs[0].Error.Pointer != c.pointer {
			t.Errorf("%v: %v %+v, want rejected at %s", c.line, err, *outs[0].Error, c.pointer)
			continue
		}
		if outs[0].Error.Code == "" || outs[0].Error.Message == "" {
			t.Errorf("%v: no code or message: %+v", c.line, outs[0].Error)
		}
	}
	ref := engine.DocRef{Collection: "orders", ID: "o-bad"}
	if got, err := r.store.Get(t.Context(), org, []engine.DocRef{ref}); err != nil || got[ref] != nil {
		t.Fatalf("a refused order was stored: %v %v", got[ref], err)
	}
}
