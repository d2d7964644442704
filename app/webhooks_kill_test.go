package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/patience"
	"github.com/fieldsync/fieldsync/jwtauth"
	"github.com/fieldsync/fieldsync/webhook"
)

// TestWebhookSIGKILLMidDelivery: the real binary is SIGKILLed while its
// dispatcher waits for the endpoint's answer; started again on the same
// data directory it sends that delivery again (same webhook-id) once the
// dead instance's lease ran out, and every other event once: the endpoint,
// deduping by webhook-id, processes each event exactly once, and every
// delivery ends sent.
func TestWebhookSIGKILLMidDelivery(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	flags := []string{"--webhooks-allow-loopback", "--webhooks-poll", "20ms", "--webhooks-backoff", "20ms",
		"--webhooks-max-backoff", "500ms", "--webhooks-timeout", "5s", "--webhooks-lease", "2s",
		"--password-memory", "64", "--password-time", "1", "--password-threads", "1"}
	p := startBinary(t, data, flags...)
	keys, err := jwtauth.LoadOrCreate(data)
	if err != nil {
		t.Fatal(err)
	}
	w := newWFWorldOn(t, &accWorld{T: t, Server: &testServer{URL: p.URL, Data: data, Keys: keys}})

	var mu sync.Mutex
	var secret string
	received := map[string]int{} // webhook-id -> requests
	processed := map[string]bool{}
	bad := 0
	inFlight := make(chan string, 1)
	killed := make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		id := r.Header.Get(webhook.HeaderID)
		mu.Lock()
		if webhook.Verify(r.Header, body, secret, time.Now(), 0) != nil {
			bad++
		}
		received[id]++
		first := len(received) == 1 && received[id] == 1
		mu.Unlock()
		if first {
			// Hold the first delivery until its sender is dead.
			inFlight <- id
			<-killed
		}
		mu.Lock()
		processed[id] = true // the subscriber's dedupe: a second arrival changes nothing
		mu.Unlock()
		rw.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hs.Close)
	var sub whReply
	json.Unmarshal(w.Admin("acme", "POST", "/webhooks", map[string]any{"url": hs.URL + "/",
		"events": []string{"follow_up.created", "order.status_changed"}}, 201), &sub)
	mu.Lock()
	secret = sub.Secret
	mu.Unlock()

	w.submitOffline(t, "o-1", orderLines(0))
	var held string
	select {
	case held = <-inFlight:
	case <-time.After(max(time.Minute, patience.Of(t))):
		t.Fatal("no delivery reached the endpoint")
	}
	p.cmd.Process.Kill() // SIGKILL, mid-delivery
	<-p.done
	close(killed)

	p2 := startBinary(t, data, flags...)
	w.Server.URL = p2.URL
	// 5 follow-ups created and the order submitted: 6 events.
	list := allSent(t, w.accWorld, sub.ID, 6)
	mu.Lock()
	defer mu.Unlock()
	if bad != 0 {
		t.Errorf("%d deliveries failed verification", bad)
	}
	if received[held] < 2 {
		t.Errorf("the delivery in flight at the kill (%s) arrived %d times, want again after the restart", held, received[held])
	}
	for _, d := range list {
		if !processed[d.ID] {
			t.Errorf("%s: sent but never processed", d.ID)
		}
	}
	if len(processed) != len(list) {
		t.Errorf("the endpoint processed %d events, the store holds %d deliveries", len(processed), len(list))
	}
}
