package app_test

// System tests of the field-sales workflow (docs/workflows.md) through the
// real server, on SQLite and on the MongoDB store (FerretDB): an order
// submitted offline and retried, its follow-ups worked through the API in
// and out of dependency order, the matrix replaced, and rep-raised
// follow-ups routed to the back office.

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/client"
	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/internal/patience"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// wfStores are the stores the system tests run on, each as a subtest:
// SQLite, and MongoDB on an in-process FerretDB.
var wfStores = []struct {
	name  string
	store accStore
}{{"sqlite", onSQLite}, {"mongodb", onMongoDB}}

// wfWorld is an organisation "acme" with a rep, one user per back-office
// role of the default matrix, a customer with a price list, and products.
type wfWorld struct {
	*accWorld
}

var wfStaff = map[string]string{ // user -> role
	"rep-1": "rep", "mgr-1": "manager", "od-1": "order_desk", "dp-1": "demand_planning", "st-1": "stores",
	"lg-1": "logistics", "bl-1": "billing", "cc-1": "credit_control",
}

func newWFWorld(t *testing.T, store accStore) *wfWorld {
	t.Helper()
	return newWFWorldOn(t, newAccWorld(t, store))
}

// newWFWorldOn sets the world up on a running server.
func newWFWorldOn(t *testing.T, aw *accWorld) *wfWorld {
	t.Helper()
	w := &wfWorld{aw}
	for _, u := range slices.Sorted(func(yield func(string) bool) {
		for u := range wfStaff {
			if !yield(u) {
				return
			}
		}
	}) {
		w.AddUser("acme", accUser{ID: u, Roles: []string{wfStaff[u]}})
	}
	w.docs("products", map[string]any{
		"p-1": map[string]any{"sku": "M-1", "name": "Motor 7.5 kW", "list_price": "100"},
		"p-2": map[string]any{"sku": "C-1", "name": "Cable NYY 5x16", "list_price": "50"},
	})
	w.docs("price_lists", map[string]any{"pl-1": map[string]any{"name": "OEM", "currency": "EUR",
		"prices": map[string]any{"p-1": "90", "p-2": "45"}}})
	w.docs("customers", map[string]any{
		"c-1": map[string]any{"name": "Pumpen AG", "assigned_reps": []string{"rep-1"}, "price_list_id": "pl-1"},
		"c-2": map[string]any{"name": "Slow Payer GmbH", "assigned_reps": []string{"rep-1"}, "credit_status": "blocked"},
	})
	return w
}

// docs writes reference documents through the admin API.
func (w *wfWorld) docs(coll string, byID map[string]any) {
	w.T.Helper()
	var docs []map[string]any
	for id, f := range byID {
		docs = append(docs, map[string]any{"id": id, "fields": f})
	}
	w.Admin("acme", "POST", "/documents/"+coll, map[string]any{"docs": docs}, 200)
}

// as is a token of a staff member (roles from the directory).
func (w *wfWorld) as(user string) string { return w.Token("acme", user, wfStaff[user]) }

// get reads a document as the operator (an admin sees the whole org).
func (w *wfWorld) get(coll, id string) (map[string]any, int64) {
	w.T.Helper()
	m, v, ok := w.lookup(coll, id)
	if !ok {
		w.T.Fatalf("%s/%s: not found", coll, id)
	}
	return m, v
}

// lookup is get without failing: a document whose change is still
// committing on the MongoDB store is briefly absent from a full pull.
func (w *wfWorld) lookup(coll, id string) (map[string]any, int64, bool) {
	w.T.Helper()
	all, _, _ := w.Drain(w.Operator("acme"), "")
	c, ok := all[coll+"/"+id]
	if !ok || c.Op != engine.ChangePut {
		return nil, 0, false
	}
	var m map[string]any
	json.Unmarshal(c.Doc, &m)
	return m, c.Version, true
}

// followUpsOf returns the order's follow-ups by id, with their versions.
func (w *wfWorld) followUpsOf(order string) map[string]accChange {
	w.T.Helper()
	all, _, _ := w.Drain(w.Operator("acme"), "")
	out := map[string]accChange{}
	for _, c := range all {
		var m map[string]any
		json.Unmarshal(c.Doc, &m)
		if c.Coll == fieldsales.CollFollowUps && m["order_id"] == order {
			out[c.ID] = c
		}
	}
	return out
}

