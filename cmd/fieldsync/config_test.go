package main

import (
	"github.com/fieldsync/fieldsync/internal/apptest"
	"strings"
	"testing"
)

// TestInvalidEnvironmentIsAnError: a FIELDSYNC_* value the flag would
// refuse stops serve with exit status 2 and a message naming the variable,
// exactly as the flag does; it is never replaced by the default. Not
// parallel: it sets the process environment.
func TestInvalidEnvironmentIsAnError(t *testing.T) {
	for _, c := range []struct{ name, flag, value string }{
		{"FIELDSYNC_MAX_BODY", "--max-body", "lots"},
		{"FIELDSYNC_SHUTDOWN_TIMEOUT", "--shutdown-timeout", "soon"},
		{"FIELDSYNC_WORKFLOWS", "--workflows", "maybe"},
		{"FIELDSYNC_PUSH_OFF", "--push-off", "2"},
		{"FIELDSYNC_VISIT_RADIUS", "--visit-radius", "far"},
		{"FIELDSYNC_LOG_FORMAT", "--log-format", "xml"},
	} {
		t.Run(c.name, func(t *testing.T) {
			data := t.TempDir()
			code, _, errs := cli(t, "", "serve", "--data", data, c.flag+"="+c.value)
			if code != 2 || !strings.Contains(errs, c.flag[2:]) {
				t.Errorf("as a flag: exit %d, %q", code, errs)
			}
			t.Setenv(c.name, c.value)
			code, _, errs = cli(t, "", "serve", "--data", data)
			if code != 2 || !strings.Contains(errs, c.name) {
				t.Errorf("as %s: exit %d, %q; want 2 and the variable named", c.name, code, errs)
			}
		})
	}
}

// TestHelp: every command's -h says what it does and exits 0; serve's puts
// every flag in a named group.
func TestHelp(t *testing.T) {
	t.Parallel()
	for _, cmd := range [][]string{{"serve"}, {"token"}, {"health"}, {"demo"}, {"import"}, {"assign"}, {"user", "add"}} {
		code, out, errs := cli(t, "", append(cmd, "-h")...)
		if code != 0 || !strings.HasPrefix(out+errs, "usage") {
			t.Errorf("%s -h: exit %d, %q", cmd, code, out+errs)
		}
	}
	// Each admin command's -h says what it does.
	for name := range adminCommands {
		summary := adminSummaries[name]
		_, out, errs := cli(t, "", append(strings.Fields(name), "-h")...)
		if summary == "" || !strings.HasPrefix(out+errs, "usage of fieldsync "+name+": "+summary+"\n") {
			t.Errorf("%s -h does not say what it does: %q", name, out+errs)
		}
	}
	_, _, help := cli(t, "", "serve", "-h")
	for _, g := range []string{"network and logging:", "storage:", "identity and sign-in:", "push notifications:", "live stream:", "limits:"} {
		if !strings.Contains(help, "\n"+g+"\n") {
			t.Errorf("serve -h has no group %q", g)
		}
	}
	if strings.Contains(help, "\nother:\n") {
		t.Errorf("serve -h has flags in no group:\n%s", help[strings.Index(help, "\nother:\n"):])
	}
	if code, _, _ := cli(t, "", "serve", "--no-such-flag"); code != 2 {
		t.Errorf("an unknown flag: exit %d, want 2", code)
	}
}

// TestTokenRefusesUnknownUsers: with the server running (asked through the
// admin API) and with it stopped (the store read directly), a token is
// minted only for an existing, enabled user holding the roles asked for,
// unless --any-user says a made-up one is meant.
func TestTokenRefusesUnknownUsers(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, "", nil)
	op := []string{"--server", ts.URL, "--data", ts.Data, "--org", "acme"}
	if code, out, errs := cli(t, "", append([]string{"user", "add", "--id", "rep-1", "--email", "rep-1@acme.example", "--role", "rep", "--no-password"}, op...)...); code != 0 {
		t.Fatalf("user add: %d %s%s", code, out, errs)
	}
	check := func(when string) {
		t.Helper()
		for _, c := range []struct {
			args []string
			want string // "" for a token
		}{
			{[]string{"--org", "acme", "--user", "rep-1", "--role", "rep"}, ""},
			{[]string{"--org", "acme", "--user", "ghost", "--role", "rep"}, `has no user "ghost"`},
			{[]string{"--org", "acme", "--user", "rep-1", "--role", "admin"}, `does not hold role "admin"`},
			{[]string{"--org", "other", "--user", "rep-1", "--role", "rep"}, `"other" has no user "rep-1"`},
			{[]string{"--org", "other", "--user", "ghost", "--role", "admin", "--any-user"}, ""},
		} {
			code, out, errs := cli(t, "", append([]string{"token", "--data", ts.Data, "--server", ts.URL}, c.args...)...)
			switch {
			case c.want == "" && (code != 0 || strings.Count(out, ".") != 2):
				t.Errorf("%s, token %v: exit %d, %q %q", when, c.args, code, out, errs)
			case c.want != "" && (code != 1 || out != "" || !strings.Contains(errs, c.want)):
				t.Errorf("%s, token %v: exit %d, %q %q; want exit 1 and %q", when, c.args, code, out, errs, c.want)
			}
		}
	}
	check("server running")
	ts.Stop()
	check("server stopped")
}
