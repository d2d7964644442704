package consoletest

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestConsoleAdminManagesUsers: an admin adds a user, who signs in to the
// console at once; changes their roles and teams; sets a new password,
// which ends the user's session. Every refusal (a short password, a taken
// email) is shown at its field and changes nothing.
func TestConsoleAdminManagesUsers(t *testing.T) {
	t.Parallel()
	ts := startConsoleServer(t)
	admin := tab(t)
	signIn(t, admin, ts.URL, "admin@demo.example")
	browse(t, admin, chromedp.Navigate(ts.URL+"/console/admin/users"), chromedp.WaitVisible(chromedp.CSS("#add-user")))
	users := eval[int](t, admin, `document.querySelectorAll("tr[data-user]").length`)

	// A first password too short: refused at its field, nothing created.
	browse(t, admin,
		chromedp.SendKeys(chromedp.CSS("#add-name"), "Hanna <b>Berger</b>"),
		chromedp.SendKeys(chromedp.CSS("#add-email"), "hanna.berger@demo.example"),
		chromedp.Click(chromedp.CSS(`#add-roles label[data-role="order_desk"] input`)),
		chromedp.SendKeys(chromedp.CSS("#add-password"), "short"),
		chromedp.Click(chromedp.CSS("#add-user-button")))
	waitJS(t, admin, `!!document.querySelector("#add-password-error")`)
	if got := text(t, admin, "#add-password-error"); !strings.Contains(got, "10 characters") {
		t.Fatalf("short password refused with %q", got)
	}
	if n := eval[int](t, admin, `document.querySelectorAll("tr[data-user]").length`); n != users {
		t.Fatalf("%d users after a refused add, want %d", n, users)
	}
	// The form keeps what was typed (not the password) and the ticked role.
	if !eval[bool](t, admin, `document.querySelector("#add-name").value === "Hanna <b>Berger</b>" && document.querySelector('#add-roles label[data-role="order_desk"] input').checked && document.querySelector("#add-password").value === ""`) {
		t.Fatal("the refused form lost what was typed, or kept the password")
	}
	browse(t, admin, chromedp.SendKeys(chromedp.CSS("#add-password"), "a-first-password-1"), chromedp.Click(chromedp.CSS("#add-user-button")))
	waitJS(t, admin, `location.pathname.startsWith("/console/admin/users/") && !!document.querySelector("#edit-user")`)
	id := eval[string](t, admin, `location.pathname.split("/").pop()`)
	if got := text(t, admin, "h1"); got != "Hanna <b>Berger</b>" {
		t.Fatalf("the new user's page is titled %q", got)
	}

	// She signs in to the console and works the order desk's queue.
	hanna := tab(t)
	browse(t, hanna, chromedp.Navigate(ts.URL+"/console/sign-in"), chromedp.WaitVisible(chromedp.CSS("#email")),
		chromedp.SendKeys(chromedp.CSS("#email"), "hanna.berger@demo.example"),
		chromedp.SendKeys(chromedp.CSS("#password"), "a-first-password-1"),
		chromedp.Click(chromedp.CSS("button[type=submit]")))
	waitJS(t, hanna, `location.pathname === "/console/queue"`)

	// Another user's email: refused at its field; her roles stay as they
	// were. (The browser itself refuses what is not an email at all.)
	browse(t, admin,
		chromedp.Click(chromedp.CSS(`#edit-roles label[data-role="credit_control"] input`)),
		chromedp.SetValue(chromedp.CSS("#edit-email"), "order-desk@demo.example"),
		chromedp.Click(chromedp.CSS("#edit-user-button")))
	waitJS(t, admin, `!!document.querySelector("#edit-email-error")`)
	if got := text(t, admin, "#edit-email-error"); !strings.Contains(got, "belongs to another user") {
		t.Fatalf("a taken email refused with %q", got)
	}
	roles := func() string {
		var u struct {
			Roles []string `json:"roles"`
			Leads []string `json:"leads"`
		}
		if code := do(t, "GET", ts.URL+"/v1/admin/users/"+id, ts.Token(t, "demo", "admin", "admin"), nil, &u); code != http.StatusOK {
			t.Fatalf("GET user %s: %d", id, code)
		}
		return strings.Join(u.Roles, ",") + " leads " + strings.Join(u.Leads, ",")
	}
	if got := roles(); got != "order_desk leads " {
		t.Fatalf("after a refused edit the user has %q", got)
	}
	// Fixed: credit control added, and she leads the first team.
	team := eval[string](t, admin, `document.querySelector("#edit-leads input").value`)
	browse(t, admin,
		chromedp.SetValue(chromedp.CSS("#edit-email"), "hanna.berger@demo.example"),
		chromedp.Click(chromedp.CSS("#edit-leads input")),
		chromedp.Click(chromedp.CSS("#edit-user-button")))
	waitJS(t, admin, `!!document.querySelector("#user-saved")`)
	if got, want := roles(), "order_desk,credit_control leads "+team; got != want {
		t.Fatalf("after the edit the user has %q, want %q", got, want)
	}

	// A new password ends her session: her open queue page notices on its
	// next refresh and goes to the sign-in page, which says so; any page
	// she asks for then is the sign-in page.
	browse(t, admin, chromedp.SendKeys(chromedp.CSS("#new-password"), "a-second-password-2"), chromedp.Click(chromedp.CSS("#set-password-button")))
	waitJS(t, admin, `!!document.querySelector("#password-saved")`)
	waitJS(t, hanna, `location.pathname === "/console/sign-in" && location.search.includes("ended=1")`)
	browse(t, hanna, chromedp.Navigate(ts.URL+"/console/queue"))
	waitJS(t, hanna, `location.pathname === "/console/sign-in"`)
}