// act calls a follow-up action and returns the status and the reply.
func (w *wfWorld) act(tok, id, action string, body any) (int, map[string]any) {
	w.T.Helper()
	var b []byte
	if body != nil {
		b = mustJSON(w.T, body)
	}
	st, raw := doRaw(w.T, "POST", w.Server.URL+"/v1/followups/"+id+"/"+action, tok, b)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		w.T.Fatalf("%s %s: %d %s", action, id, st, raw)
	}
	return st, m
}

// mustAct is an action that must succeed.
func (w *wfWorld) mustAct(tok, id, action string, body any) map[string]any {
	w.T.Helper()
	st, m := w.act(tok, id, action, body)
	if st != 200 {
		w.T.Fatalf("%s %s: %d %v", action, id, st, m)
	}
	var doc map[string]any
	raw, _ := json.Marshal(m["doc"])
	json.Unmarshal(raw, &doc)
	return doc
}

// errCode returns the error code and pointer of an error reply.
func errCode(m map[string]any) (string, string) {
	e, _ := m["error"].(map[string]any)
	c, _ := e["code"].(string)
	p, _ := e["pointer"].(string)
	return c, p
}

// submitOffline has rep-1's phone draft an order and submit it while
// offline, then push both with the reply lost three times (the server
// commits and runs the workflow each time), then once more with the reply
// arriving. It returns the fault counts.
func (w *wfWorld) submitOffline(t *testing.T, orderID string, order map[string]any) client.FaultCounts {
	t.Helper()
	ft := client.NewFaultTransport(nil, 1, 1, 0) // no signal: every request dropped
	c, err := client.New(client.Config{BaseURL: w.Server.URL, Token: client.StaticToken(w.as("rep-1")), DeviceID: "phone-1",
		HTTPClient: &http.Client{Transport: ft, Timeout: patience.Of(t)}, MaxRetries: 2, MutationIDPrefix: "phone-1",
		Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }})
	must(t, "client", err)
	order["status"] = "draft"
	must(t, "draft", c.Create("orders", orderID, order))
	if _, err := c.Sync(t.Context()); err == nil {
		t.Fatal("sync without signal succeeded")
	}
	must(t, "submit", c.Update("orders", orderID, map[string]any{"status": "submitted"}))
	ft.DropRequest, ft.LoseReply = 0, 1 // signal, but every reply is lost: 1 try + 2 retries
	if _, err := c.Sync(t.Context()); err == nil {
		t.Fatal("sync with every reply lost succeeded")
	}
	ft.LoseReply = 0
	if _, err := c.Sync(t.Context()); err != nil {
		t.Fatalf("sync after the faults: %v", err)
	}
	if c.Pending() != 0 {
		t.Fatalf("%d mutations still pending", c.Pending())
	}
	return ft.Counts()
}

// orderLines is one line of 2 x p-1 (90 on pl-1) at the given discount.
func orderLines(discount float64) map[string]any {
	return map[string]any{"customer_id": "c-1", "currency": "EUR",
		"lines": []map[string]any{{"product_id": "p-1", "quantity": 2, "discount_pct": discount}}}
}

var defaultChain = []string{"availability_check", "erp_entry", "dispatch", "delivery", "invoice"}

