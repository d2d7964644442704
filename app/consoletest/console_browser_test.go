package consoletest

// The web console (docs/console.md) driven by a real headless Chromium
// (chromedp) against the real server on a real SQLite store loaded with the
// demo organisation. One browser process serves every test of this binary;
// each test opens tabs in browser contexts of its own (separate cookies), so
// the tests run in parallel.
//
// Chromium must be installed (.ci/run installs Debian's). Without it these
// tests fail with a message saying so, unless FIELDSYNC_SKIP_BROWSER=1 asks
// to skip them.
//
// FIELDSYNC_SCREENSHOTS=1 writes the screenshots of docs/console/ (README.md
// shows them).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/fieldsync/fieldsync/demo"
	"github.com/fieldsync/fieldsync/internal/apptest"
	"github.com/fieldsync/fieldsync/internal/patience"
)

// browserBudget bounds one test's browser work: generous for a busy 2-core
// machine, and longer when the test binary's deadline leaves room
// (internal/patience), as when two go test runs share the machine.
func browserBudget(t testing.TB) time.Duration { return max(2*time.Minute, patience.Of(t)) }

var (
	browserOnce   sync.Once
	browserRoot   context.Context
	browserErr    error
	stopBrowserFn func()
)

// stopBrowser ends the shared browser (TestMain).
func stopBrowser() {
	if stopBrowserFn != nil {
		stopBrowserFn()
	}
}

func chromiumPath() (string, error) {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no chromium on PATH")
}

// tab opens a tab in a fresh browser context of the shared browser: a
// browser of its own as far as cookies go. Any JavaScript dialog (alert,
// confirm) fails the test: nothing the console shows may run script.
func tab(t *testing.T) context.Context {
	t.Helper()
	browserOnce.Do(func() {
		path, err := chromiumPath()
		if err != nil {
			browserErr = err
			return
		}
		opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
			chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1280, 900))
		alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		root, cancelRoot := chromedp.NewContext(alloc)
		if err := chromedp.Do(root, chromedp.Navigate("about:blank")); err != nil {
			cancelRoot()
			cancelAlloc()
			browserErr = err
			return
		}
		browserRoot, stopBrowserFn = root, func() { cancelRoot(); cancelAlloc() }
	})
	if browserErr != nil {
		if os.Getenv("FIELDSYNC_SKIP_BROWSER") == "1" {
			t.Skipf("FIELDSYNC_SKIP_BROWSER=1 and no browser: %v", browserErr)
		}
		t.Fatalf("the console's browser tests need Chromium (apt-get install -y chromium; FIELDSYNC_SKIP_BROWSER=1 skips them): %v", browserErr)
	}
	ctx, cancel := chromedp.NewContext(browserRoot, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}
	var dialogs atomic.Value
	go func() {
		for ev, err := range chromedp.Events(ctx, page.JavascriptDialogOpening) {
			if err != nil {
				return
			}
			dialogs.Store(ev.Message)
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	t.Cleanup(func() {
		if m := dialogs.Load(); m != nil {
			t.Errorf("a JavaScript dialog opened: %q", m)
		}
	})
	tctx, tcancel := context.WithTimeout(ctx, browserBudget(t))
	t.Cleanup(tcancel)
	return tctx
}

// browse runs browser steps or fails the test.
func browse(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// eval evaluates a JavaScript expression in the page (DevTools' evaluation,
// not subject to the page's CSP).
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitJS waits until a JavaScript expression is true, checking every 50 ms
// until the test's browser deadline.
func waitJS(t *testing.T, ctx context.Context, expr string) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+expr+")"))
		if err == nil && ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", expr, ctx.Err())
		case <-tick.C:
		}
	}
}

// text is an element's text once it is visible.
func text(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	browse(t, ctx, chromedp.WaitVisible(chromedp.CSS(css)))
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(s)
}

// signIn signs email in with the demo password and waits for the next page.
func signIn(t *testing.T, ctx context.Context, base, email string) {
	t.Helper()
	browse(t, ctx,
		chromedp.Navigate(base+"/console/sign-in"),
		chromedp.WaitVisible(chromedp.CSS("#email")),
		chromedp.SendKeys(chromedp.CSS("#email"), email),
		chromedp.SendKeys(chromedp.CSS("#password"), demo.Password),
		chromedp.Click(chromedp.CSS("#signin")),
	)
	waitJS(t, ctx, `!location.pathname.endsWith("/sign-in") || document.querySelector(".message, #signin-error")`)
}

// screenshot saves the page as docs/console/<name>.png when
// FIELDSYNC_SCREENSHOTS=1.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if os.Getenv("FIELDSYNC_SCREENSHOTS") != "1" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("..", "..", "docs", "console") // from app/consoletest
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// The demo organisations, loaded once per test binary into a template
// directory that each test copies.
var (
	demoDirOnce sync.Once
	demoDir     string
	demoDirErr  error
)

