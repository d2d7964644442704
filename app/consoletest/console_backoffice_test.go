package consoletest

// The back office's pages (issue 13, point 3) in the browser: a follow-up
// started and a refusal shown at its field; a queue's marks, filters and
// pages; an order's timeline, rejection and follow-ups.

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fieldsync/fieldsync/demo"
)

// The demo organisation's time zone (package demo's demoTimeZone), in which
// the console shows due times.
const demoZone = "Europe/Berlin"

// raisedReturns is how many returns rep-1 raises for one customer: more
// than a queue page (console.queuePageSize, 50).
const raisedReturns = 60

// TestConsoleBackOffice works the order desk's queue of the demo with the
// overdue sweep running. Besides the demo's own follow-ups there are:
//   - an actionable ERP entry, which the order desk starts and then
//     completes wrongly;
//   - rep-1's 60 returns for one customer, more than a page;
//   - rep-2's return, claimed by the order desk, and rep-2's delivery-status
//     query, whose SLA the matrix makes 1 ms, so the sweep escalates it;
//   - rep-2's order, whose ERP entry waits for the availability check;
//   - rep-3's order with the check done and the ERP entry claimed, and
//     rep-3's order of a discontinued product, which is rejected.
func TestConsoleBackOffice(t *testing.T) {
	t.Parallel()
	ts := startServer(t, consoleDemo(t), func(c *serveConfig) {
		c.Console.Poll = 200 * time.Millisecond
		c.EscalationInterval = 250 * time.Millisecond
	})
	actionableERPEntry(t, ts)
	desk := apiToken(t, ts, "order-desk@demo.example")
	var open struct {
		FollowUps []struct {
			ID         string `json:"id"`
			Actionable bool   `json:"actionable"`
		} `json:"follow_ups"`
	}
	if code := do(t, "GET", ts.URL+"/v1/followups?role=order_desk&status=open&actionable=true&limit=200", desk, nil, &open); code != http.StatusOK {
		t.Fatalf("the order desk's actionable follow-ups: %d", code)
	}
	entry := ""
	for _, f := range open.FollowUps {
		if strings.HasSuffix(f.ID, "-erp_entry") && f.Actionable && entry == "" {
			entry = f.ID
		}
	}
	if entry == "" {
		t.Fatalf("no actionable ERP entry: %+v", open.FollowUps)
	}
	entryOrder := strings.TrimSuffix(strings.TrimPrefix(entry, "fu-"), "-erp_entry")

	// Delivery-status queries are due 1 ms after they are raised.
	admin := ts.Token(t, "demo", "operator", "admin")
	var mx struct {
		Matrix map[string]any `json:"matrix"`
	}
	if code := do(t, "GET", ts.URL+"/v1/admin/matrix", admin, nil, &mx); code != http.StatusOK {
		t.Fatalf("read the matrix: %d", code)
	}
	for _, a := range mx.Matrix["activities"].([]any) {
		if a := a.(map[string]any); a["id"] == "delivery_status_query" {
			a["sla"] = "1ms"
		}
	}
	if code := do(t, "PUT", ts.URL+"/v1/admin/matrix", admin, mustJSON(t, mx.Matrix), nil); code != http.StatusOK {
		t.Fatalf("replace the matrix: %d", code)
	}

	rep1, rep2, rep3 := ts.Token(t, "demo", "rep-1", "rep"), ts.Token(t, "demo", "rep-2", "rep"), ts.Token(t, "demo", "rep-3", "rep")
	c1, c2, c3 := catalogueOf(t, ts, rep1), catalogueOf(t, ts, rep2), catalogueOf(t, ts, rep3)
	var returns []map[string]any
	paged := map[string]bool{} // rep-1's returns
	for i := range raisedReturns {
		id := fmt.Sprintf("return-rep-1-%02d", i)
		paged[id] = true
		returns = append(returns, map[string]any{"mutation_id": "m-" + id, "collection": "follow_ups", "id": id, "op": "create",
			"doc": map[string]any{"activity": "returns", "customer_id": c1.Customer, "description": fmt.Sprintf("return %d", i)}})
	}
	pushApplied(t, ts, rep1, returns...)
	const claimed, late = "return-rep-2", "query-rep-2"
	pushApplied(t, ts, rep2,
		map[string]any{"mutation_id": "m-" + claimed, "collection": "follow_ups", "id": claimed, "op": "create",
			"doc": map[string]any{"activity": "returns", "customer_id": c2.Customer, "description": "a damaged motor"}},
		map[string]any{"mutation_id": "m-" + late, "collection": "follow_ups", "id": late, "op": "create",
			"doc": map[string]any{"activity": "delivery_status_query", "customer_id": c2.Customer, "description": "where is it?"}})
	act(t, ts, desk, claimed, "claim", nil)
	waiting := "fu-" + submitOrder(t, ts, rep2, "rep-2") + "-erp_entry"
	chained := submitOrder(t, ts, rep3, "rep-3")
	act(t, ts, apiToken(t, ts, "demand-planning@demo.example"), "fu-"+chained+"-availability_check", "complete",
		map[string]any{"result": map[string]any{"available": "yes"}})
	act(t, ts, desk, "fu-"+chained+"-erp_entry", "claim", nil)
	const rejected = "ord-rep-3-discontinued"
	pushApplied(t, ts, rep3, map[string]any{"mutation_id": "m-" + rejected, "collection": "orders", "id": rejected, "op": "create",
		"doc": map[string]any{"customer_id": c3.Customer, "currency": "EUR", "status": "submitted",
			"lines": []map[string]any{{"product_id": c3.Discontinued, "quantity": 1}}}})

	queue := ts.URL + "/console/queue?role=order_desk"

	t.Run("start, and a refusal at its field", func(t *testing.T) {
		t.Parallel()
		b := tab(t)
		signIn(t, b, ts.URL, "order-desk@demo.example")
		browse(t, b, chromedp.Navigate(ts.URL+"/console/followups/"+entry), chromedp.WaitVisible(chromedp.CSS("#claim")))
		if got := text(t, b, "#fu-status"); got != "open" {
			t.Fatalf("%s is %q, want open", entry, got)
		}
		browse(t, b, chromedp.Click(chromedp.CSS("#claim")))
		waitJS(t, b, `document.querySelector("#fu-status") && document.querySelector("#fu-status").textContent === "claimed"`)
		browse(t, b, chromedp.Click(chromedp.CSS("#start")))
		waitJS(t, b, `document.querySelector("#fu-status") && document.querySelector("#fu-status").textContent === "in_progress"`)
		if n := eval[int](t, b, `document.querySelectorAll("#claim, #start").length`); n != 0 {
			t.Errorf("a follow-up in progress still offers claim or start (%d buttons)", n)
		}
		if got := eval[string](t, b, `[...document.querySelectorAll(".facts dt")].find(d => d.textContent === "Claimed by").nextElementSibling.textContent`); got != "Olga Petrović" {
			t.Errorf("claimed by %q, want Olga Petrović", got)
		}
		mine := rowsOf(queuePages(t, b, queue+"&view=mine"))
		if r, ok := mine[entry]; !ok || r.Status != "in_progress" || !r.Mine {
			t.Errorf("the order desk's own queue shows %s as %+v (found %v), want in_progress, claimed by me", entry, r, ok)
		}

		// Completed without an ERP number, then with blanks: the server's
		// message under the field, what was typed kept, nothing changed.
		for _, erp := range []string{"", "   "} {
			browse(t, b, chromedp.Navigate(ts.URL+"/console/followups/"+entry), chromedp.WaitVisible(chromedp.CSS("#result-erp_number")),
				chromedp.SendKeys(chromedp.CSS("#note"), "typed <before>"))
			eval[any](t, b, fmt.Sprintf(`document.querySelector("#result-erp_number").value = %q; null`, erp))
			browse(t, b, chromedp.Click(chromedp.CSS("#complete")))
			waitJS(t, b, `document.querySelector("#result-erp_number-error")`)
			if got := text(t, b, "#result-erp_number-error"); got != "completing erp_entry needs result.erp_number" {
				t.Errorf("ERP number %q: the refusal reads %q", erp, got)
			}
			field := eval[map[string]string](t, b, `(() => { const f = document.querySelector("#result-erp_number");
				return {invalid: f.getAttribute("aria-invalid"), describedby: f.getAttribute("aria-describedby"), value: f.value,
					note: document.querySelector("#note").value}; })()`)
			if field["invalid"] != "true" || field["describedby"] != "result-erp_number-error" {
				t.Errorf("ERP number %q: the field is not marked as refused: %v", erp, field)
			}
			if field["value"] != erp || field["note"] != "typed <before>" {
				t.Errorf("ERP number %q: the form lost what was typed: %v", erp, field)
			}
			if n := eval[int](t, b, `document.querySelectorAll("#action-error").length`); n != 0 {
				t.Errorf("ERP number %q: the refusal is shown at the top as well as at its field", erp)
			}
			if got := text(t, b, "#fu-status"); got != "in_progress" {
				t.Errorf("ERP number %q: the follow-up is %q, want in_progress", erp, got)
			}
		}
		browse(t, b, chromedp.Navigate(ts.URL+"/console/orders/"+entryOrder), chromedp.WaitVisible(chromedp.CSS("#order-status")))
		if got := text(t, b, "#order-status"); got != "submitted" {
			t.Errorf("after the refused completions the order is %q, want submitted", got)
		}
		if n := eval[int](t, b, `document.querySelectorAll("#order-erp").length`); n != 0 {
			t.Errorf("after the refused completions the order has an ERP number")
		}
	})

	t.Run("marks", func(t *testing.T) {
		t.Parallel()
		b := tab(t)
		signIn(t, b, ts.URL, "order-desk@demo.example")
		// rep-2's follow-ups; the sweep escalates the query while the
		// page is open.
		browse(t, b, chromedp.Navigate(queue+"&rep="+url.QueryEscape("Lea Fischer")), chromedp.WaitVisible(chromedp.CSS("#queue .shown")))
		waitJS(t, b, fmt.Sprintf(`document.querySelector('tr[data-fu=%q] .mark.escalated')`, late))
		rows := shownRows(t, b)
		byID := rowsOf([][]shownRow{rows})
		if r := byID[late]; !r.Overdue || !r.Escalated || !r.OverdueRow {
			t.Errorf("the overdue, escalated query is shown as %+v", r)
		}
		if r := byID[claimed]; r.Status != "claimed" || !r.Mine || r.Overdue || r.Escalated {
			t.Errorf("the return the order desk claimed is shown as %+v, want claimed by me and not overdue", r)
		}
		for i := 1; i < len(rows); i++ {
			if rows[i].Overdue && !rows[i-1].Overdue {
				t.Errorf("%s (overdue) is listed after %s (not overdue)", rows[i].ID, rows[i-1].ID)
			}
		}
		mine := rowsOf(queuePages(t, b, queue+"&view=mine"))
		if _, ok := mine[claimed]; !ok {
			t.Errorf("the claimed return is not in the order desk's own queue")
		}
		if _, ok := mine[late]; ok {
			t.Errorf("the query nobody claimed is in the order desk's own queue")
		}

		// The ERP entry of rep-2's order waits for demand planning.
		if _, ok := rowsOf(queuePages(t, b, queue+"&rep=Lea"))[waiting]; ok {
			t.Errorf("%s is listed as actionable before its availability check", waiting)
		}
		w, ok := rowsOf(queuePages(t, b, queue+"&view=waiting"))[waiting]
		if !ok || w.Waits != "availability_check (Demand planning)" || w.Overdue || w.Escalated {
			t.Errorf("the waiting ERP entry is shown as %+v (found %v), want it waiting for availability_check (Demand planning)", w, ok)
		}

		// The query's own page has the marks too.
		browse(t, b, chromedp.Navigate(ts.URL+"/console/followups/"+late), chromedp.WaitVisible(chromedp.CSS("#fu-status")))
		if n := eval[int](t, b, `document.querySelectorAll(".facts .mark.overdue, .facts .mark.escalated").length`); n != 2 {
			t.Errorf("the query's page shows %d of the overdue and escalated marks", n)
		}
	})

	t.Run("filters and pages", func(t *testing.T) {
		t.Parallel()
		b := tab(t)
		signIn(t, b, ts.URL, "order-desk@demo.example")
		zone := mustZone(t)
		today := testNow().In(zone).Format(time.DateOnly)

		// The whole actionable queue, a page at a time by the "Next page"
		// link: the first page full, each return on exactly one page.
		browse(t, b, chromedp.Navigate(queue), chromedp.WaitVisible(chromedp.CSS("#queue .shown")))
		var pages [][]shownRow
		for {
			pages = append(pages, shownRows(t, b))
			if !eval[bool](t, b, `!!document.querySelector("#queue a.next")`) {
				break
			}
			// Clicked in one step: the live refresh replaces the list's
			// nodes every 200 ms.
			next := eval[string](t, b, `(() => { const a = document.querySelector("#queue a.next"); a.click(); return a.href; })()`)
			waitJS(t, b, fmt.Sprintf(`location.href === %q && document.readyState === "complete" && document.querySelector("#queue .shown")`, next))
		}
		if len(pages) < 2 || len(pages[0]) != 50 {
			t.Errorf("the queue has %d pages, the first of %d rows; want more than one, the first full (50)", len(pages), len(pages[0]))
		}
		seen := map[string]int{}
		for _, p := range pages {
			for _, r := range p {
				seen[r.ID]++
			}
		}
		for id := range paged {
			if seen[id] != 1 {
				t.Errorf("%s is on %d pages, want 1", id, seen[id])
			}
		}

		check := func(name, query string, keep func(shownRow) bool, in, out []string) {
			t.Helper()
			rows := rowsOf(queuePages(t, b, queue+query))
			for _, r := range rows {
				if !keep(r) {
					t.Errorf("%s: %+v does not match", name, r)
				}
			}
			for _, id := range in {
				if _, ok := rows[id]; !ok {
					t.Errorf("%s: %s is missing", name, id)
				}
			}
			for _, id := range out {
				if _, ok := rows[id]; ok {
					t.Errorf("%s: %s is listed", name, id)
				}
			}
		}
		returns := slices.Sorted(maps.Keys(paged))
		check("rep", "&rep=jonas", func(r shownRow) bool { return r.Rep == "Jonas Weber" }, returns, []string{claimed, late})
		check("customer", "&customer="+url.QueryEscape(strings.ToUpper(c1.Name)),
			func(r shownRow) bool { return strings.Contains(strings.ToLower(r.Customer), strings.ToLower(c1.Name)) }, returns, []string{claimed, late})
		check("status claimed", "&status=claimed", func(r shownRow) bool { return r.Status == "claimed" }, []string{claimed}, append(returns, late))
		check("status open", "&status=open", func(r shownRow) bool { return r.Status == "open" }, append(returns, late), []string{claimed})
		check("overdue", "&due=overdue", func(r shownRow) bool { return r.Overdue }, []string{late}, append(returns, claimed))
		check("due today", "&due=today", func(r shownRow) bool {
			// Today as the server saw it, a moment after this test did.
			return strings.HasPrefix(r.Due, today) || strings.HasPrefix(r.Due, testNow().In(zone).Format(time.DateOnly))
		}, nil, returns)
		// The filters as the form sends them.
		browse(t, b, chromedp.Navigate(queue), chromedp.WaitVisible(chromedp.CSS(".filters")),
			chromedp.SetValue(chromedp.CSS(`.filters select[name=status]`), "claimed"),
			chromedp.SendKeys(chromedp.CSS(`.filters input[name=rep]`), "Fischer"),
			chromedp.Click(chromedp.CSS(`.filters button`)))
		waitJS(t, b, `location.search.includes("status=claimed") && location.search.includes("rep=Fischer") && document.querySelector("#queue .shown")`)
		got := rowsOf([][]shownRow{shownRows(t, b)})
		if _, ok := got[claimed]; !ok {
			t.Errorf("the form's filters (claimed, rep Fischer) do not list %s: %v", claimed, slices.Sorted(maps.Keys(got)))
		}
		for _, r := range got {
			if r.Status != "claimed" || r.Rep != "Lea Fischer" {
				t.Errorf("the form's filters (claimed, rep Fischer) list %+v", r)
			}
		}
	})

	t.Run("orders", func(t *testing.T) {
		t.Parallel()
		b := tab(t)
		signIn(t, b, ts.URL, "admin@demo.example")

		// The rejected order: why, and when.
		browse(t, b, chromedp.Navigate(ts.URL+"/console/orders/"+rejected), chromedp.WaitVisible(chromedp.CSS("#order-status")))
		if got := text(t, b, "#order-status"); got != "rejected" {
			t.Fatalf("%s is %q, want rejected", rejected, got)
		}
		if got, want := text(t, b, "#order-rejection"), "product "+c3.Discontinued+" is discontinued"; got != want {
			t.Errorf("the rejection reads %q, want %q", got, want)
		}
		timeline := eval[[]string](t, b, `[...document.querySelectorAll("ol.timeline li")].map(li => li.textContent.trim())`)
		if len(timeline) != 1 || !regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d \S+ now rejected$`).MatchString(timeline[0]) {
			t.Errorf("the rejected order's timeline: %q", timeline)
		}
		if n := eval[int](t, b, `document.querySelectorAll("table.chain tbody tr").length`); n != 0 {
			t.Errorf("the rejected order has %d follow-ups", n)
		}

		// The order with its check done and its ERP entry claimed.
		browse(t, b, chromedp.Navigate(ts.URL+"/console/orders/"+chained), chromedp.WaitVisible(chromedp.CSS("table.chain")))
		if got := text(t, b, "#order-status"); got != "submitted" {
			t.Errorf("%s is %q, want submitted", chained, got)
		}
		if n := eval[int](t, b, `document.querySelectorAll("#order-rejection").length`); n != 0 {
			t.Errorf("an accepted order shows a rejection")
		}
		if got := eval[[]string](t, b, `[...document.querySelectorAll("ol.timeline li")].map(li => li.textContent.trim())`); len(got) != 1 || !strings.HasSuffix(got[0], " submitted") {
			t.Errorf("the submitted order's timeline: %q", got)
		}
		type step struct{ State, By, Closed string }
		steps := eval[map[string]step](t, b, `Object.fromEntries([...document.querySelectorAll("table.chain tr[data-step]")].map(r =>
			[r.dataset.step, {State: r.cells[2].textContent, By: r.cells[3].textContent, Closed: r.cells[5].textContent}]))`)
		fu := func(a string) string { return "fu-" + chained + "-" + a }
		for id, want := range map[string]step{
			fu("availability_check"): {State: "done", By: "Diana Roth"},
			fu("erp_entry"):          {State: "claimed", By: "Olga Petrović"},
			fu("dispatch"):           {State: "open"},
			fu("delivery"):           {State: "open"},
			fu("invoice"):            {State: "open"},
		} {
			got, ok := steps[id]
			if !ok || got.State != want.State || got.By != want.By || (got.Closed != "") != (want.State == "done") {
				t.Errorf("step %s shown as %+v (found %v), want %+v, closed when done", id, got, ok, want)
			}
		}
		browse(t, b, chromedp.Click(chromedp.CSS(fmt.Sprintf(`tr[data-step=%q] a`, fu("erp_entry")))))
		waitJS(t, b, fmt.Sprintf(`location.pathname === %q && document.querySelector("#fu-status")`, "/console/followups/"+fu("erp_entry")))
		if got := text(t, b, "#fu-status"); got != "claimed" {
			t.Errorf("the ERP entry's page says %q, the order's chain claimed", got)
		}
	})
}

func mustZone(t *testing.T) *time.Location {
	t.Helper()
	z, err := time.LoadLocation(demoZone)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// shownRow is a queue row as the browser shows it.
type shownRow struct {
	ID, Customer, Rep, Status, Due, Waits string
	Mine, Overdue, Escalated              bool
	OverdueRow                            bool // the row itself is marked
}

// shownRows reads the rows of the queue page open in b.
func shownRows(t *testing.T, b context.Context) []shownRow {
	t.Helper()
	return eval[[]shownRow](t, b, `[...document.querySelectorAll("#queue tr[data-fu]")].map(r => ({
		ID: r.dataset.fu, Customer: r.cells[1].textContent.trim(), Rep: r.cells[2].textContent.trim(),
		Status: r.cells[3].firstChild.textContent.trim(), Due: r.cells[4].textContent.trim(), Waits: r.cells[5].textContent.trim(),
		Mine: r.cells[3].textContent.includes("claimed by me"), Overdue: !!r.cells[4].querySelector(".mark.overdue"),
		Escalated: !!r.cells[4].querySelector(".mark.escalated"), OverdueRow: r.classList.contains("overdue")}))`)
}

// queuePages opens a queue page and follows its "Next page" links to the
// end, returning the rows of each page.
func queuePages(t *testing.T, b context.Context, u string) [][]shownRow {
	t.Helper()
	var pages [][]shownRow
	for u != "" {
		browse(t, b, chromedp.Navigate(u), chromedp.WaitVisible(chromedp.CSS("#queue .shown")))
		pages = append(pages, shownRows(t, b))
		u = eval[string](t, b, `(document.querySelector("#queue a.next") || {href: ""}).href`)
	}
	return pages
}

// rowsOf indexes the rows of pages by follow-up id.
func rowsOf(pages [][]shownRow) map[string]shownRow {
	out := map[string]shownRow{}
	for _, p := range pages {
		for _, r := range p {
			out[r.ID] = r
		}
	}
	return out
}

// apiToken signs email in over the API and returns the access token.
func apiToken(t *testing.T, ts *testServer, email string) string {
	t.Helper()
	_, g, e := login(t, ts, email, demo.Password, "console-test")
	if g.AccessToken == "" {
		t.Fatalf("sign-in of %s: %+v", email, e)
	}
	return g.AccessToken
}

// act runs a follow-up action over the API, as tok.
func act(t *testing.T, ts *testServer, tok, id, action string, body map[string]any) {
	t.Helper()
	var raw []byte
	if body != nil {
		raw = mustJSON(t, body)
	}
	var e errorReply
	if code := do(t, "POST", ts.URL+"/v1/followups/"+id+"/"+action, tok, raw, &e); code != http.StatusOK {
		t.Fatalf("%s %s: %d %+v", action, id, code, e)
	}
}

// pushApplied pushes muts as tok's phone; each must apply.
func pushApplied(t *testing.T, ts *testServer, tok string, muts ...map[string]any) {
	t.Helper()
	var pr pushReply
	if code := do(t, "POST", ts.URL+"/v1/sync/push", tok, mustJSON(t, push("console-test", muts...)), &pr); code != http.StatusOK {
		t.Fatalf("push: %d", code)
	}
	for _, r := range pr.Results {
		if r.Status != "applied" {
			t.Fatalf("mutation %s: %s %+v", r.MutationID, r.Status, r.Error)
		}
	}
}

// catalogue is what a rep's phone holds to write with: a customer in good
// credit and its name, and a discontinued product.
type catalogue struct{ Customer, Name, Discontinued string }

func catalogueOf(t *testing.T, ts *testServer, tok string) catalogue {
	t.Helper()
	docs, _ := pullAll(t, ts.URL, tok, "", 1000)
	var c catalogue
	for _, key := range slices.Sorted(maps.Keys(docs)) {
		var d struct {
			Name   string `json:"name"`
			Credit string `json:"credit_status"`
			Active *bool  `json:"active"`
		}
		json.Unmarshal(docs[key], &d)
		coll, id, _ := strings.Cut(key, "/")
		switch {
		case coll == "customers" && c.Customer == "" && (d.Credit == "" || d.Credit == "ok"):
			c.Customer, c.Name = id, d.Name
		case coll == "products" && c.Discontinued == "" && d.Active != nil && !*d.Active:
			c.Discontinued = id
		}
	}
	if c.Customer == "" || c.Discontinued == "" {
		t.Fatalf("the rep's phone has no customer in good credit or no discontinued product: %+v", c)
	}
	return c
}