func TestWorkflowOrderLifecycle(t *testing.T) {
	t.Parallel()
	for _, st := range wfStores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			w := newWFWorld(t, st.store)
			faults := w.submitOffline(t, "o-1", orderLines(0))
			if faults.Lost != 3 {
				t.Fatalf("replies lost: %d, want 3 (%+v)", faults.Lost, faults)
			}
			order, _ := w.get("orders", "o-1")
			if order["status"] != "submitted" || order["submitted_at"] == nil || order["total"] != "180.00" || order["matrix_version"] != "0" {
				t.Fatalf("order after submit: %v", order)
			}
			// Exactly once: one follow-up per activity, each never rewritten.
			fus := w.followUpsOf("o-1")
			var ids []string
			for _, a := range defaultChain {
				ids = append(ids, "fu-o-1-"+a)
			}
			if got := accIDs(fus); !slices.Equal(got, slices.Sorted(slices.Values(ids))) {
				t.Fatalf("follow-ups %v, want %v", got, ids)
			}
			for id, c := range fus {
				var m map[string]any
				json.Unmarshal(c.Doc, &m)
				// A follow-up that waits for others has no due time yet: its
				// SLA runs from when they are done.
				waits := len(toStrings(m["depends_on"])) > 0
				if c.Version != 1 || m["status"] != "open" || m["matrix_version"] != "0" || m["rep_id"] != "rep-1" ||
					(m["due_at"] == nil) != waits || m["created_at"] == nil {
					t.Fatalf("%s: version %d %v", id, c.Version, m)
				}
			}
			erp, _ := w.get("follow_ups", "fu-o-1-erp_entry")
			if erp["responsible_role"] != "order_desk" || !slices.Equal(toStrings(erp["depends_on"]), []string{"fu-o-1-availability_check"}) {
				t.Fatalf("erp_entry: %v", erp)
			}

			// Out of dependency order: refused, nothing changes.
			st, reply := w.act(w.as("od-1"), "fu-o-1-erp_entry", "complete", map[string]any{"note": "entered", "result": map[string]any{"erp_number": "4500001"}})
			if code, ptr := errCode(reply); st != 409 || code != "dependency_open" || ptr != "/depends_on/0" {
				t.Fatalf("erp_entry before availability: %d %v", st, reply)
			}
			if _, v := w.get("follow_ups", "fu-o-1-erp_entry"); v != 1 {
				t.Fatalf("refused completion changed the follow-up: version %d", v)
			}
			if o, _ := w.get("orders", "o-1"); o["status"] != "submitted" {
				t.Fatalf("refused completion moved the order: %v", o["status"])
			}

			// The submitted order is the back office's to work from: the
			// phone may no longer change its lines, only cancel it.
			_, ov := w.get("orders", "o-1")
			if out := w.Push(w.as("rep-1"), "phone-1", []map[string]any{mUpdate("m-late-edit", "orders", "o-1", ov,
				map[string]any{"lines": []map[string]any{{"product_id": "p-1", "quantity": 200}}})}); out[0].Status != engine.StatusRejected ||
				out[0].Error.Code != "document_locked" || out[0].Error.Pointer != "/fields/lines" {
				t.Fatalf("editing a submitted order's lines: %+v", out[0])
			}
			if o, v := w.get("orders", "o-1"); v != ov || o["total"] != "180.00" {
				t.Fatalf("a refused edit changed the order: version %d -> %d, %v", ov, v, o)
			}

			// Who may act: the rep sees the follow-up but is not responsible;
			// billing does not see the dispatch task at all.
			if st, reply := w.act(w.as("rep-1"), "fu-o-1-availability_check", "claim", nil); st != 403 {
				t.Fatalf("rep claims: %d %v", st, reply)
			}
			if st, reply := w.act(w.as("bl-1"), "fu-o-1-dispatch", "claim", nil); st != 404 {
				t.Fatalf("billing claims dispatch: %d %v", st, reply)
			}

			// The queue of the order desk holds erp_entry; billing's is not
			// the order desk's to read.
			var page struct {
				FollowUps []struct {
					ID string `json:"id"`
				} `json:"follow_ups"`
			}
			if s := do(t, "GET", w.Server.URL+"/v1/followups?role=order_desk&status=open", w.as("od-1"), nil, &page); s != 200 ||
				len(page.FollowUps) != 1 || page.FollowUps[0].ID != "fu-o-1-erp_entry" {
				t.Fatalf("order desk queue: %d %+v", s, page)
			}
			if s, raw := doRaw(t, "GET", w.Server.URL+"/v1/followups?role=billing", w.as("od-1"), nil); s != 403 {
				t.Fatalf("order desk reads billing's queue: %d %s", s, raw)
			}
			// Without a role: the caller's own queues; erp_entry waits on the
			// availability check.
			var mine struct {
				FollowUps []struct {
					ID         string   `json:"id"`
					Actionable bool     `json:"actionable"`
					WaitingOn  []string `json:"waiting_on"`
				} `json:"follow_ups"`
			}
			if s := do(t, "GET", w.Server.URL+"/v1/followups?status=open", w.as("od-1"), nil, &mine); s != 200 || len(mine.FollowUps) != 1 ||
				mine.FollowUps[0].Actionable || len(mine.FollowUps[0].WaitingOn) != 1 || mine.FollowUps[0].WaitingOn[0] != "fu-o-1-availability_check" {
				t.Fatalf("order desk's own queue: %d %+v", s, mine)
			}
			if s, raw := doRaw(t, "GET", w.Server.URL+"/v1/followups?actionable=soon", w.as("od-1"), nil); s != 400 || !strings.Contains(string(raw), "/actionable") {
				t.Fatalf("a bad actionable: %d %s", s, raw)
			}

			// In dependency order, the order walks to invoiced.
			w.mustAct(w.as("dp-1"), "fu-o-1-availability_check", "claim", nil)
			w.mustAct(w.as("dp-1"), "fu-o-1-availability_check", "start", nil)
			w.mustAct(w.as("dp-1"), "fu-o-1-availability_check", "complete", map[string]any{"note": "in stock"})
			if st, reply := w.act(w.as("od-1"), "fu-o-1-erp_entry", "complete", map[string]any{"note": "entered"}); st != 400 {
				t.Fatalf("erp_entry without erp_number: %d %v", st, reply)
			} else if code, ptr := errCode(reply); code != "result_required" || ptr != "/result/erp_number" {
				t.Fatalf("erp_entry without erp_number: %v", reply)
			}
			w.mustAct(w.as("od-1"), "fu-o-1-erp_entry", "complete", map[string]any{"note": "entered", "result": map[string]any{"erp_number": "4500001"}})
			if o, _ := w.get("orders", "o-1"); o["status"] != "confirmed" || o["erp_number"] != "4500001" || o["confirmed_at"] == nil {
				t.Fatalf("after erp_entry: %v", o)
			}
			if st, reply := w.act(w.as("st-1"), "fu-o-1-dispatch", "block", map[string]any{}); st != 400 {
				t.Fatalf("block without reason: %d %v", st, reply)
			}
			if st, reply := w.act(w.as("st-1"), "fu-o-1-dispatch", "block", map[string]any{"reason": strings.Repeat("x", 2001)}); st != 400 {
				t.Fatalf("block with a reason over the limit: %d %v", st, reply)
			} else if code, ptr := errCode(reply); code != "invalid_request" || ptr != "/reason" {
				t.Fatalf("block with a reason over the limit: %v", reply)
			}
			if d := w.mustAct(w.as("st-1"), "fu-o-1-dispatch", "block", map[string]any{"reason": "waiting for QA"}); d["status"] != "blocked" {
				t.Fatalf("blocked: %v", d)
			}
			w.mustAct(w.as("st-1"), "fu-o-1-dispatch", "start", nil)
			w.mustAct(w.as("st-1"), "fu-o-1-dispatch", "complete", map[string]any{"note": "shipped"})
			w.mustAct(w.as("lg-1"), "fu-o-1-delivery", "complete", map[string]any{"result": map[string]any{"proof_of_delivery": "POD-77"}})
			if o, _ := w.get("orders", "o-1"); o["status"] != "delivered" || o["delivered_at"] == nil {
				t.Fatalf("after delivery: %v", o)
			}
			w.mustAct(w.as("bl-1"), "fu-o-1-invoice", "complete", map[string]any{"result": map[string]any{"invoice_number": "INV-9"}})
			// Completing again (a lost reply) answers the same and changes nothing.
			w.mustAct(w.as("bl-1"), "fu-o-1-invoice", "complete", map[string]any{"result": map[string]any{"invoice_number": "INV-9"}})
			if st, reply := w.act(w.as("bl-1"), "fu-o-1-invoice", "claim", nil); st != 409 {
				t.Fatalf("claiming a done follow-up: %d %v", st, reply)
			}

			// The rep's phone learns all of it: the order and the done tasks.
			seen := w.Visible(w.as("rep-1"))
			var o map[string]any
			json.Unmarshal(seen["orders/o-1"], &o)
			if o["status"] != "invoiced" || o["invoice_number"] != "INV-9" || o["invoiced_at"] == nil {
				t.Fatalf("rep sees order %v", o)
			}
			for _, a := range defaultChain {
				var f map[string]any
				json.Unmarshal(seen["follow_ups/fu-o-1-"+a], &f)
				if f["status"] != "done" {
					t.Fatalf("rep sees %s as %v", a, f)
				}
			}

			// Another organisation's order desk: the id answers like a missing one.
			w.AddUser("beta", accUser{ID: "od-9", Roles: []string{"order_desk"}})
			beta := w.Token("beta", "od-9", "order_desk")
			st1, r1 := w.act(beta, "fu-o-1-erp_entry", "claim", nil)
			st2, r2 := w.act(beta, "fu-nope", "claim", nil)
			c1, _ := errCode(r1)
			c2, _ := errCode(r2)
			if st1 != 404 || st2 != 404 || c1 != c2 ||
				strings.ReplaceAll(stringOf(r1), "fu-o-1-erp_entry", "ID") != strings.ReplaceAll(stringOf(r2), "fu-nope", "ID") {
				t.Fatalf("other org: %d %v / missing: %d %v", st1, r1, st2, r2)
			}
		})
	}
}