// testTimeEnv sets the time the console tests run at: a time (RFC 3339) or
// an offset from now ("-13h"); unset, now. The demo's days end then and
// every server the tests start runs on a clock that starts there
// (app.Config.Clock). The demo's data follow its calendar day and hour in
// Europe/Berlin (which follow-ups are open, due or already escalated, how
// many working days lie in the last week), so a test that passes at noon
// may fail at midnight or on a Monday: a failing test prints its time, and
// setting it replays the run.
const testTimeEnv = "FIELDSYNC_TEST_TIME"

// The tests' clock: real time moved by testShift.
var (
	testShiftOnce sync.Once
	testShift     time.Duration
	testStart     time.Time // where the tests' clock started
	testShiftErr  error
)

func shift() (time.Duration, error) {
	testShiftOnce.Do(func() {
		now := time.Now()
		testStart = now.Truncate(time.Second) // printed to the second, so replayed exactly
		v := os.Getenv(testTimeEnv)
		if v == "" {
			testShift = testStart.Sub(now)
			return
		}
		if d, err := time.ParseDuration(v); err == nil {
			testStart = testStart.Add(d)
		} else if testStart, err = time.Parse(time.RFC3339, v); err != nil {
			testShiftErr = fmt.Errorf("%s=%q: want a time (RFC 3339) or an offset from now such as -13h", testTimeEnv, v)
			return
		}
		testShift = testStart.Sub(now)
	})
	return testShift, testShiftErr
}

// testNow is the time on the tests' clock, the one their servers run on.
func testNow() time.Time {
	d, _ := shift()
	return time.Now().Add(d)
}

// startServer starts a server (apptest.Start) on the tests' clock.
func startServer(t testing.TB, data string, tweak func(*serveConfig)) *testServer {
	t.Helper()
	if _, err := shift(); err != nil {
		t.Fatal(err)
	}
	return apptest.Start(t, data, func(c *serveConfig) {
		c.Clock = testNow
		if tweak != nil {
			tweak(c)
		}
	})
}

