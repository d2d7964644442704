package consoletest

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/fieldsync/fieldsync/internal/testphoto"
)

// TestConsoleShowsPhotos: a rep's shelf photo on a visit and a photo on an
// order show as thumbnails on the manager's visit page and the order page, drawn
// through the console's session (no token in the browser).
func TestConsoleShowsPhotos(t *testing.T) {
	t.Parallel()
	ts := startConsoleServer(t)
	mgr := tab(t)
	signIn(t, mgr, ts.URL, "manager-1@demo.example")
	browse(t, mgr, chromedp.Navigate(ts.URL+"/console/visits?state=all"), chromedp.WaitVisible(chromedp.CSS("#review-form")))
	visit := eval[string](t, mgr, `document.querySelector("tr[data-visit]").dataset.visit`)
	rep := eval[string](t, mgr, `document.querySelector("tr[data-visit]").dataset.rep`)
	tok := ts.Token(t, "demo", rep, "rep")
	shelf := testphoto.JPEG(21, 60<<10)
	uploadVia(t, ts.URL, tok, map[string]any{"id": "att-shelf", "parent_collection": "visit_logs", "parent_id": visit,
		"filename": "shelf after.jpg", "content_type": "image/jpeg", "caption": "shelf after the visit"}, shelf)

	browse(t, mgr, chromedp.Navigate(ts.URL+"/console/visits/"+visit))
	waitJS(t, mgr, `(() => { const i = document.querySelector('li[data-attachment="att-shelf"] img'); return i && i.complete && i.naturalWidth === 128 })()`)
	if alt := eval[string](t, mgr, `document.querySelector('li[data-attachment="att-shelf"] img').alt`); alt != "shelf after the visit" {
		t.Fatalf("alt %q", alt)
	}
	screenshot(t, mgr, "visit-photos")
	// The original, through the session, as a download of the exact bytes.
	got := eval[string](t, mgr, `(() => { const x = new XMLHttpRequest(); x.open("GET", "/console/attachments/att-shelf/content", false);
		x.overrideMimeType("text/plain; charset=x-user-defined"); x.send();
		return x.status + " " + x.responseText.length + " " + x.getResponseHeader("Content-Disposition") })()`)
	if want := fmt.Sprintf(`200 %d attachment; filename="shelf after.jpg"`, len(shelf)); got != want {
		t.Fatalf("original through the console: %q, want %q", got, want)
	}

	// An order of the same rep, with a photo of the delivery.
	var r pullReply
	if st := do(t, "GET", ts.URL+"/v1/sync/pull?limit=1000", tok, nil, &r); st != 200 {
		t.Fatalf("pull: %d", st)
	}
	order := ""
	for _, c := range r.Changes {
		if c.Collection == "orders" && c.Op == "put" && !strings.Contains(string(c.Doc), `"status":"draft"`) {
			order = c.ID
			break
		}
	}
	if order == "" {
		// The demo simulates the days before today: on some days this rep
		// has no order yet.
		order = submitOrder(t, ts, tok, rep)
	}
	damage := testphoto.JPEG(22, 60<<10)
	uploadVia(t, ts.URL, tok, map[string]any{"id": "att-order", "parent_collection": "orders", "parent_id": order,
		"filename": "pallet.jpg", "content_type": "image/jpeg"}, damage)
	// The order page is the back office's (an admin here).
	adm := tab(t)
	signIn(t, adm, ts.URL, "admin@demo.example")
	browse(t, adm, chromedp.Navigate(ts.URL+"/console/orders/"+order))
	waitJS(t, adm, `(() => { const i = document.querySelector('li[data-attachment="att-order"] img'); return i && i.complete && i.naturalWidth === 128 })()`)
	// Without the session the thumbnail is not served.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(ts.URL + "/console/attachments/att-order/thumbnail")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == 200 || resp.Header.Get("Content-Type") == "image/jpeg" {
		t.Fatalf("thumbnail served without a session: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