func toStrings(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func stringOf(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	s, _ := e["message"].(string)
	return s
}

// pushAs pushes mutations as a staff member; every one must be applied.
func (w *wfWorld) pushAs(user string, muts ...map[string]any) {
	w.T.Helper()
	w.MustApply(w.as(user), "phone-"+user, muts)
}

func TestWorkflowMatrixReplacement(t *testing.T) {
	t.Parallel()
	for _, st := range wfStores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			w := newWFWorld(t, st.store)
			w.pushAs("rep-1", mCreate("m-a", "orders", "o-a", withStatus(orderLines(0), "submitted")))
			var cur struct {
				Version string          `json:"version"`
				Matrix  json.RawMessage `json:"matrix"`
			}
			json.Unmarshal(w.Admin("acme", "GET", "/matrix", nil, 200), &cur)
			if cur.Version != "0" {
				t.Fatalf("version before any replacement: %q", cur.Version)
			}
			// Version 1: the ERP entry alone, straight after submission.
			next := map[string]any{"policy": map[string]any{"discount_limit_pct": 5}, "activities": []any{map[string]any{
				"id": "erp_entry", "name": "ERP entry", "trigger": map[string]any{"on": "order_status", "status": "submitted"},
				"responsible": "order_desk", "accountable": "manager", "informed": []string{"rep"}, "sla": "2h",
				"requires": []string{"erp_number"}, "on_done": map[string]any{"from": []string{"submitted"}, "to": "confirmed", "copy": []string{"erp_number"}}}}}
			var put struct {
				Version string `json:"version"`
			}
			json.Unmarshal(w.Admin("acme", "PUT", "/matrix", next, 200), &put)
			if put.Version != "1" {
				t.Fatalf("replaced version %q", put.Version)
			}
			w.pushAs("rep-1", mCreate("m-b", "orders", "o-b", withStatus(orderLines(0), "submitted")))

			a, b := w.followUpsOf("o-a"), w.followUpsOf("o-b")
			if len(a) != len(defaultChain) || !slices.Equal(accIDs(b), []string{"fu-o-b-erp_entry"}) {
				t.Fatalf("old order %v, new order %v", accIDs(a), accIDs(b))
			}
			for id, c := range a {
				if !strings.Contains(string(c.Doc), `"matrix_version":"0"`) {
					t.Fatalf("%s: %s", id, c.Doc)
				}
			}
			if !strings.Contains(string(b["fu-o-b-erp_entry"].Doc), `"matrix_version":"1"`) {
				t.Fatalf("new order's follow-up: %s", b["fu-o-b-erp_entry"].Doc)
			}
			// The old order keeps its rules: its ERP entry still waits for
			// the availability check; the new one's does not.
			if st, reply := w.act(w.as("od-1"), "fu-o-a-erp_entry", "complete", map[string]any{"result": map[string]any{"erp_number": "1"}}); st != 409 {
				t.Fatalf("old order's erp_entry: %d %v", st, reply)
			}
			w.mustAct(w.as("od-1"), "fu-o-b-erp_entry", "complete", map[string]any{"result": map[string]any{"erp_number": "2"}})
			if o, _ := w.get("orders", "o-b"); o["status"] != "confirmed" || o["matrix_version"] != "1" {
				t.Fatalf("new order: %v", o)
			}
		})
	}
}

