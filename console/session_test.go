package console

import (
	"strings"
	"testing"
	"time"
)

// The session cookie: it opens only as sealed, by this key, and is live
// only before its expiry; the CSRF token is bound to the session.
func TestSessionCookie(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	key := []byte(strings.Repeat("k", 32))
	cs := &Console{cfg: Config{Key: key, Now: func() time.Time { return now }}}
	cl := claims{Org: "demo", User: "order-desk", Session: "s-1", Expires: now.Add(time.Hour).Unix()}
	v := cs.seal(cl)
	if got, ok := cs.open(v); !ok || got != cl {
		t.Fatalf("open(seal) = %+v %v", got, ok)
	}
	body, sig, _ := strings.Cut(v, ".")
	admin := cl
	admin.User = "admin"
	forgedBody, _, _ := strings.Cut(cs.seal(admin), ".")
	forged := forgedBody + "." + sig // another user's claims under this signature
	for name, bad := range map[string]string{
		"empty": "", "no signature": body, "forged claims": forged, "garbage": "x.y",
		"another key": (&Console{cfg: Config{Key: []byte(strings.Repeat("o", 32)), Now: cs.cfg.Now}}).seal(cl),
	} {
		if _, ok := cs.open(bad); ok {
			t.Errorf("%s: opened", name)
		}
	}
	if !cs.live(cl) {
		t.Error("not live before its expiry")
	}
	later := &Console{cfg: Config{Key: key, Now: func() time.Time { return now.Add(time.Hour) }}}
	if got, ok := later.open(v); !ok || later.live(got) {
		t.Errorf("at its expiry: open %v, live %v; want it opened (to say the session ended) and not live", ok, later.live(got))
	}
	if cs.csrfToken("s-1") == cs.csrfToken("s-2") || cs.csrfToken("s-1") != cs.csrfToken("s-1") {
		t.Error("the CSRF token is not bound to the session")
	}
}
