package consoletest

// The console's integration pages (issue 15): an admin manages service
// accounts and webhook subscriptions in a real headless Chromium against
// the real server on the demo organisation, through the same services and
// rules as the admin API. Keys and secrets are shown once; another
// organisation's ids are the missing page; only admins see the pages.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fieldsync/fieldsync/webhook"
)

// postFrom posts a form from the page's origin with the session's cookie
// (and its CSRF token when csrf is true) and returns the status; a redirect
// (a form's success) is 0.
func postFrom(t *testing.T, ctx context.Context, path string, csrf bool) int {
	t.Helper()
	token := `""`
	if csrf {
		token = `document.querySelector('input[name=_csrf]').value`
	}
	st, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf(`fetch(%q, {method: "POST", redirect: "manual",
		body: new URLSearchParams({_csrf: %s})}).then(r => r.status)`, path, token), chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// reloadUntil opens url again until a JavaScript expression holds on it.
func reloadUntil(t *testing.T, ctx context.Context, url, expr string) {
	t.Helper()
	deadline := time.Now().Add(browserBudget(t) / 2)
	for {
		browse(t, ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("main")))
		if eval[bool](t, ctx, "!!("+expr+")") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s never held", url, expr)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestConsoleServiceAccounts(t *testing.T) {
	t.Parallel()
	ts := startConsoleServer(t)
	admin := tab(t)
	signIn(t, admin, ts.URL, "admin@demo.example")
	page := ts.URL + "/console/admin/service-accounts"
	works := func(key string) int {
		st, _ := doRaw(t, "GET", ts.URL+"/v1/followups?role=order_desk&limit=1", key, nil)
		return st
	}

	// No role: refused at its field, nothing made.
	browse(t, admin, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("#add-account")),
		chromedp.SendKeys(chromedp.CSS("#account-name"), "ERP connector"), chromedp.Click(chromedp.CSS("#add-account-button")))
	waitJS(t, admin, `document.querySelector("#account-roles-error")`)
	if n := eval[int](t, admin, `document.querySelectorAll("tr[data-account]").length`); n != 0 {
		t.Fatalf("%d accounts after a refused form", n)
	}
	// A form without the session's CSRF token changes nothing.
	if st := postFrom(t, admin, "/console/admin/service-accounts", false); st != http.StatusForbidden {
		t.Fatalf("a POST without the CSRF token: %d, want 403", st)
	}

	browse(t, admin, chromedp.Click(chromedp.CSS(`label[data-role="order_desk"] input`)), chromedp.Click(chromedp.CSS("#add-account-button")))
	waitJS(t, admin, `document.querySelector("#secret")`)
	k1 := eval[string](t, admin, `document.querySelector("#secret").value`)
	if !strings.HasPrefix(k1, "fsk_") {
		t.Fatalf("the key shown is %q", k1)
	}
	if st := works(k1); st != 200 {
		t.Fatalf("the new key: %d", st)
	}
	browse(t, admin, chromedp.Click(chromedp.CSS("#secret-done")), chromedp.WaitVisible(chromedp.CSS("#rotate")))
	account := page + "/" + eval[string](t, admin, `location.pathname.split("/").pop()`)
	for _, u := range []string{account, page} {
		if html := mainHTML(t, admin, u); strings.Contains(html, k1) || strings.Contains(html, k1[len(k1)-20:]) {
			t.Fatalf("%s shows the key again", u)
		}
	}
	if got := text(t, admin, `tr[data-account] td:nth-child(3)`); got != "order_desk" {
		t.Fatalf("the account's roles read %q", got)
	}

	// Rotation: a bad overlap is refused at its field; with an hour's
	// overlap both keys work, with none only the newest.
	browse(t, admin, chromedp.Navigate(account), chromedp.WaitVisible(chromedp.CSS("#overlap")),
		chromedp.SetValue(chromedp.CSS("#overlap"), "soon"), chromedp.Click(chromedp.CSS("#rotate-button")))
	waitJS(t, admin, `document.querySelector("#overlap-error")`)
	browse(t, admin, chromedp.SetValue(chromedp.CSS("#overlap"), "1"), chromedp.Click(chromedp.CSS("#rotate-button")))
	waitJS(t, admin, `document.querySelector("#secret")`)
	k2 := eval[string](t, admin, `document.querySelector("#secret").value`)
	if k2 == k1 || works(k1) != 200 || works(k2) != 200 {
		t.Fatalf("during the overlap: old %d, new %d", works(k1), works(k2))
	}
	browse(t, admin, chromedp.Click(chromedp.CSS("#secret-done")), chromedp.WaitVisible(chromedp.CSS("#rotate")))
	browse(t, admin, chromedp.WaitVisible(chromedp.CSS("#account-prev")))
	browse(t, admin, chromedp.SetValue(chromedp.CSS("#overlap"), "0"), chromedp.Click(chromedp.CSS("#rotate-button")))
	waitJS(t, admin, `document.querySelector("#secret")`)
	k3 := eval[string](t, admin, `document.querySelector("#secret").value`)
	if works(k1) != 401 || works(k2) != 401 || works(k3) != 200 {
		t.Fatalf("after a rotation without overlap: %d %d %d, want 401 401 200", works(k1), works(k2), works(k3))
	}

	// Another organisation's account is the missing page, and cannot be revoked.
	other := ts.Token(t, "other", "operator", "admin")
	var theirs saReply
	st, raw := doRaw(t, "POST", ts.URL+"/v1/admin/service-accounts", other, mustJSON(t, map[string]any{"name": "Their ERP", "roles": []string{"order_desk"}}))
	if st != 201 || json.Unmarshal(raw, &theirs) != nil {
		t.Fatalf("other org's account: %d %s", st, raw)
	}
	missing := mainHTML(t, admin, ts.URL+"/console/no-such-page")
	if got := mainHTML(t, admin, page+"/"+theirs.ID); got != missing {
		t.Errorf("another organisation's account page differs from the missing page")
	}
	browse(t, admin, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("#add-account")))
	if st := postFrom(t, admin, "/console/admin/service-accounts/"+theirs.ID+"/revoke", true); st != http.StatusNotFound {
		t.Errorf("revoking another organisation's account: %d, want 404", st)
	}
	if works(theirs.Key) != 200 {
		t.Errorf("another organisation's key stopped working")
	}

	// Revocation stops the key at once.
	browse(t, admin, chromedp.Navigate(account), chromedp.WaitVisible(chromedp.CSS("#revoke-button")), chromedp.Click(chromedp.CSS("#revoke-button")))
	waitJS(t, admin, `document.querySelector("#account-status") && document.querySelector("#account-status").textContent.startsWith("revoked")`)
	if works(k3) != 401 {
		t.Fatalf("the revoked key still works")
	}
	if eval[bool](t, admin, `!!document.querySelector("#rotate")`) {
		t.Errorf("a revoked account offers a rotation")
	}

	// Only admins: the order desk gets the missing page.
	desk := tab(t)
	signIn(t, desk, ts.URL, "order-desk@demo.example")
	if got := mainHTML(t, desk, page); got != mainHTML(t, desk, ts.URL+"/console/no-such-page") {
		t.Errorf("the order desk sees the service accounts page")
	}
}

