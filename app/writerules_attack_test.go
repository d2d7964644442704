package app_test

// The write-rule attacks of issue 10, replayed over HTTP on both stores with
// the workflow on: each must be refused with its documented code and change
// nothing.

import (
	"encoding/json"
	"testing"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
)

func TestWriteRuleAttacks(t *testing.T) {
	t.Parallel()
	for _, s := range wfStores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			testWriteRuleAttacks(t, s.store)
		})
	}
}

func testWriteRuleAttacks(t *testing.T, store accStore) {
	w := newWFWorld(t, store)
	rep := w.as("rep-1")
	// A submitted order: the matrix routes it to the back office.
	order := orderLines(0)
	order["status"] = "submitted"
	w.MustApply(rep, "phone-1", []map[string]any{mCreate("m-o1", "orders", "o-1", order)})
	fus := w.followUpsOf("o-1")
	if len(fus) == 0 {
		t.Fatal("the submitted order has no follow-ups: the attacks below would prove nothing")
	}
	var routed string
	for id := range fus {
		routed = id
		break
	}
	// The rep raises a query of their own (allowed), to attack it later.
	w.MustApply(rep, "phone-1", []map[string]any{mCreate("m-q1", "follow_ups", "q-1",
		map[string]any{"customer_id": "c-1", "activity": "delivery_status_query", "description": "where is it?"})})
	before, _, _ := w.Drain(w.Operator("acme"), "")

	attacks := []struct {
		name          string
		tok           string
		mut           map[string]any
		code, pointer string
	}{
		{"a follow-up in the server's id space", rep, mCreate("a1", "follow_ups", "fu-o-2-price_approval",
			map[string]any{"customer_id": "c-1", "activity": "delivery_status_query"}), fieldsales.CodeReservedID, "/id"},
		{"delete the back office's follow-up", rep, mDelete("a2", "follow_ups", routed, fus[routed].Version), engine.CodeForbidden, "/id"},
		{"reword the back office's follow-up", rep, mUpdate("a3", "follow_ups", routed, fus[routed].Version,
			map[string]any{"description": "nothing to do"}), engine.CodeForbidden, "/id"},
		{"switch a query's activity to price approval", rep, mUpdate("a4", "follow_ups", "q-1", 1,
			map[string]any{"activity": "price_approval"}), engine.CodeImmutableField, "/fields/activity"},
		{"move a query to another order", rep, mUpdate("a5", "follow_ups", "q-1", 1,
			map[string]any{"order_id": "o-9"}), engine.CodeImmutableField, "/fields/order_id"},
		{"route a query itself", rep, mUpdate("a6", "follow_ups", "q-1", 1,
			map[string]any{"responsible_role": "stores"}), engine.CodeServerField, "/fields/responsible_role"},
		{"move the customer's site", rep, mUpdate("a7", "customers", "c-1", 1,
			map[string]any{"location": map[string]any{"lat": 19.07, "lng": 72.87}}), engine.CodeFieldNotWritable, "/fields/location"},
		{"delete a customer the admin set up", rep, mDelete("a8", "customers", "c-1", 1), engine.CodeForbidden, "/id"},
		{"delete a submitted order", rep, mDelete("a9", "orders", "o-1", 1), engine.CodeDocumentLocked, "/id"},
		{"assign a back-office user", w.as("mgr-1"), mUpdate("a10", "customers", "c-1", 1,
			map[string]any{"assigned_reps": []string{"rep-1", "od-1"}}), fieldsales.CodeUnknownRep, "/fields/assigned_reps/1"},
		{"assign a user who does not exist", w.as("mgr-1"), mUpdate("a11", "customers", "c-1", 1,
			map[string]any{"assigned_reps": []string{"ghost"}}), fieldsales.CodeUnknownRep, "/fields/assigned_reps/0"},
		{"a follow-up on an order that does not exist", rep, mCreate("a12", "follow_ups", "q-2",
			map[string]any{"customer_id": "c-1", "order_id": "o-nowhere", "activity": "delivery_status_query"}), fieldsales.CodeInvalidReference, "/doc/order_id"},
	}
	for _, a := range attacks {
		o := w.Push(a.tok, "phone-1", []map[string]any{a.mut})[0]
		if o.Status != engine.StatusRejected || o.Error == nil || o.Error.Code != a.code || o.Error.Pointer != a.pointer {
			got, _ := json.Marshal(o)
			t.Errorf("%s: %s, want rejected %s at %s", a.name, got, a.code, a.pointer)
		}
	}
	after, _, _ := w.Drain(w.Operator("acme"), "")
	for k, c := range after {
		if b, ok := before[k]; !ok || b.Version != c.Version {
			t.Errorf("%s changed under refused attacks (v%d -> v%d)", k, b.Version, c.Version)
		}
	}
	if len(after) != len(before) {
		t.Errorf("refused attacks changed the document count: %d -> %d", len(before), len(after))
	}
}
