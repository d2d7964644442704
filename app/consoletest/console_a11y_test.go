package consoletest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// a11yAudit is run in the page: the keyboard and screen-reader basics the
// console promises (docs/console.md), as a list of findings (empty: none).
// Every form control has a label, every image a text alternative, every
// button a name; the page has a language, one h1 and a main landmark; and
// text meets WCAG AA contrast against the background it is drawn on
// (4.5:1, large text 3:1).
const a11yAudit = `(() => {
  const out = [];
  const visible = el => { const s = getComputedStyle(el); return s.display !== "none" && s.visibility !== "hidden" && el.getClientRects().length > 0; };
  const name = el => (el.getAttribute("aria-label") || "").trim() || (el.getAttribute("title") || "").trim();
  const where = el => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + (el.name ? "[name=" + el.name + "]" : "");
  if (!document.documentElement.lang) out.push("html has no lang");
  if (document.querySelectorAll("h1").length !== 1) out.push(document.querySelectorAll("h1").length + " h1 elements");
  if (!document.querySelector("main")) out.push("no main landmark");
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden" || el.type === "submit" || el.type === "button") continue;
    if ((el.labels && el.labels.length) || name(el) || el.getAttribute("aria-labelledby")) continue;
    out.push("unlabelled " + where(el));
  }
  for (const el of document.querySelectorAll("img")) if (!el.hasAttribute("alt")) out.push("img without alt: " + el.src);
  for (const el of document.querySelectorAll("button, a[href]")) {
    if (visible(el) && !el.textContent.trim() && !name(el) && !el.querySelector("img[alt]:not([alt=''])")) out.push("no accessible name: " + where(el));
  }
  const rgb = c => { const m = c.match(/[\d.]+/g); return m ? m.map(Number) : [0, 0, 0, 0]; };
  const lum = ([r, g, b]) => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }; return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const background = el => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length < 4 || c[3] > 0.5) return c;
    }
    return [255, 255, 255];
  };
  let checked = 0;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!n.textContent.trim() || !el || !visible(el) || el.closest("svg, .skip, .sr")) continue;
    const s = getComputedStyle(el);
    const fg = lum(rgb(s.color)), bg = lum(background(el));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    const size = parseFloat(s.fontSize), bold = parseInt(s.fontWeight, 10) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    checked++;
    if (ratio < need) out.push("contrast " + ratio.toFixed(2) + " < " + need + ": " + where(el) + " " + JSON.stringify(n.textContent.trim().slice(0, 40)));
  }
  if (checked === 0) out.push("no text checked");
  return out.slice(0, 20);
})()`

// TestConsoleAccessibility audits every screen of the console, as each
// kind of user sees it, and checks the keyboard path: the first Tab lands
// on "Skip to content", drawn with a visible focus outline.
func TestConsoleAccessibility(t *testing.T) {
	t.Parallel()
	ts := startConsoleServer(t)
	for _, who := range []struct {
		email string
		extra func(t *testing.T, c context.Context) []string // pages reached from the first ones
	}{
		{"order-desk@demo.example", func(t *testing.T, c context.Context) []string {
			browse(t, c, chromedp.Navigate(ts.URL+"/console/queue?role=order_desk"))
			fu := "/console/followups/" + firstRow(t, c, "-erp_entry")
			browse(t, c, chromedp.Navigate(ts.URL+fu), chromedp.WaitVisible(chromedp.CSS("#fu-status")))
			order := eval[string](t, c, `(document.querySelector("a[href^='/console/orders/']") || {getAttribute: () => ""}).getAttribute("href")`)
			return []string{fu, order}
		}},
		{"manager-1@demo.example", func(t *testing.T, c context.Context) []string {
			browse(t, c, chromedp.Navigate(ts.URL+"/console/visits?state=all"), chromedp.WaitVisible(chromedp.CSS("#review-form")))
			return eval[[]string](t, c, `[document.querySelector("tr[data-visit] a[href^='/console/visits/']"), document.querySelector("tr[data-visit] a[href^='/console/map']")].map(a => a ? a.getAttribute("href") : "")`)
		}},
		{"admin@demo.example", nil},
	} {
		t.Run(strings.TrimSuffix(who.email, "@demo.example"), func(t *testing.T) {
			t.Parallel()
			c := tab(t)
			signIn(t, c, ts.URL, who.email)
			waitJS(t, c, `document.querySelectorAll("header nav a[href]").length > 0`)
			pages := eval[[]string](t, c, `[...new Set([...document.querySelectorAll("header nav a[href]")].map(a => a.getAttribute("href")))]`)
			if len(pages) == 0 {
				t.Fatal("no navigation")
			}
			if who.extra != nil {
				for _, p := range who.extra(t, c) {
					if p == "" {
						t.Fatalf("a page to audit is missing among %v", pages)
					}
					pages = append(pages, p)
				}
			}
			for _, p := range pages {
				browse(t, c, chromedp.Navigate(ts.URL+p), chromedp.WaitReady(chromedp.CSS("main")))
				if got := eval[[]string](t, c, a11yAudit); len(got) > 0 {
					t.Errorf("%s as %s:\n  %s", p, who.email, strings.Join(got, "\n  "))
				}
			}
			// The keyboard: the first Tab reaches "Skip to content", which
			// shows, with an outline, and leads to the main content.
			browse(t, c, chromedp.Navigate(ts.URL+pages[0]), chromedp.WaitReady(chromedp.CSS("main")), chromedp.KeyEvent(kb.Tab))
			type focus struct {
				Class, Outline string
				Left           float64
			}
			f := eval[focus](t, c, `(() => { const e = document.activeElement, s = getComputedStyle(e); return {Class: e.className, Outline: s.outlineStyle + " " + s.outlineWidth, Left: e.getBoundingClientRect().left}; })()`)
			if f.Class != "skip" || strings.HasPrefix(f.Outline, "none") || f.Left < 0 {
				t.Errorf("the first Tab focuses %+v, want the skip link, visible, with an outline", f)
			}
			browse(t, c, chromedp.KeyEvent(kb.Enter))
			waitJS(t, c, fmt.Sprintf(`location.hash === %q`, "#main"))
		})
	}
}
