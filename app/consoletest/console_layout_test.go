package consoletest

// The console on a tablet (issue 13, point 6) and the KPI drill-down of
// point 4, in the browser.

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestConsoleLayout: at a tablet's 768 px and at 1280 px no main page of
// the console scrolls sideways as a whole. A table wider than the screen
// scrolls in its own box, so the page around it keeps its width.
func TestConsoleLayout(t *testing.T) {
	t.Parallel()
	ts := startConsoleServer(t)
	admin := tab(t) // an admin opens every page
	signIn(t, admin, ts.URL, "admin@demo.example")

	// The ids the pages need, as the pages link them.
	browse(t, admin, chromedp.Navigate(ts.URL+"/console/queue?role=order_desk"))
	fu := firstRow(t, admin, "-erp_entry")
	order := strings.TrimSuffix(strings.TrimPrefix(fu, "fu-"), "-erp_entry")
	browse(t, admin, chromedp.Navigate(ts.URL+"/console/visits?state=all"), chromedp.WaitVisible(chromedp.CSS("#review-form")))
	visit := eval[string](t, admin, `document.querySelector("tr[data-visit]").dataset.visit`)
	rep := eval[string](t, admin, `document.querySelector("tr[data-visit]").dataset.rep`)
	day := eval[string](t, admin, `document.querySelector('tr[data-visit] a[href^="/console/map"]').getAttribute("href")`)

	pages := []struct{ name, path, ready string }{
		{"queue", "/console/queue?role=order_desk&view=done", "#queue tr[data-fu]"},
		{"follow-up", "/console/followups/" + fu, "#fu-status"},
		{"order", "/console/orders/" + order, "#order-status"},
		{"visits", "/console/visits?state=all", "#review-form"},
		{"visit", "/console/visits/" + visit, "#comment"},
		{"map", day, "#map"},
		{"kpis", "/console/kpis", "#kpis"},
		{"kpis of a rep", "/console/kpis?rep=" + rep, "#kpis"},
		{"users", "/console/admin/users", "tr[data-user]"},
		{"matrix", "/console/admin/matrix", "#matrix"},
	}
	type widths struct{ Scroll, Inner int }
	for _, w := range []int64{768, 1280} {
		browse(t, admin, chromedp.EmulateViewport(w, 1024))
		for _, p := range pages {
			browse(t, admin, chromedp.Navigate(ts.URL+p.path), chromedp.WaitVisible(chromedp.CSS(p.ready)))
			got := eval[widths](t, admin, `({Scroll: document.documentElement.scrollWidth, Inner: window.innerWidth})`)
			if got.Inner != int(w) {
				t.Fatalf("the window is %d px wide, want %d", got.Inner, w)
			}
			if got.Scroll > got.Inner {
				t.Errorf("at %d px the %s page is %d px wide: it scrolls sideways", w, p.name, got.Scroll)
			}
		}
	}
	// At 768 px the visit list is wider than the screen: all of it is
	// still there, in a box that scrolls.
	browse(t, admin, chromedp.EmulateViewport(768, 1024), chromedp.Navigate(ts.URL+"/console/visits?state=all"),
		chromedp.WaitVisible(chromedp.CSS("#review-form")))
	box := eval[widths](t, admin, `(() => { const b = document.querySelector("table.visits").closest(".scroll");
		return {Scroll: b.scrollWidth, Inner: b.clientWidth}; })()`)
	if box.Scroll <= box.Inner {
		t.Errorf("the visit list fits in %d px at 768 px (%d px): this test no longer shows a table scrolling in its box", box.Inner, box.Scroll)
	}
	if overflow := eval[string](t, admin, `getComputedStyle(document.querySelector("table.visits").closest(".scroll")).overflowX`); overflow != "auto" {
		t.Errorf("the visit list's box has overflow-x %q, want auto", overflow)
	}
}

// TestConsoleKPIDrillDown: a manager goes from the team's KPIs to a rep's
// days and from a day to the map of that rep's check-ins; the figures
// agree on the way down.
func TestConsoleKPIDrillDown(t *testing.T) {
	t.Parallel()
	ts := startConsoleServer(t)
	mgr := tab(t)
	signIn(t, mgr, ts.URL, "manager-1@demo.example")
	browse(t, mgr, chromedp.Navigate(ts.URL+"/console/kpis"), chromedp.WaitVisible(chromedp.CSS("#kpis")))

	// The team's rep with the most visits in the period.
	type repRow struct {
		Name, Href string
		Visits     int
	}
	reps := eval[[]repRow](t, mgr, `[...document.querySelectorAll("#kpis tbody tr")].map(r => ({
		Name: r.querySelector("th").textContent.trim(), Href: (r.querySelector("th a") || {getAttribute: () => ""}).getAttribute("href"),
		Visits: +r.querySelector("td").textContent}))`)
	if len(reps) == 0 {
		t.Fatal("the team's KPI table has no rep")
	}
	top := reps[0]
	for _, r := range reps {
		if r.Href == "" {
			t.Fatalf("%s's row has no link to the rep's days", r.Name)
		}
		if r.Visits > top.Visits {
			top = r
		}
	}
	if top.Visits == 0 {
		t.Fatalf("no rep of the team visited anyone in the period: %+v", reps)
	}
	browse(t, mgr, chromedp.Click(chromedp.CSS(fmt.Sprintf(`#kpis tbody th a[href=%q]`, top.Href))))
	waitJS(t, mgr, `location.search.includes("rep=") && document.querySelector("#kpis")`)
	if got, want := text(t, mgr, "h1"), "KPIs of "+top.Name; got != want {
		t.Fatalf("the rep's page is titled %q, want %q", got, want)
	}

	// One row per day, with the map of the day; they add up to the rep's
	// row of the team table.
	type dayRow struct {
		Day, Map string
		Visits   int
	}
	days := eval[[]dayRow](t, mgr, `[...document.querySelectorAll("#kpis tbody tr")].map(r => ({
		Day: r.querySelector("th").textContent.trim(), Visits: +r.querySelector("td").textContent,
		Map: (r.querySelector('a[href^="/console/map"]') || {getAttribute: () => ""}).getAttribute("href")}))`)
	sum, busiest := 0, dayRow{}
	for _, d := range days {
		if d.Map == "" {
			t.Fatalf("the day %s has no map link", d.Day)
		}
		sum += d.Visits
		if d.Visits > busiest.Visits {
			busiest = d
		}
	}
	if sum != top.Visits {
		t.Errorf("%s's days add up to %d visits, the team table says %d", top.Name, sum, top.Visits)
	}
	if total, _ := strconv.Atoi(text(t, mgr, "#kpis tfoot td")); total != top.Visits {
		t.Errorf("%s's period total is %d visits, the team table says %d", top.Name, total, top.Visits)
	}

	// The busiest day's map: that rep, that day, each visit a numbered stop.
	browse(t, mgr, chromedp.Click(chromedp.CSS(fmt.Sprintf(`#kpis a[href=%q]`, busiest.Map))))
	waitJS(t, mgr, `location.pathname === "/console/map" && document.querySelector("#map")`)
	if got, want := text(t, mgr, "h1"), top.Name+"'s day, "+busiest.Day; got != want {
		t.Fatalf("the map is titled %q, want %q", got, want)
	}
	if n := eval[int](t, mgr, `document.querySelectorAll("#map g.stop").length`); n == 0 || n > busiest.Visits {
		t.Errorf("the map of %s shows %d check-ins for %d visits", busiest.Day, n, busiest.Visits)
	}
}
