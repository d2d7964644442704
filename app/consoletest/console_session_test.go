package consoletest

// The console's session cookie (issue 13, point 2): its flags, and what a
// user sees when the session expires.

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/fieldsync/fieldsync/demo"
)

// consoleSessionTTL is the console session lifetime of TestConsoleSession's
// server (--console-session-ttl): long enough for a busy machine to show
// the first page, short enough to wait for.
const consoleSessionTTL = 8 * time.Second

// TestConsoleSession: the session cookie is HttpOnly and SameSite=Lax, and
// Secure when the request came over TLS (a proxy says so) or the server is
// told to (--console-secure-cookie); an open page whose session expires goes
// to the sign-in form, which says the session ended; and a browser still
// sending the expired cookie (its clock behind) is refused by the server.
func TestConsoleSession(t *testing.T) {
	t.Parallel()
	ts := startServer(t, consoleDemo(t), func(c *serveConfig) {
		c.Console.Poll = 200 * time.Millisecond
		c.Console.SessionTTL = consoleSessionTTL
		c.EscalationInterval = 0
	})

	t.Run("flags", func(t *testing.T) {
		t.Parallel()
		secure := startServer(t, consoleDemo(t), func(c *serveConfig) {
			c.Console.SecureCookie = true
			c.EscalationInterval = 0
		})
		for _, tc := range []struct {
			name   string
			base   string
			header http.Header
			secure bool
		}{
			{"plain HTTP", ts.URL, nil, false},
			{"TLS ended at a proxy", ts.URL, http.Header{"X-Forwarded-Proto": {"https"}}, true},
			{"--console-secure-cookie", secure.URL, nil, true},
		} {
			for _, ck := range signInCookies(t, tc.base, "billing@demo.example", tc.header) {
				if ck.Name != "fieldsync_console" && ck.Name != "fieldsync_console_login" {
					continue
				}
				if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/console" || ck.Secure != tc.secure {
					t.Errorf("%s: cookie %s is HttpOnly %v, SameSite %v, Path %q, Secure %v; want HttpOnly, SameSite=Lax, /console, Secure %v",
						tc.name, ck.Name, ck.HttpOnly, ck.SameSite, ck.Path, ck.Secure, tc.secure)
				}
				// The session lasts its TTL from the server's clock, whatever
				// the browser's: Max-Age, not only Expires.
				if ck.Name == "fieldsync_console" && ck.Value != "" && (ck.MaxAge <= 0 ||
					tc.base == ts.URL && (ck.MaxAge < int(consoleSessionTTL/time.Second)-1 || ck.MaxAge > int(consoleSessionTTL/time.Second)+1)) {
					t.Errorf("%s: the session cookie's Max-Age is %d, want the session's TTL in seconds", tc.name, ck.MaxAge)
				}
			}
		}
	})

	t.Run("expiry", func(t *testing.T) {
		t.Parallel()
		b := tab(t)
		before := time.Now()
		signIn(t, b, ts.URL, "billing@demo.example")
		waitJS(t, b, `location.pathname === "/console/queue" && document.querySelector("#queue .shown")`)
		after := time.Now()
		session := consoleCookie(t, b, ts.URL)
		if session == nil {
			t.Fatal("the browser holds no session cookie after signing in")
		}
		if !session.HTTPOnly || session.SameSite != network.CookieSameSiteLax || session.Secure {
			t.Errorf("the browser holds the session cookie as HttpOnly %v, SameSite %q, Secure %v; want HttpOnly, Lax, not Secure over plain HTTP",
				session.HTTPOnly, session.SameSite, session.Secure)
		}
		// Whole seconds, and Chromium moves the expiry by its clock's
		// difference from the reply's Date (also whole seconds).
		exp := time.Unix(int64(session.Expires), 0)
		if exp.Before(before.Add(consoleSessionTTL-time.Second)) || exp.After(after.Add(consoleSessionTTL+time.Second)) {
			t.Errorf("the session cookie expires at %v, want the sign-in (%v to %v) + %v", exp, before, after, consoleSessionTTL)
		}

		// The live queue stays open; when the session expires its next
		// refresh sends the user to the sign-in form, saying why.
		waitJS(t, b, `location.pathname === "/console/sign-in" && document.querySelector("#signin-error") &&
			document.querySelector("#signin-error").textContent.includes("session has ended")`)
		// The server's expiry is the sign-in's second + the TTL.
		if ended := time.Now(); ended.Before(before.Truncate(time.Second).Add(consoleSessionTTL)) {
			t.Fatalf("sent to sign in at %v, before the session could expire (signed in after %v, TTL %v)", ended, before, consoleSessionTTL)
		}
		browse(t, b, chromedp.Navigate(ts.URL+"/console/queue?role=billing"))
		waitJS(t, b, `location.pathname === "/console/sign-in"`)

		// A browser whose clock is behind still sends the expired cookie:
		// the server refuses it, and says the session ended.
		if _, err := chromedp.Call(b, network.SetCookie, network.SetCookieParams{Name: session.Name, Value: session.Value,
			URL: ts.URL + "/console/", Path: "/console", HTTPOnly: ptr(true), SameSite: network.CookieSameSiteLax}); err != nil {
			t.Fatal(err)
		}
		browse(t, b, chromedp.Navigate(ts.URL+"/console/queue?role=billing"))
		waitJS(t, b, `location.pathname === "/console/sign-in" && document.querySelector("#signin-error") &&
			document.querySelector("#signin-error").textContent.includes("session has ended")`)
		if c := consoleCookie(t, b, ts.URL); c != nil {
			t.Errorf("the server left the expired session cookie in the browser: %+v", c)
		}
		if n := eval[int](t, b, `document.querySelectorAll("#queue").length`); n != 0 {
			t.Fatal("the expired session was shown the queue")
		}
	})
}

func ptr[T any](v T) *T { return &v }

// consoleCookie is the browser's console session cookie for base, or nil.
func consoleCookie(t *testing.T, b context.Context, base string) *network.Cookie {
	t.Helper()
	res, err := chromedp.Call(b, network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/console/"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Cookies {
		if c.Name == "fieldsync_console" {
			return c
		}
	}
	return nil
}

// signInCookies signs email in over plain HTTP with a client of its own
// (console pages are not the JSON API the default client checks), sending
// header with each request, and returns the cookies the sign-in set: the
// sign-in form's and the session's.
func signInCookies(t *testing.T, base, email string, header http.Header) []*http.Cookie {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	send := func(req *http.Request) (*http.Response, string) {
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(body)
	}
	req, _ := http.NewRequest("GET", base+"/console/sign-in", nil)
	form, body := send(req)
	tok := regexp.MustCompile(`name="_csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if tok == nil {
		t.Fatalf("no sign-in token in %.300s", body)
	}
	req, _ = http.NewRequest("POST", base+"/console/sign-in",
		strings.NewReader(url.Values{"_csrf": {tok[1]}, "email": {email}, "password": {demo.Password}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, ck := range form.Cookies() {
		req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
	}
	resp, _ := send(req)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/" {
		t.Fatalf("sign-in of %s answered %d to %q, want 303 to /console/", email, resp.StatusCode, resp.Header.Get("Location"))
	}
	cookies := append(form.Cookies(), resp.Cookies()...)
	var session bool
	for _, ck := range cookies {
		session = session || (ck.Name == "fieldsync_console" && ck.Value != "")
	}
	if !session {
		t.Fatalf("the sign-in of %s set no session cookie: %v", email, cookies)
	}
	return cookies
}
