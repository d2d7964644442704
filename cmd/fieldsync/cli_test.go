package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/internal/apptest"
)

// cli runs the fieldsync command in-process, as main would, with stdin.
func cli(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = runWith(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// TestCLIUsers drives the admin commands against a running server: the
// first admin is created with a token minted from the data directory's key,
// then signs in with the password given on stdin; list, disable and the
// error and usage exits follow.
func TestCLIUsers(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, "", apptest.FastSignIn)
	op := []string{"--server", ts.URL, "--data", ts.Data, "--org", "acme"}

	code, out, errs := cli(t, apptest.Password+"\n", append([]string{"user", "add", "--id", "boss", "--email", "Boss@Acme.example",
		"--name", "The Boss", "--role", "admin,manager", "--password-stdin"}, op...)...)
	if code != 0 || !strings.Contains(out, "boss@acme.example") || !strings.Contains(out, "admin,manager") {
		t.Fatalf("user add: exit %d\n%s%s", code, out, errs)
	}
	if strings.Contains(out+errs, apptest.Password) {
		t.Errorf("the password was printed")
	}
	st, g, e := apptest.Login(t, ts.URL, "boss@acme.example", apptest.Password, "laptop")
	if st != 200 {
		t.Fatalf("the first admin signs in: %d %+v", st, e)
	}
	// From now on the admin's own token, by flag and by environment.
	tok := []string{"--server", ts.URL, "--token", g.AccessToken}
	if code, out, errs := cli(t, "", append([]string{"team", "add", "north", "--name", "North"}, tok...)...); code != 0 {
		t.Fatalf("team add: %d %s%s", code, out, errs)
	}
	code, out, errs = cli(t, "", append([]string{"user", "add", "--id", "ann", "--email", "ann@acme.example", "--role", "rep",
		"--team", "north"}, tok...)...)
	if code != 0 || !strings.Contains(errs, "no password set") || !strings.Contains(out, "no password") {
		t.Fatalf("user add without a password: %d\n%s%s", code, out, errs)
	}
	code, out, errs = cli(t, "", append([]string{"user", "list"}, tok...)...)
	if code != 0 || !strings.Contains(out, "ID") || !strings.Contains(out, "ann@acme.example") || !strings.Contains(out, "The Boss") {
		t.Fatalf("user list: %d\n%s%s", code, out, errs)
	}
	code, out, _ = cli(t, "", append([]string{"user", "list", "--json", "--team", "north"}, tok...)...)
	var list struct {
		Users []struct {
			ID    string   `json:"id"`
			Teams []string `json:"teams"`
		} `json:"users"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list.Users) != 1 || list.Users[0].ID != "ann" {
		t.Fatalf("user list --json --team north: %d %s", code, out)
	}

	// Disable: the flag may follow the id; ann's sessions end.
	if code, out, errs := cli(t, apptest.Password+"\n", append([]string{"user", "update", "ann", "--password-stdin"}, tok...)...); code != 0 {
		t.Fatalf("user update --password-stdin: %d %s%s", code, out, errs)
	}
	_, ann, _ := apptest.Login(t, ts.URL, "ann@acme.example", apptest.Password, "phone-1")
	code, out, errs = cli(t, "", "user", "disable", "ann", "--server", ts.URL, "--token", g.AccessToken)
	if code != 0 || !strings.Contains(out, "disabled") {
		t.Fatalf("user disable: %d\n%s%s", code, out, errs)
	}
	if st, _, e := apptest.Refresh(t, ts.URL, ann.RefreshToken); st != 401 || e.Error.Code != identity.CodeSessionRevoked {
		t.Errorf("ann's refresh after disable: %d %+v", st, e)
	}
	if st, _, e := apptest.Login(t, ts.URL, "ann@acme.example", apptest.Password, "phone-1"); st != 403 || e.Error.Code != identity.CodeUserDisabled {
		t.Errorf("ann's login after disable: %d %+v", st, e)
	}
	if code, _, _ := cli(t, "", append([]string{"user", "enable", "ann"}, tok...)...); code != 0 {
		t.Errorf("user enable: %d", code)
	}

	// Refusals exit 1 with the server's code; mistakes exit 2.
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{append([]string{"user", "add", "--email", "x@acme.example", "--role", "pilot", "--no-password"}, tok...), 1, "unknown_role"},
		{append([]string{"user", "disable", "nobody"}, tok...), 1, "not_found"},
		{append([]string{"team", "add", "north", "--name", "Again"}, tok...), 1, "team_exists"},
		{[]string{"user", "list", "--server", ts.URL, "--token", "not-a-token"}, 1, "token_invalid"},
		{[]string{"user", "list", "--server", ts.URL, "--data", ts.Data, "--org", "acme", "--token", "x"}, 2, "not both"},
		{[]string{"user", "list", "--server", ts.URL}, 2, "authenticate with"},
		{[]string{"user", "list", "--server", ts.URL, "--data", t.TempDir(), "--org", "acme"}, 1, "no signing key"},
		{append([]string{"user", "disable"}, tok...), 2, "exactly one user id"},
		{append([]string{"user", "fly"}, tok...), 2, "unknown command"},
		{append([]string{"user", "add", "--email", "x@acme.example"}, tok...), 2, "--role"},
		{append([]string{"user", "update", "ann", "--password-stdin"}, tok...), 2, "no password"},
	} {
		code, out, errs := cli(t, "", c.args...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("fieldsync %s: exit %d, stderr %q (stdout %q); want %d and %q", strings.Join(c.args[:2], " "), code, errs, out, c.code, c.want)
		}
	}
	// A rep's token is refused by the server, and so by the CLI.
	_, annAgain, _ := apptest.Login(t, ts.URL, "ann@acme.example", apptest.Password, "phone-1")
	if code, _, errs := cli(t, "", "user", "list", "--server", ts.URL, "--token", annAgain.AccessToken); code != 1 || !strings.Contains(errs, "forbidden") {
		t.Errorf("user list with a rep's token: %d %s", code, errs)
	}

	// Organisation, teams and devices.
	code, out, errs = cli(t, "", append([]string{"org", "set", "--name", "Acme Motors", "--time-zone", "Europe/Berlin"}, tok...)...)
	if code != 0 || !strings.Contains(out, "Europe/Berlin") {
		t.Errorf("org set: %d %s%s", code, out, errs)
	}
	if code, out, _ := cli(t, "", append([]string{"team", "rename", "north", "--name", "North-East"}, tok...)...); code != 0 || !strings.Contains(out, "North-East") {
		t.Errorf("team rename: %d %s", code, out)
	}
	if code, out, _ := cli(t, "", append([]string{"team", "list"}, tok...)...); code != 0 || !strings.Contains(out, "North-East") {
		t.Errorf("team list: %d %s", code, out)
	}
	code, out, _ = cli(t, "", append([]string{"device", "revoke", "--user", "ann", "--device", "phone-1"}, tok...)...)
	if code != 0 || !strings.Contains(out, "revoked 1 session") {
		t.Errorf("device revoke: %d %s", code, out)
	}
	if st, _, _ := apptest.Refresh(t, ts.URL, annAgain.RefreshToken); st != 401 {
		t.Errorf("refresh after device revoke: %d", st)
	}
}

// TestCLIServiceAccounts: the admin commands create, list, rotate and
// revoke a service account; the key printed once works until rotated away.
func TestCLIServiceAccounts(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, "", apptest.FastSignIn)
	op := []string{"--server", ts.URL, "--data", ts.Data, "--org", "acme"}
	keyOf := func(out string) string {
		i := strings.Index(out, "key: ")
		if i < 0 {
			t.Fatalf("no key printed:\n%s", out)
		}
		return strings.TrimSpace(out[i+len("key: "):])
	}
	code, out, errs := cli(t, "", append([]string{"service-account", "add", "--name", "ERP", "--role", "order_desk"}, op...)...)
	if code != 0 || !strings.Contains(out, "order_desk") || !strings.Contains(errs, "shown this once") {
		t.Fatalf("service-account add: %d\n%s%s", code, out, errs)
	}
	key1 := keyOf(out)
	id := strings.Split(strings.TrimPrefix(key1, "fsk_"), "_")[0]
	if s, raw := apptest.DoRaw(t, "GET", ts.URL+"/v1/me", key1, nil); s != 200 || !strings.Contains(string(raw), "svc:"+id) {
		t.Fatalf("the printed key: %d %s", s, raw)
	}
	code, out, errs = cli(t, "", append([]string{"service-account", "rotate", id, "--overlap", "0s"}, op...)...)
	if code != 0 {
		t.Fatalf("rotate: %d %s%s", code, out, errs)
	}
	key2 := keyOf(out)
	if s, _ := apptest.DoRaw(t, "GET", ts.URL+"/v1/me", key1, nil); s != 401 {
		t.Fatalf("the rotated-away key: %d", s)
	}
	if code, out, errs := cli(t, "", append([]string{"service-account", "revoke", id}, op...)...); code != 0 || !strings.Contains(out, "true") {
		t.Fatalf("revoke: %d %s%s", code, out, errs)
	}
	if s, _ := apptest.DoRaw(t, "GET", ts.URL+"/v1/me", key2, nil); s != 401 {
		t.Fatalf("the revoked key: %d", s)
	}
	if code, out, _ := cli(t, "", append([]string{"service-account", "list"}, op...)...); code != 0 || !strings.Contains(out, id) || strings.Contains(out, "fsk_") {
		t.Fatalf("list: %d %s", code, out)
	}
	if code, _, errs := cli(t, "", append([]string{"service-account", "add", "--name", "x", "--role", "admin"}, op...)...); code != 1 ||
		!strings.Contains(errs, "service_account_role") {
		t.Fatalf("an admin service account: %d %s", code, errs)
	}
}
