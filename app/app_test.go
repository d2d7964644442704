package app

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/sqlite"
)

// TestStartServesAndStops starts the whole server on port 0 over a fresh
// data directory (the push and webhook runners off, so nothing polls), checks
// that it answers, that the banner on an empty store names the command that
// creates the first admin, and that ServeUntil returns cleanly once the
// context ends, with the store closed and the port released.
func TestStartServesAndStops(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	c := Defaults()
	c.Version, c.Addr, c.Data = "test", "127.0.0.1:0", data
	c.Hash = identity.HashParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	c.Push.Off, c.Webhooks.Off = true, true
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in, err := Start(ctx, c, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- in.ServeUntil(ctx, c.ShutdownTimeout) }()

	resp, err := http.Get(in.URL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /healthz: %s", resp.Status)
	}
	var banner bytes.Buffer
	in.Banner(ctx, &banner)
	for _, want := range []string{"fieldsync test is running", in.URL(), filepath.Join(data, DBFile), "no user yet", "user add --data " + data} {
		if !strings.Contains(banner.String(), want) {
			t.Errorf("the banner lacks %q:\n%s", want, banner.String())
		}
	}

	key, err := in.Store.Secret(ctx, "refresh-token-mac", 32)
	if err != nil {
		t.Fatal(err)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("ServeUntil: %v", err)
	}
	if _, err := http.Get(in.URL() + "/healthz"); err == nil {
		t.Error("the server still answers after ServeUntil returned")
	}
	// The store was closed: the file opens again and holds what Start
	// wrote (the secrets every instance shares).
	st, err := sqlite.Open(context.Background(), filepath.Join(data, DBFile), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if again, err := st.Secret(context.Background(), "refresh-token-mac", 32); err != nil || !bytes.Equal(again, key) {
		t.Errorf("the refresh key after shutdown: %v, same as before: %v", err, bytes.Equal(again, key))
	}
}

// TestLocalURL: a server listening on every interface is reached on the
// loopback address.
func TestLocalURL(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{
		"0.0.0.0:8080":   "http://127.0.0.1:8080",
		":9000":          "http://127.0.0.1:9000",
		"[::]:8080":      "http://127.0.0.1:8080",
		"10.0.0.5:8443":  "http://10.0.0.5:8443",
		"not an address": "http://127.0.0.1:8080",
	} {
		if got := LocalURL(addr); got != want {
			t.Errorf("LocalURL(%q) = %q, want %q", addr, got, want)
		}
	}
}