func withStatus(doc map[string]any, status string) map[string]any {
	doc["status"] = status
	return doc
}

func TestWorkflowOrderChecks(t *testing.T) {
	t.Parallel()
	for _, st := range wfStores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			w := newWFWorld(t, st.store)
			bad := orderLines(0)
			bad["lines"] = []map[string]any{{"product_id": "p-1", "quantity": 1}, {"product_id": "p-404", "quantity": 1}}
			blocked := orderLines(0)
			blocked["customer_id"] = "c-2"
			blocked["currency"] = "EUR"
			w.pushAs("rep-1",
				mCreate("m-1", "orders", "o-bad", withStatus(bad, "submitted")),
				mCreate("m-2", "orders", "o-disc", withStatus(orderLines(20), "submitted")),
				mCreate("m-3", "orders", "o-credit", withStatus(blocked, "submitted")),
				mCreate("m-4", "orders", "o-ok", withStatus(orderLines(10), "submitted")))

			o, _ := w.get("orders", "o-bad")
			rej, _ := o["rejection"].(map[string]any)
			if o["status"] != "rejected" || rej["code"] != "unknown_product" || rej["pointer"] != "/lines/1/product_id" {
				t.Fatalf("bad order: %v", o)
			}
			if n := len(w.followUpsOf("o-bad")); n != 0 {
				t.Fatalf("rejected order has %d follow-ups", n)
			}
			// A discount at the limit (10%) passes; above it waits for the manager.
			if o, _ := w.get("orders", "o-ok"); o["status"] != "submitted" || o["submitted_at"] == nil || o["total"] != "162.00" {
				t.Fatalf("order at the limit: %v", o)
			}
			if o, _ := w.get("orders", "o-disc"); o["status"] != "price_approval" {
				t.Fatalf("discounted order: %v", o)
			}
			if got := accIDs(w.followUpsOf("o-disc")); !slices.Equal(got, []string{"fu-o-disc-price_approval"}) {
				t.Fatalf("discounted order's follow-ups: %v", got)
			}
			if mgr := w.Visible(w.as("mgr-1")); mgr["follow_ups/fu-o-disc-price_approval"] == nil || mgr["orders/o-disc"] == nil {
				t.Fatalf("the manager does not see the approval and its order: %v", accIDs(mgr))
			}
			w.mustAct(w.as("mgr-1"), "fu-o-disc-price_approval", "complete", map[string]any{"note": "approved for this project"})
			if o, _ := w.get("orders", "o-disc"); o["status"] != "submitted" || o["submitted_at"] == nil {
				t.Fatalf("approved order: %v", o)
			}
			if n := len(w.followUpsOf("o-disc")); n != 1+len(defaultChain) {
				t.Fatalf("approved order has %d follow-ups", n)
			}
			// Credit blocked: credit control releases, then the order is accepted.
			if o, _ := w.get("orders", "o-credit"); o["status"] != "credit_hold" {
				t.Fatalf("blocked customer's order: %v", o)
			}
			w.mustAct(w.as("cc-1"), "fu-o-credit-credit_release", "complete", map[string]any{"note": "paid"})
			if o, _ := w.get("orders", "o-credit"); o["status"] != "submitted" || o["submitted_at"] == nil {
				t.Fatalf("released order: %v", o)
			}
		})
	}
}

