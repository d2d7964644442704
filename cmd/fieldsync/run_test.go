package main

import (
	"bytes"
	"github.com/fieldsync/fieldsync/internal/apptest"
	"strings"
	"testing"
)

// TestRun covers the command line: version, usage errors, token.
func TestRun(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	if code := run(t.Context(), []string{"version"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "protocol 1") {
		t.Errorf("version: %d %q", code, out.String())
	}
	if code := run(t.Context(), []string{"frobnicate"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Errorf("unknown command: %d %q", code, errb.String())
	}
	if code := run(t.Context(), nil, &out, &errb); code != 2 {
		t.Errorf("no command: %d", code)
	}
	errb.Reset()
	if code := run(t.Context(), []string{"token", "--data", t.TempDir()}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "--org") {
		t.Errorf("token without org: %d %q", code, errb.String())
	}
	errb.Reset()
	if code := run(t.Context(), []string{"serve", "--log-format", "xml"}, &out, &errb); code != 2 {
		t.Errorf("serve with a bad log format: %d %q", code, errb.String())
	}
	// A token minted by the command verifies against the same data directory.
	data := t.TempDir()
	out.Reset()
	if code := run(t.Context(), []string{"token", "--any-user", "--data", data, "--org", "o", "--user", "u", "--role", "rep,manager", "--ttl", "1h"}, &out, &errb); code != 0 {
		t.Fatalf("token: %d %s", code, errb.String())
	}
	ts := apptest.Start(t, data, nil)
	actor, err := ts.Keys.Verify(strings.TrimSpace(out.String()))
	if err != nil || actor.Org != "o" || actor.User != "u" || len(actor.Roles) != 2 || actor.Roles[1] != "manager" {
		t.Errorf("minted token: %+v %v", actor, err)
	}
}