// consoleDemo returns a data directory of this test's own holding the demo
// organisation, whose days end where the tests' clock started.
func consoleDemo(t testing.TB) string {
	t.Helper()
	demoDirOnce.Do(func() {
		if _, demoDirErr = shift(); demoDirErr != nil {
			return
		}
		demoDir, demoDirErr = os.MkdirTemp("", "fieldsync-console-demo-")
		if demoDirErr != nil {
			return
		}
		// Five calendar days hold three working days or more whatever the
		// weekday: with three, a Tuesday's demo had only Monday's visits.
		o := demo.Options{Data: demoDir, Org: "demo", Seed: 1, Days: 5, Customers: 30, Anchor: testStart}
		_, demoDirErr = demo.Load(context.Background(), o, io.Discard, false)
	})
	if demoDirErr != nil {
		t.Fatalf("load the demo: %v", demoDirErr)
	}
	t.Cleanup(func() {
		if t.Failed() {
			local := testStart
			if z, err := time.LoadLocation(demoZone); err == nil {
				local = testStart.In(z)
			}
			t.Logf("the tests' clock and the demo's days started %s; replay with %s=%s",
				local.Format("Mon 2006-01-02 15:04:05 MST"), testTimeEnv, testStart.Format(time.RFC3339))
		}
	})
	dst := t.TempDir()
	err := filepath.WalkDir(demoDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || strings.HasSuffix(path, ".lock") {
			return err
		}
		rel, _ := filepath.Rel(demoDir, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// removeConsoleDemo removes the template directory (TestMain).
func removeConsoleDemo() {
	if demoDir != "" {
		os.RemoveAll(demoDir)
	}
}

// startConsoleServer serves a copy of the demo with a fast-polling console.
func startConsoleServer(t *testing.T) *testServer {
	t.Helper()
	ts := startServer(t, consoleDemo(t), func(c *serveConfig) {
		c.Console.Poll = 200 * time.Millisecond
		c.EscalationInterval = 0
	})
	actionableERPEntry(t, ts)
	return ts
}

// actionableERPEntry makes sure the order desk has an ERP entry it can work
// now. The demo simulates the days before today, so its state depends on
// the calendar: on some days every open ERP entry still waits for its
// availability check. Then demand planning completes one, over the API.
func actionableERPEntry(t *testing.T, ts *testServer) {
	t.Helper()
	as := func(email string) string {
		_, g, e := login(t, ts, email, demo.Password, "console-test")
		if g.AccessToken == "" {
			t.Fatalf("sign-in of %s: %+v", email, e)
		}
		return g.AccessToken
	}
	var list struct {
		FollowUps []struct {
			ID         string         `json:"id"`
			Actionable bool           `json:"actionable"`
			Doc        map[string]any `json:"doc"`
		} `json:"follow_ups"`
	}
	var e errorReply
	desk := as("order-desk@demo.example")
	var waiting []any
	openEntries := func() bool {
		list.FollowUps = nil
		if code := do(t, "GET", ts.URL+"/v1/followups?role=order_desk&status=open&limit=200", desk, nil, &list); code != http.StatusOK {
			t.Fatalf("the order desk's open follow-ups: %d", code)
		}
		for _, f := range list.FollowUps {
			if !strings.HasSuffix(f.ID, "-erp_entry") {
				continue
			}
			if f.Actionable {
				return true
			}
			if waiting == nil {
				waiting, _ = f.Doc["depends_on"].([]any)
			}
		}
		return false
	}
	if openEntries() {
		return
	}
	if len(waiting) == 0 {
		// Every ERP entry of the demo's days is done: a rep submits an
		// order, which the matrix routes.
		submitOrder(t, ts, as("rep-1@demo.example"), "rep-1")
		if openEntries() {
			return
		}
	}
	if len(waiting) == 0 {
		t.Fatalf("no open ERP entry, even after a rep submitted an order: %+v", list.FollowUps)
	}
	planner := as("demand-planning@demo.example")
	for _, dep := range waiting {
		body := mustJSON(t, map[string]any{"result": map[string]any{"available": "yes"}})
		if code := do(t, "POST", ts.URL+"/v1/followups/"+dep.(string)+"/complete", planner, body, &e); code != http.StatusOK {
			t.Fatalf("demand planning completes %s: %d %+v", dep, code, e)
		}
	}
}

// submitOrder submits, as rep (token tok), a new order ord-<rep>-console
// (the demo's order ids name their rep, as the tests read them) of one
// product for the first of rep's customers in good credit: the matrix
// routes it straight to availability check and ERP entry.
func submitOrder(t *testing.T, ts *testServer, tok, rep string) string {
	t.Helper()
	docs, _ := pullAll(t, ts.URL, tok, "", 1000)
	customer, product := "", ""
	for _, key := range slices.Sorted(maps.Keys(docs)) {
		var d struct {
			Credit string `json:"credit_status"`
			Active *bool  `json:"active"`
		}
		json.Unmarshal(docs[key], &d)
		coll, id, _ := strings.Cut(key, "/")
		switch {
		case coll == "customers" && customer == "" && (d.Credit == "" || d.Credit == "ok"):
			customer = id
		case coll == "products" && product == "" && (d.Active == nil || *d.Active):
			product = id
		}
	}
	if customer == "" || product == "" {
		t.Fatalf("%s has no customer in good credit (%q) or no product (%q)", rep, customer, product)
	}
	id := "ord-" + rep + "-console"
	doc := map[string]any{"customer_id": customer, "currency": "EUR", "status": "submitted",
		"lines": []map[string]any{{"product_id": product, "quantity": 2}}}
	mut := map[string]any{"mutation_id": "m-" + id, "collection": "orders", "id": id, "op": "create", "doc": doc}
	var pr pushReply
	if code := do(t, "POST", ts.URL+"/v1/sync/push", tok, mustJSON(t, push("console-test", mut)), &pr); code != http.StatusOK ||
		pr.Results[0].Status != "applied" {
		t.Fatalf("%s submits an order: %d %+v", rep, code, pr)
	}
	return id
}

// storesQueue opens the stores clerk's queue in a tab of its own, before
// the dispatch step is actionable, and marks the page so that a reload
// shows (the live tests want the step to appear without one).
func storesQueue(t *testing.T, ts *testServer, dispatch string) context.Context {
	t.Helper()
	stores := tab(t)
	signIn(t, stores, ts.URL, "stores@demo.example")
	waitJS(t, stores, `location.pathname === "/console/queue" && document.querySelector("#queue .shown")`)
	if eval[bool](t, stores, fmt.Sprintf(`!!document.querySelector('tr[data-fu=%q]')`, dispatch)) {
		t.Fatalf("%s is actionable before the ERP entry is done", dispatch)
	}
	eval[int](t, stores, `window.__noReload = 1`)
	return stores
}

// firstRow returns the follow-up id of the first open (unclaimed) row of
// the open queue page whose id ends with suffix. Which of the demo's
// follow-ups are open depends on the calendar day in the demo's time zone;
// actionableERPEntry makes sure an open ERP entry exists.
func firstRow(t *testing.T, ctx context.Context, suffix string) string {
	t.Helper()
	sel := fmt.Sprintf(`tr[data-fu$=%q][data-status="open"]`, suffix)
	browse(t, ctx, chromedp.WaitVisible(chromedp.CSS(sel)))
	return eval[string](t, ctx, fmt.Sprintf(`document.querySelector(%q).getAttribute("data-fu")`, sel))
}

// mainHTML opens url and returns its main element's HTML, to compare pages.
func mainHTML(t *testing.T, ctx context.Context, url string) string {
	t.Helper()
	browse(t, ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("main")))
	return eval[string](t, ctx, `document.querySelector("main").innerHTML`)
}