func TestWorkflowRaisedFollowUp(t *testing.T) {
	t.Parallel()
	for _, st := range wfStores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			w := newWFWorld(t, st.store)
			w.pushAs("rep-1",
				mCreate("m-1", "follow_ups", "q-1", map[string]any{"activity": "delivery_status_query", "customer_id": "c-1",
					"description": "Where are the 40 motors?"}),
				mCreate("m-2", "follow_ups", "q-2", map[string]any{"activity": "erp_entry", "customer_id": "c-1"}))
			q, _ := w.get("follow_ups", "q-1")
			if q["responsible_role"] != "order_desk" || q["status"] != "open" || q["due_at"] == nil || q["rep_id"] != "rep-1" ||
				q["accountable_role"] != "order_desk_lead" || q["matrix_version"] != "0" {
				t.Fatalf("raised query: %v", q)
			}
			var page struct {
				FollowUps []struct {
					ID string `json:"id"`
				} `json:"follow_ups"`
			}
			if s := do(t, "GET", w.Server.URL+"/v1/followups?role=order_desk", w.as("od-1"), nil, &page); s != 200 ||
				len(page.FollowUps) != 1 || page.FollowUps[0].ID != "q-1" {
				t.Fatalf("order desk queue: %d %+v", s, page)
			}
			// The order desk's feed now holds the query and its customer;
			// the stores' does not.
			desk := w.Visible(w.as("od-1"))
			if desk["follow_ups/q-1"] == nil || desk["customers/c-1"] == nil {
				t.Fatalf("order desk sees %v", accIDs(desk))
			}
			if stores := w.Visible(w.as("st-1")); stores["follow_ups/q-1"] != nil || stores["customers/c-1"] != nil {
				t.Fatalf("stores sees %v", accIDs(stores))
			}
			// Never back to the rep: the rep cannot work it.
			if st, reply := w.act(w.as("rep-1"), "q-1", "claim", nil); st != 403 {
				t.Fatalf("rep claims own query: %d %v", st, reply)
			}
			w.mustAct(w.as("od-1"), "q-1", "claim", nil)
			w.mustAct(w.as("od-1"), "q-1", "complete", map[string]any{"note": "arrives Thursday"})
			var seen map[string]any
			json.Unmarshal(w.Visible(w.as("rep-1"))["follow_ups/q-1"], &seen)
			if seen["status"] != "done" || seen["note"] != "arrives Thursday" {
				t.Fatalf("rep sees %v", seen)
			}
			// Pages: two more queries, listed two at a time.
			w.pushAs("rep-1",
				mCreate("m-3", "follow_ups", "q-3", map[string]any{"activity": "delivery_status_query", "customer_id": "c-1"}),
				mCreate("m-4", "follow_ups", "q-4", map[string]any{"activity": "returns", "customer_id": "c-1"}))
			var got []string
			next := ""
			for pages := 0; ; pages++ {
				var p struct {
					FollowUps []struct {
						ID string `json:"id"`
					} `json:"follow_ups"`
					Next string `json:"next"`
				}
				if s := do(t, "GET", w.Server.URL+"/v1/followups?role=order_desk&limit=2&after="+next, w.as("od-1"), nil, &p); s != 200 || len(p.FollowUps) > 2 || pages > 3 {
					t.Fatalf("page %d: %d %+v", pages, s, p)
				}
				for _, f := range p.FollowUps {
					got = append(got, f.ID)
				}
				if next = p.Next; next == "" {
					break
				}
			}
			if slices.Sort(got); !slices.Equal(got, []string{"q-1", "q-3", "q-4"}) {
				t.Fatalf("order desk's queue in pages: %v", got)
			}
			// An activity the matrix does not let anyone raise by hand.
			q2, _ := w.get("follow_ups", "q-2")
			rej, _ := q2["rejection"].(map[string]any)
			if q2["status"] != "cancelled" || rej["code"] != "activity_not_raisable" || q2["responsible_role"] != nil {
				t.Fatalf("unraisable: %v", q2)
			}
		})
	}
}

