package apptest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"testing"

	"github.com/fieldsync/fieldsync/app"
)

// Quiet is the configuration tweak of the in-process benchmarks: warnings
// only, and BENCH_SYNC (when set) as SQLite's synchronous pragma.
func Quiet(c *app.Config) {
	c.LogLevel = "warn"
	if s := os.Getenv("BENCH_SYNC"); s != "" {
		c.Synchronous = s
	}
}

// BenchPush pushes one batch and fails the benchmark unless every mutation
// was applied.
func BenchPush(b testing.TB, c *http.Client, url, tok string, body []byte) {
	if err := TryPush(c, url, tok, body); err != nil {
		b.Fatal(err)
	}
}

// TryPush pushes one batch and checks every mutation was applied; it
// returns an error instead of failing so goroutines can call it.
func TryPush(c *http.Client, url, tok string, body []byte) error {
	req, _ := http.NewRequest("POST", url+"/v1/sync/push", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	var r PushReply
	err = json.NewDecoder(resp.Body).Decode(&r)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		return fmt.Errorf("push: %d %v", resp.StatusCode, err)
	}
	for _, o := range r.Results {
		if o.Status != "applied" {
			return fmt.Errorf("push outcome %+v", o)
		}
	}
	return nil
}
