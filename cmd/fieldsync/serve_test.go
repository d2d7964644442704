package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestCORSOriginsFlag(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"app.example.com", "ftp://x.example", "https://x.example/path", "https://a.example,*"} {
		if _, err := parseServe([]string{"--cors-origins", bad}, io.Discard); err == nil {
			t.Errorf("--cors-origins %q accepted", bad)
		}
	}
	c, err := parseServe([]string{"--cors-origins", "https://App.example.com, http://localhost:5173"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.CORSOrigins, " ") != "https://app.example.com http://localhost:5173" {
		t.Fatalf("origins %q", c.CORSOrigins)
	}
}

// TestEnvironmentOverrides is not parallel: it sets process environment.
func TestEnvironmentOverrides(t *testing.T) {
	t.Setenv("FIELDSYNC_ADDR", "127.0.0.1:9999")
	t.Setenv("FIELDSYNC_DATA", "/tmp/fs-env")
	t.Setenv("FIELDSYNC_MAX_MUTATIONS", "7")
	t.Setenv("FIELDSYNC_SHUTDOWN_TIMEOUT", "3s")
	c, err := parseServe(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:9999" || c.Data != "/tmp/fs-env" || c.Limits.MaxMutations != 7 || c.ShutdownTimeout != 3*time.Second {
		t.Errorf("environment not applied: %+v", c)
	}
	c, err = parseServe([]string{"--addr", "127.0.0.1:1", "--max-mutations", "9"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:1" || c.Limits.MaxMutations != 9 {
		t.Errorf("flags must win over the environment: %+v", c)
	}
	t.Setenv("FIELDSYNC_ADDR", "")
	c, _ = parseServe(nil, io.Discard)
	d, _ := parseServe([]string{}, io.Discard)
	if c.Addr != d.Addr {
		t.Errorf("inconsistent parse")
	}
}