func TestWorkflowMatrixAPI(t *testing.T) {
	t.Parallel()
	w := newWFWorld(t, onSQLite)
	var def map[string]any
	raw := w.Admin("acme", "GET", "/matrix", nil, 200)
	var cur struct {
		Matrix map[string]any `json:"matrix"`
	}
	json.Unmarshal(raw, &cur)
	def = cur.Matrix
	acts := def["activities"].([]any)
	erp := acts[3].(map[string]any)
	cases := []struct {
		name    string
		edit    func()
		undo    func()
		pointer string
	}{
		{"unknown role", func() { erp["responsible"] = "order_dsek" }, func() { erp["responsible"] = "order_desk" }, "/activities/3/responsible"},
		{"missing SLA", func() { delete(erp, "sla") }, func() { erp["sla"] = "8h" }, "/activities/3/sla"},
		{"cycle", func() { acts[2].(map[string]any)["depends_on"] = []any{"invoice"} }, func() { delete(acts[2].(map[string]any), "depends_on") }, "/activities/3/depends_on/0"},
	}
	for _, c := range cases {
		c.edit()
		st, body := doRaw(t, "PUT", w.Server.URL+"/v1/admin/matrix", w.Operator("acme"), mustJSON(t, def))
		var e errorReply
		json.Unmarshal(body, &e)
		if st != 400 || e.Error.Code != "invalid_matrix" || e.Error.Pointer != c.pointer {
			t.Fatalf("%s: %d %s", c.name, st, body)
		}
		c.undo()
	}
	// Nothing was stored; only admins replace it.
	if st, _ := doRaw(t, "PUT", w.Server.URL+"/v1/admin/matrix", w.as("od-1"), mustJSON(t, def)); st != 403 {
		t.Fatalf("order desk replaces the matrix: %d", st)
	}
	var v struct {
		Version string `json:"version"`
	}
	json.Unmarshal(w.Admin("acme", "GET", "/matrix", nil, 200), &v)
	if v.Version != "0" {
		t.Fatalf("a refused matrix was stored: version %s", v.Version)
	}
	// The organisation's own roles are known once added.
	erp["responsible"] = "inside_sales"
	st, body := doRaw(t, "PUT", w.Server.URL+"/v1/admin/matrix", w.Operator("acme"), mustJSON(t, def))
	if st != 400 {
		t.Fatalf("unknown org role: %d %s", st, body)
	}
	w.Admin("acme", "PUT", "/org", map[string]any{"roles": []string{"inside_sales"}}, 200)
	json.Unmarshal(w.Admin("acme", "PUT", "/matrix", def, 200), &v)
	if v.Version != "1" {
		t.Fatalf("version %s", v.Version)
	}
}

