package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"
)

// health probes a running server. It exists because the runtime image has
// no shell and no curl for a HEALTHCHECK to call.
func health(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	describe(fs, stderr, "usage: fieldsync health [--url URL] [--timeout 2s]\n\nExits 0 when the server answers 200 at --url, 1 otherwise: the container's\nhealth check (the runtime image has no shell or curl).\n")
	url := fs.String("url", "http://127.0.0.1:8080/healthz", "health endpoint to probe")
	timeout := fs.Duration("timeout", 2*time.Second, "give up after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c := &http.Client{Timeout: *timeout}
	resp, err := c.Get(*url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", *url, resp.Status)
	}
	return nil
}
