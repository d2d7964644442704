package consoletest

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fieldsync/fieldsync/demo"
)

// TestConsoleQueueUpdatesOverTheStream: an open queue page learns of a
// change from the server's live stream, not from polling. The server here
// polls so rarely (10 minutes) that only a poke can bring the dispatch step
// the order desk's completion makes actionable to the stores clerk's page,
// in place. The stream is the session's: without the cookie it is refused.
func TestConsoleQueueUpdatesOverTheStream(t *testing.T) {
	t.Parallel()
	ts := startServer(t, consoleDemo(t), func(c *serveConfig) {
		c.Console.Poll = 10 * time.Minute
		c.EscalationInterval = 0
	})
	actionableERPEntry(t, ts)

	var e errorReply
	if code := do(t, "GET", ts.URL+"/console/live", "", nil, &e); code != http.StatusUnauthorized || e.Error.Code != "unauthenticated" {
		t.Fatalf("the console stream without a session: %d %+v, want 401 unauthenticated", code, e)
	}

	desk := tab(t)
	signIn(t, desk, ts.URL, "order-desk@demo.example")
	fu := firstRow(t, desk, "-erp_entry")
	dispatch := strings.TrimSuffix(fu, "-erp_entry") + "-dispatch"

	stores := storesQueue(t, ts, dispatch)
	// The page's stream is open before the change commits (its first poke
	// refreshes the list once).
	waitJS(t, stores, `document.querySelector("#queue").dataset.stream === "open"`)

	_, g, le := login(t, ts, "order-desk@demo.example", demo.Password, "desk-api")
	if g.AccessToken == "" {
		t.Fatalf("order desk sign-in: %+v", le)
	}
	for _, step := range []struct{ action, body string }{{"claim", `{}`}, {"complete", `{"result":{"erp_number":"ERP-LIVE-1"}}`}} {
		if code := do(t, "POST", ts.URL+"/v1/followups/"+fu+"/"+step.action, g.AccessToken, []byte(step.body), &e); code != http.StatusOK {
			t.Fatalf("%s %s: %d %+v", step.action, fu, code, e)
		}
	}
	browse(t, stores, chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`tr[data-fu=%q]`, dispatch))))
	if eval[int](t, stores, `window.__noReload || 0`) != 1 {
		t.Fatal("the stores queue reloaded; it should update in place")
	}
}