// hookEndpoint is a subscriber's endpoint: it verifies each delivery with
// every secret it is given (so during a rotation each must sign) and fails
// with 500 while failing is set.
type hookEndpoint struct {
	mu      sync.Mutex
	secrets []string
	failing bool
	bad     int
	got     map[string][]int // webhook-id -> statuses answered
}

func (h *hookEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	status := http.StatusNoContent
	for _, s := range h.secrets {
		if webhook.Verify(r.Header, body, s, testNow(), 0) != nil {
			h.bad++
			status = http.StatusUnauthorized
		}
	}
	if status == http.StatusNoContent && h.failing {
		status = http.StatusInternalServerError
	}
	id := r.Header.Get(webhook.HeaderID)
	h.got[id] = append(h.got[id], status)
	w.WriteHeader(status)
}

func (h *hookEndpoint) answers(id string) []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got[id])
}

func TestConsoleWebhooks(t *testing.T) {
	t.Parallel()
	ts := startServer(t, consoleDemo(t), func(c *serveConfig) {
		c.Console.Poll, c.EscalationInterval = 200*time.Millisecond, 0
		c.Webhooks.AllowLoopback, c.Webhooks.Poll = true, 20*time.Millisecond
		c.Webhooks.BaseBackoff, c.Webhooks.MaxBackoff = 20*time.Millisecond, 200*time.Millisecond
		// The third failure both kills the delivery and disables the
		// subscription with its reason.
		c.Webhooks.MaxAttempts, c.Webhooks.DisableAfter, c.Webhooks.FailingFor = 3, 3, time.Millisecond
	})
	ep := &hookEndpoint{failing: true, got: map[string][]int{}}
	hs := httptest.NewServer(ep)
	t.Cleanup(hs.Close)
	admin := tab(t)
	signIn(t, admin, ts.URL, "admin@demo.example")
	page := ts.URL + "/console/admin/webhooks"

	// A metadata address is refused at its field, nothing subscribed.
	browse(t, admin, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("#add-webhook")),
		chromedp.SendKeys(chromedp.CSS("#webhook-url"), "http://169.254.169.254/latest"),
		chromedp.Click(chromedp.CSS(`label[data-event="device.registered"] input`)), chromedp.Click(chromedp.CSS("#add-webhook-button")))
	waitJS(t, admin, `document.querySelector("#webhook-url-error")`)
	if n := eval[int](t, admin, `document.querySelectorAll("tr[data-webhook]").length`); n != 0 {
		t.Fatalf("%d subscriptions after a refused form", n)
	}
	if !eval[bool](t, admin, `document.querySelector('label[data-event="device.registered"] input').checked`) {
		t.Errorf("the refused form lost its ticked event")
	}
	browse(t, admin, chromedp.SetValue(chromedp.CSS("#webhook-url"), hs.URL+"/erp"),
		chromedp.Click(chromedp.CSS(`label[data-role="order_desk"] input`)), chromedp.Click(chromedp.CSS("#add-webhook-button")))
	waitJS(t, admin, `document.querySelector("#secret")`)
	s1 := eval[string](t, admin, `document.querySelector("#secret").value`)
	if !strings.HasPrefix(s1, webhook.SecretPrefix) {
		t.Fatalf("the secret shown is %q", s1)
	}
	ep.mu.Lock()
	ep.secrets = []string{s1}
	ep.mu.Unlock()
	browse(t, admin, chromedp.Click(chromedp.CSS("#secret-done")), chromedp.WaitVisible(chromedp.CSS("#webhook-status")))
	sub := page + "/" + eval[string](t, admin, `location.pathname.split("/").pop()`)
	for _, u := range []string{page, sub} {
		if strings.Contains(mainHTML(t, admin, u), s1) {
			t.Fatalf("%s shows the secret again", u)
		}
	}

	// The order desk's tablet registers for pushes: device.registered goes
	// to the failing endpoint three times, then the delivery is dead and the
	// subscription disabled with its reason, both on the page.
	desk := ts.Token(t, "demo", "order-desk", "order_desk")
	if st, raw := doRaw(t, "POST", ts.URL+"/v1/devices", desk, mustJSON(t, map[string]any{"device_id": "desk-tablet",
		"token": "fcm-desk-tablet", "platform": "web", "app_version": "1.0"})); st != 200 {
		t.Fatalf("register a device: %d %s", st, raw)
	}
	reloadUntil(t, admin, sub, `document.querySelector("#webhook-status").textContent === "disabled" && document.querySelector('tr[data-status="dead"]')`)
	if reason := text(t, admin, "#webhook-reason"); !strings.Contains(reason, "consecutive failed deliveries") {
		t.Errorf("the disabled reason reads %q", reason)
	}
	row := `tr[data-status="dead"]`
	delivery := eval[string](t, admin, `document.querySelector('`+row+`').dataset.delivery`)
	if got := text(t, admin, row+" .attempts"); got != "3" {
		t.Errorf("the dead delivery shows %s attempts, want 3", got)
	}
	if got := text(t, admin, row+" .last-error"); !strings.Contains(got, "500") {
		t.Errorf("the dead delivery's last error reads %q", got)
	}
	screenshot(t, admin, "webhook")
	browse(t, admin, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("tr[data-webhook]")))
	if got := text(t, admin, `tr[data-webhook] .reason`); !strings.Contains(got, "consecutive failed deliveries") {
		t.Errorf("the list gives the reason as %q", got)
	}
	browse(t, admin, chromedp.Navigate(sub), chromedp.WaitVisible(chromedp.CSS("#webhook-status")))

	// Enabled again, the secret rotated with an hour's overlap (both sign),
	// the dead delivery sent again under its webhook-id.
	ep.mu.Lock()
	ep.failing = false
	ep.mu.Unlock()
	browse(t, admin, chromedp.Click(chromedp.CSS("#toggle-webhook")))
	waitJS(t, admin, `document.querySelector("#webhook-status").textContent === "enabled" && !document.querySelector("#webhook-reason")`)
	browse(t, admin, chromedp.SetValue(chromedp.CSS("#overlap"), "1"), chromedp.Click(chromedp.CSS("#rotate-button")))
	waitJS(t, admin, `document.querySelector("#secret")`)
	s2 := eval[string](t, admin, `document.querySelector("#secret").value`)
	ep.mu.Lock()
	ep.secrets = []string{s2, s1}
	ep.mu.Unlock()
	browse(t, admin, chromedp.Click(chromedp.CSS("#secret-done")), chromedp.WaitVisible(chromedp.CSS("#webhook-prev")))
	browse(t, admin, chromedp.Click(chromedp.CSS(`tr[data-delivery="`+delivery+`"] button`)))
	waitJS(t, admin, `document.querySelector("#redelivered")`)
	reloadUntil(t, admin, sub, `document.querySelector('tr[data-delivery="`+delivery+`"][data-status="sent"]')`)
	if a := ep.answers(delivery); len(a) != 4 || a[3] != http.StatusNoContent {
		t.Errorf("the endpoint answered %v to %s, want three 500s then 204", a, delivery)
	}
	ep.mu.Lock()
	if ep.bad != 0 {
		t.Errorf("%d signatures did not verify", ep.bad)
	}
	ep.mu.Unlock()
	// The status filter.
	browse(t, admin, chromedp.Navigate(sub+"?status=dead"), chromedp.WaitVisible(chromedp.CSS(".deliveries")))
	if eval[bool](t, admin, `!!document.querySelector("tr[data-delivery]")`) {
		t.Errorf("the dead filter lists a sent delivery")
	}

	// An admin disables it: the reason says so.
	browse(t, admin, chromedp.Navigate(sub), chromedp.WaitVisible(chromedp.CSS("#toggle-webhook")), chromedp.Click(chromedp.CSS("#toggle-webhook")))
	waitJS(t, admin, `document.querySelector("#webhook-reason") && document.querySelector("#webhook-reason").textContent === "disabled by an admin"`)

	// Another organisation's subscription is the missing page and cannot be touched.
	other := ts.Token(t, "other", "operator", "admin")
	var theirs whReply
	st, raw := doRaw(t, "POST", ts.URL+"/v1/admin/webhooks", other, mustJSON(t, map[string]any{"url": hs.URL + "/other", "events": []string{"device.registered"}}))
	if st != 201 || json.Unmarshal(raw, &theirs) != nil {
		t.Fatalf("other org's subscription: %d %s", st, raw)
	}
	if got, want := mainHTML(t, admin, page+"/"+theirs.ID), mainHTML(t, admin, ts.URL+"/console/no-such-page"); got != want {
		t.Errorf("another organisation's subscription page differs from the missing page")
	}
	browse(t, admin, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("#add-webhook")))
	for _, p := range []string{"/disable", "/rotate-secret", "/deliveries/" + delivery + "/redeliver"} {
		if st := postFrom(t, admin, "/console/admin/webhooks/"+theirs.ID+p, true); st != http.StatusNotFound {
			t.Errorf("POST %s on another organisation's subscription: %d, want 404", p, st)
		}
	}
	var after whReply
	if st := do(t, "GET", ts.URL+"/v1/admin/webhooks/"+theirs.ID, other, nil, &after); st != 200 || after.Disabled {
		t.Errorf("another organisation's subscription changed: %d %+v", st, after)
	}

	// Only admins.
	deskTab := tab(t)
	signIn(t, deskTab, ts.URL, "order-desk@demo.example")
	if got := mainHTML(t, deskTab, sub); got != mainHTML(t, deskTab, ts.URL+"/console/no-such-page") {
		t.Errorf("the order desk sees a webhook's page")
	}
}