// TestWorkflowEscalation: serve's sweep escalates an overdue follow-up to
// its accountable role, on both stores. The matrix gives the raised query a
// 1 ms SLA and the sweep runs every 20 ms; the test polls for the outcome.
func TestWorkflowEscalation(t *testing.T) {
	t.Parallel()
	for _, st := range wfStores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			fast := func(tb testing.TB) func(*serveConfig) {
				tweak := st.store(tb)
				return func(c *serveConfig) {
					c.EscalationInterval = 20 * time.Millisecond
					if tweak != nil {
						tweak(c)
					}
				}
			}
			w := newWFWorld(t, fast)
			w.Admin("acme", "PUT", "/matrix", map[string]any{"activities": []any{map[string]any{
				"id": "delivery_status_query", "trigger": map[string]any{"on": "raised"},
				"responsible": "order_desk", "accountable": "logistics", "sla": "1ms"}}}, 200)
			w.pushAs("rep-1", mCreate("m-1", "follow_ups", "q-1", map[string]any{"activity": "delivery_status_query", "customer_id": "c-1"}))
			deadline := time.Now().Add(patience.Of(t))
			for {
				q, _, _ := w.lookup("follow_ups", "q-1")
				if q["escalated_at"] != nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("not escalated: %v", q)
				}
				time.Sleep(10 * time.Millisecond) // polling a real condition, bounded by the deadline
			}
			// The accountable role (logistics) now reads it.
			if seen := w.Visible(w.as("lg-1")); seen["follow_ups/q-1"] == nil {
				t.Fatalf("logistics does not see the escalated query: %v", accIDs(seen))
			}
			_, v := w.get("follow_ups", "q-1")
			if v != 3 { // created, routed, escalated once
				t.Fatalf("version %d, want 3", v)
			}
		})
	}
}
