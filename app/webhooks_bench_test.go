package app_test

// Commit-to-delivery latency of webhooks (docs/benchmarks.md):
//
//	FIELDSYNC_WEBHOOK_BENCH=1 go test ./app -run TestWebhookLatency -v -timeout 10m

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/webhook"
)

// TestWebhookLatency pushes orders one after another from a rep's phone;
// each submitted order makes the workflow create five follow-ups, and the
// endpoint records, for every follow_up.created, the time from the
// follow-up's commit (its created_at) to the delivery's arrival. On SQLite,
// in-process server and endpoint, for two --webhooks-poll settings.
func TestWebhookLatency(t *testing.T) {
	if os.Getenv("FIELDSYNC_WEBHOOK_BENCH") == "" {
		t.Skip("a measurement, not a test: FIELDSYNC_WEBHOOK_BENCH=1 to run it")
	}
	for _, poll := range []time.Duration{50 * time.Millisecond, time.Second} {
		t.Run(poll.String(), func(t *testing.T) {
			ts := startServer(t, "", func(c *serveConfig) {
				fastSignIn(c)
				c.Webhooks.AllowLoopback, c.Webhooks.Poll = true, poll
			})
			w := newWFWorldOn(t, &accWorld{T: t, Server: ts})
			var mu sync.Mutex
			var lat []time.Duration
			hs := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				at := time.Now()
				body, _ := io.ReadAll(r.Body)
				var ev struct {
					Timestamp time.Time `json:"timestamp"`
				}
				json.Unmarshal(body, &ev)
				mu.Lock()
				lat = append(lat, at.Sub(ev.Timestamp))
				mu.Unlock()
				rw.WriteHeader(http.StatusNoContent)
			}))
			t.Cleanup(hs.Close)
			w.Admin("acme", "POST", "/webhooks", map[string]any{"url": hs.URL, "events": []string{webhook.EventFollowUpCreated}}, 201)
			const orders = 60
			start := time.Now()
			for i := range orders {
				id := fmt.Sprintf("o-%d", i)
				doc := orderLines(0)
				doc["status"] = "draft"
				w.pushAs("rep-1", mCreate("c-"+id, "orders", id, doc))
				w.pushAs("rep-1", mUpdate("s-"+id, "orders", id, 1, map[string]any{"status": "submitted"}))
			}
			waitFor(t, 5*time.Minute, "every follow_up.created", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(lat) >= orders*5
			})
			mu.Lock()
			defer mu.Unlock()
			slices.Sort(lat)
			q := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))].Round(time.Millisecond) }
			t.Logf("--webhooks-poll %v: %d deliveries in %v; commit to delivery p50 %v, p99 %v, max %v",
				poll, len(lat), time.Since(start).Round(time.Millisecond), q(0.5), q(0.99), lat[len(lat)-1].Round(time.Millisecond))
		})
	}
}
