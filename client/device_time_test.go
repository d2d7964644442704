package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// TestPushCarriesDeviceTime: every attempt of a push carries the device's
// clock at sending (device_time), so a retried push is not corrected by a
// stale reading.
func TestPushCarriesDeviceTime(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var times []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			DeviceTime string `json:"device_time"`
			Mutations  []struct {
				ID string `json:"mutation_id"`
			} `json:"mutations"`
		}
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &req)
		mu.Lock()
		times = append(times, req.DeviceTime)
		n := len(times)
		mu.Unlock()
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"error":{"code":"unavailable","message":"try later"}}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"results":[{"mutation_id":%q,"status":"applied","version":1}]}`, req.Mutations[0].ID)
	}))
	t.Cleanup(srv.Close)
	// A device clock that advances a minute per reading.
	clock := time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		clock = clock.Add(time.Minute)
		return clock
	}
	var s sleeps
	c := newTestClient(t, Config{BaseURL: srv.URL, Now: now, Sleep: s.sleep, Jitter: -1})
	if err := c.Create("visit_logs", "v-1", map[string]any{"customer_id": "c-1",
		"check_in": map[string]any{"at": "2026-12-01T06:00:00Z"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Push(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"2026-12-01T06:01:00Z", "2026-12-01T06:02:00Z"}
	if len(times) != 2 || times[0] != want[0] || times[1] != want[1] {
		t.Errorf("device_time of the attempts = %q, want %q", times, want)
	}
}
