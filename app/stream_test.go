package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/patience"
	"github.com/fieldsync/fieldsync/stream"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// The live stream through the real server: every assertion is on the
// events a device receives, each awaited with a deadline.

// Every awaited event is bounded by the test's patience
// (internal/patience). The poke latency itself is asserted against
// pokeBound.
const pokeBound = 2 * time.Second // generous for a loaded CI box; measured figures are in docs/benchmarks.md

type sseEvent struct {
	Event, ID, Data string
	Comment         bool // a heartbeat
}

// sseStream is one open GET /v1/sync/stream.
type sseStream struct {
	t      testing.TB
	events chan sseEvent
	cancel context.CancelFunc
	body   io.Closer
}

// streamReq opens a stream and returns the response, whatever its status.
func streamReq(t testing.TB, base, token, query string, hdr map[string]string) (*http.Response, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/v1/sync/stream?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	return resp, cancel
}

// openStream opens a stream for device and waits for its ready event.
func openStream(t testing.TB, base, token, device, query string, hdr map[string]string) (*sseStream, int64) {
	t.Helper()
	q := "device_id=" + url.QueryEscape(device)
	if query != "" {
		q += "&" + query
	}
	resp, cancel := streamReq(t, base, token, q, hdr)
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("stream for %s: status %d: %s", device, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	s := &sseStream{t: t, events: make(chan sseEvent, 64), cancel: cancel, body: resp.Body}
	go s.read(resp.Body)
	t.Cleanup(s.close)
	ev := s.next()
	if ev.Event != "ready" {
		t.Fatalf("first event %+v, want ready", ev)
	}
	return s, dataHead(t, ev)
}

func (s *sseStream) close() {
	s.cancel()
	s.body.Close()
}

// read parses server-sent events until the body ends.
func (s *sseStream) read(r io.Reader) {
	defer close(s.events)
	sc := bufio.NewScanner(r)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.Event != "" || ev.Data != "" || ev.Comment {
				s.events <- ev
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, ":"):
			ev.Comment = true
		case strings.HasPrefix(line, "event: "):
			ev.Event = line[len("event: "):]
		case strings.HasPrefix(line, "id: "):
			ev.ID = line[len("id: "):]
		case strings.HasPrefix(line, "data: "):
			ev.Data = line[len("data: "):]
		}
	}
}

// next returns the next event (heartbeats included).
func (s *sseStream) next() sseEvent {
	s.t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			s.t.Fatalf("the stream ended")
		}
		return ev
	case <-time.After(patience.Of(s.t)):
		s.t.Fatalf("no event within %s", patience.Of(s.t))
	}
	return sseEvent{}
}

// event returns the next event that is not a heartbeat.
func (s *sseStream) event() sseEvent {
	s.t.Helper()
	for {
		if ev := s.next(); !ev.Comment {
			return ev
		}
	}
}

// poke returns the next event, which must be a poke, and its head.
func (s *sseStream) poke() int64 {
	s.t.Helper()
	ev := s.event()
	if ev.Event != "poke" {
		s.t.Fatalf("event %+v, want a poke", ev)
	}
	h := dataHead(s.t, ev)
	if ev.ID != strconv.FormatInt(h, 10) {
		s.t.Fatalf("poke id %q, head %d", ev.ID, h)
	}
	return h
}

// ended waits for the end event and then for the end of the body.
func (s *sseStream) ended(code string) {
	s.t.Helper()
	ev := s.event()
	var body struct{ Code, Message string }
	if ev.Event != "end" || json.Unmarshal([]byte(ev.Data), &body) != nil || body.Code != code {
		s.t.Fatalf("event %+v, want end %s", ev, code)
	}
	select {
	case _, ok := <-s.events:
		if ok {
			s.t.Fatal("an event after the end")
		}
	case <-time.After(patience.Of(s.t)):
		s.t.Fatal("the connection stayed open after the end event")
	}
}

func dataHead(t testing.TB, ev sseEvent) int64 {
	t.Helper()
	var d struct {
		Head *int64 `json:"head"`
	}
	if err := json.Unmarshal([]byte(ev.Data), &d); err != nil || d.Head == nil {
		t.Fatalf("event %+v: data without a head", ev)
	}
	return *d.Head
}

// noteOn pushes a note on customer as user (a rep of it).
func noteOn(t testing.TB, base, token, id, customer string) time.Time {
	t.Helper()
	body := mustJSON(t, map[string]any{"device_id": "phone", "mutations": []map[string]any{{
		"mutation_id": "m-" + id, "collection": "customer_notes", "id": id, "op": "create",
		"doc": map[string]any{"customer_id": customer, "text": "note " + id, "created_at": "2026-11-29T09:00:00Z"}}}})
	var r pushReply
	if st := do(t, "POST", base+"/v1/sync/push", token, body, &r); st != 200 || len(r.Results) != 1 || r.Results[0].Status != "applied" {
		t.Fatalf("push note %s: %d %+v", id, st, r)
	}
	return time.Now()
}

func TestStreamPokes(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "", nil)
	ts.Customer(t, "org-a", "c-1", "u-rep1")
	ts.Customer(t, "org-a", "c-2", "u-rep2")
	rep1, rep2 := ts.Token(t, "org-a", "u-rep1"), ts.Token(t, "org-a", "u-rep2")
	admin := ts.Token(t, "org-a", "u-admin", "admin")
	s1, ready := openStream(t, ts.URL, rep1, "rep1-phone", "", map[string]string{"Last-Event-ID": "0"})
	// Position 0: rep1 missed its customer, so it is poked at once.
	if h := s1.poke(); h < ready {
		t.Fatalf("catch-up poke at %d, before the ready head %d", h, ready)
	}
	sa, _ := openStream(t, ts.URL, admin, "console", "", nil)
	sa.poke() // no position: poked at once

	// rep2's note is outside rep1's scope. The admin sees it; once the
	// admin's poke is here the poller has passed it, so rep1's next poke
	// must be for something later.
	began := time.Now()
	noteOn(t, ts.URL, rep2, "n-2", "c-2")
	h2 := sa.poke()
	if d := time.Since(began); d > pokeBound {
		t.Errorf("admin poked %s after the push began", d)
	}
	began = time.Now()
	noteOn(t, ts.URL, rep1, "n-1", "c-1")
	h1 := s1.poke()
	if d := time.Since(began); d > pokeBound {
		t.Errorf("rep1 poked %s after the push began", d)
	}
	if h1 <= h2 {
		t.Fatalf("rep1 was poked at %d for rep2's note (committed at %d)", h1, h2)
	}
	// A pull from the poke's position is what the device does next.
	docs, _ := pullAll(t, ts.URL, rep1, "", 100)
	if _, ok := docs["customer_notes/n-1"]; !ok {
		t.Fatalf("the pull after the poke lacks the note: %v", docs)
	}
}

func TestStreamReconnect(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "", nil)
	ts.Customer(t, "org-a", "c-1", "u-rep1")
	rep1 := ts.Token(t, "org-a", "u-rep1")
	_, cp := pullAll(t, ts.URL, rep1, "", 100)

	// Up to date: no catch-up poke; the first poke is for the next change.
	s, ready := openStream(t, ts.URL, rep1, "phone", "checkpoint="+url.QueryEscape(cp), nil)
	noteOn(t, ts.URL, rep1, "n-1", "c-1")
	last := s.poke()
	if last <= ready {
		t.Fatalf("up-to-date device poked at %d, not past its ready head %d", last, ready)
	}
	s.close()

	// Missed a change while away: the checkpoint it pulled to is behind,
	// so it is poked at once on reconnect.
	noteOn(t, ts.URL, rep1, "n-2", "c-1")
	s2, ready2 := openStream(t, ts.URL, rep1, "phone", "checkpoint="+url.QueryEscape(cp), nil)
	// (The poke's head may pass the ready head: a commit can land between
	// the two.)
	h2 := s2.poke()
	if h2 < ready2 {
		t.Fatalf("catch-up poke at %d, before the ready head %d", h2, ready2)
	}
	s2.close()

	// The same with Last-Event-ID, as an EventSource reconnects.
	noteOn(t, ts.URL, rep1, "n-3", "c-1")
	s3, ready3 := openStream(t, ts.URL, rep1, "phone", "", map[string]string{"Last-Event-ID": strconv.FormatInt(h2, 10)})
	h3 := s3.poke()
	if h3 < ready3 {
		t.Fatalf("Last-Event-ID catch-up poke at %d, before the ready head %d", h3, ready3)
	}
	s3.close()
	// Last-Event-ID at the head: nothing to catch up.
	s4, ready4 := openStream(t, ts.URL, rep1, "phone", "", map[string]string{"Last-Event-ID": strconv.FormatInt(h3, 10)})
	noteOn(t, ts.URL, rep1, "n-4", "c-1")
	if h := s4.poke(); h <= ready4 {
		t.Fatalf("device at the head poked at %d, not past %d", h, ready4)
	}
}

func TestStreamHeartbeatAndShutdown(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "", func(c *serveConfig) { c.Stream.Heartbeat = 50 * time.Millisecond })
	rep1 := ts.Token(t, "org-a", "u-rep1")
	s, _ := openStream(t, ts.URL, rep1, "phone", "", map[string]string{"Last-Event-ID": "0"})
	for range 2 {
		if ev := s.next(); !ev.Comment {
			t.Fatalf("idle stream: %+v, want heartbeats", ev)
		}
	}
	var m string
	func() {
		resp, err := http.Get(ts.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		m = string(b)
	}()
	if !strings.Contains(m, "\nfieldsync_streams 1\n") {
		t.Errorf("metrics lack fieldsync_streams 1")
	}
	// Shutdown ends the stream with a reason and does not wait for it:
	// the shutdown timeout is 15 s.
	began := time.Now()
	ts.Stop()
	if d := time.Since(began); d > 3*time.Second {
		t.Errorf("shutdown with an open stream took %s", d)
	}
	s.ended(stream.CodeShuttingDown)
}

func TestStreamRefusals(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "", func(c *serveConfig) { c.Stream.MaxPerUser, c.Stream.MaxStreams = 2, 3 })
	ts.Customer(t, "org-a", "c-1", "u-rep1")
	rep1 := ts.Token(t, "org-a", "u-rep1")
	rep2 := ts.Token(t, "org-a", "u-rep2")
	twin := ts.Token(t, "org-b", "u-rep1") // same user id, another organisation
	_, cp := pullAll(t, ts.URL, rep1, "", 100)

	cases := []struct {
		name, token, query string
		hdr                map[string]string
		status             int
		code, pointer      string
	}{
		{"no token", "", "device_id=d", nil, 401, "unauthenticated", ""},
		{"bad token", "not-a-token", "device_id=d", nil, 401, "token_invalid", ""},
		{"no device", rep1, "", nil, 400, "invalid_request", "/device_id"},
		{"bad device", rep1, "device_id=a%20b", nil, 400, "invalid_request", "/device_id"},
		{"forged checkpoint", rep1, "device_id=d&checkpoint=abc.def", nil, 400, "bad_checkpoint", "/checkpoint"},
		{"another user's checkpoint", rep2, "device_id=d&checkpoint=" + url.QueryEscape(cp), nil, 400, "bad_checkpoint", "/checkpoint"},
		{"another org's checkpoint", twin, "device_id=d&checkpoint=" + url.QueryEscape(cp), nil, 400, "bad_checkpoint", "/checkpoint"},
		{"bad Last-Event-ID", rep1, "device_id=d", map[string]string{"Last-Event-ID": "x"}, 400, "invalid_request", "/Last-Event-ID"},
	}
	for _, c := range cases {
		resp, cancel := streamReq(t, ts.URL, c.token, c.query, c.hdr)
		var e errorReply
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		cancel()
		if resp.StatusCode != c.status || e.Error.Code != c.code || e.Error.Pointer != c.pointer {
			t.Errorf("%s: %d %+v, want %d %s at %q", c.name, resp.StatusCode, e.Error, c.status, c.code, c.pointer)
		}
	}

	// Limits: two devices per user, three streams per instance.
	a, _ := openStream(t, ts.URL, rep1, "d1", "", nil)
	openStream(t, ts.URL, rep1, "d2", "", nil)
	refused := func(token, device string, status int, code string) {
		t.Helper()
		resp, cancel := streamReq(t, ts.URL, token, "device_id="+device, nil)
		var e errorReply
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		cancel()
		if resp.StatusCode != status || e.Error.Code != code {
			t.Errorf("device %s: %d %+v, want %d %s", device, resp.StatusCode, e.Error, status, code)
		}
	}
	refused(rep1, "d3", 429, stream.CodeTooManyStreams)
	// The same device reconnecting replaces its old stream.
	openStream(t, ts.URL, rep1, "d1", "", nil)
	if ev := a.event(); ev.Event != "poke" { // the old stream's catch-up poke
		t.Fatalf("old stream: %+v", ev)
	}
	a.ended(stream.CodeReplaced)
	tw, _ := openStream(t, ts.URL, twin, "d1", "", nil) // the third stream
	refused(rep2, "d4", 503, stream.CodeStreamsFull)

	// The other organisation's device is never poked for org-a's changes:
	// its first poke after the catch-up is for its own organisation.
	tw.poke()
	noteOn(t, ts.URL, rep1, "n-1", "c-1")
	ts.Customer(t, "org-b", "c-b", "u-rep1")
	h := tw.poke()
	var r pullReply
	do(t, "GET", ts.URL+"/v1/sync/pull", twin, nil, &r)
	if len(r.Changes) != 1 || r.Changes[0].ID != "c-b" || h == 0 {
		t.Fatalf("the other org's device pulled %+v after its poke at %d", r.Changes, h)
	}
}

func TestStreamAcrossInstancesMongoDB(t *testing.T) {
	t.Parallel()
	tweak := onMongoDB(t)
	data := t.TempDir() // the same signing keys for both instances
	// Instance one polls once an hour: its streams hear of its own writes
	// through the store's wake-up only. Instance two polls every 50 ms.
	one := startServer(t, data, func(c *serveConfig) { tweak(c); c.Stream.Poll = time.Hour })
	two := startServer(t, data, tweak)
	one.Customer(t, "org-a", "c-1", "u-rep1")
	one.Customer(t, "org-a", "c-2", "u-rep2")
	rep1, rep2 := one.Token(t, "org-a", "u-rep1"), one.Token(t, "org-a", "u-rep2")
	_, cp := pullAll(t, one.URL, rep1, "", 100)
	s, ready := openStream(t, two.URL, rep1, "phone", "checkpoint="+url.QueryEscape(cp), nil)
	sa, _ := openStream(t, two.URL, two.Token(t, "org-a", "u-admin", "admin"), "console", "", nil)
	sa.poke()
	local, _ := openStream(t, one.URL, rep1, "tablet", "checkpoint="+url.QueryEscape(cp), nil)

	// rep2 writes through instance one: rep1 is not poked (see
	// TestStreamPokes for the reasoning).
	noteOn(t, one.URL, rep2, "n-2", "c-2")
	h2 := sa.poke()
	began := time.Now()
	noteOn(t, one.URL, rep1, "n-1", "c-1")
	h1 := s.poke()
	t.Logf("poke through the other instance %s after the push began", time.Since(began))
	if time.Since(began) > pokeBound {
		t.Errorf("poke took %s", time.Since(began))
	}
	if h1 <= h2 || h1 <= ready {
		t.Fatalf("rep1 poked at %d (ready %d, rep2's note %d)", h1, ready, h2)
	}
	// The device streaming from instance one hears of it by the wake-up
	// (its poller would not ask for an hour).
	if h := local.poke(); h < h1 {
		t.Fatalf("the stream on the writing instance was poked at %d, want %d", h, h1)
	}
	docs, _ := pullAll(t, two.URL, rep1, cp, 100)
	if _, ok := docs["customer_notes/n-1"]; !ok || len(docs) != 1 {
		t.Fatalf("the pull after the poke: %v", docs)
	}
}

func TestStreamClientGone(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "", func(c *serveConfig) { c.Stream.Heartbeat, c.Stream.MaxPerUser = 50*time.Millisecond, 1 })
	rep1 := ts.Token(t, "org-a", "u-rep1")
	s, _ := openStream(t, ts.URL, rep1, "old-phone", "", nil)
	s.close() // the device goes away without a word
	// Its place is freed within a heartbeat or two: another device of the
	// same user (one allowed) gets in.
	deadline := time.Now().Add(patience.Of(t))
	for {
		resp, cancel := streamReq(t, ts.URL, rep1, "device_id=new-phone", nil)
		resp.Body.Close()
		cancel()
		if resp.StatusCode == 200 {
			break
		}
		if resp.StatusCode != 429 || time.Now().After(deadline) {
			t.Fatalf("new device: status %d", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond) // retry pacing, not a condition
	}
}

func TestStreamFollowsTheDirectory(t *testing.T) {
	t.Parallel()
	fast := func(testing.TB) func(*serveConfig) {
		return func(c *serveConfig) { c.Stream.Heartbeat, c.Stream.Recheck = 50*time.Millisecond, 50*time.Millisecond }
	}
	w := newAccWorld(t, fast)
	const org = "org-dir"
	w.AddUser(org, accUser{ID: "r1", Roles: []string{"rep"}})
	tok := w.Token(org, "r1", "rep")
	s, _ := openStream(t, w.Server.URL, tok, "phone", "", nil)
	s.poke() // no position: poked at once

	// Made an admin: the read set grows (every document of the
	// organisation), so the stream is re-keyed and poked: the next pull
	// starts over.
	w.Admin(org, "PATCH", "/users/r1", map[string]any{"roles": []string{"admin"}}, 200)
	s.poke()
	// Disabled: the stream ends, and a new one is refused.
	w.Admin(org, "POST", "/users/r1/disable", nil, 200)
	s.ended(engine.CodeUserDisabled)
	resp, cancel := streamReq(t, w.Server.URL, tok, "device_id=phone", nil)
	var e errorReply
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	cancel()
	if resp.StatusCode != 403 || e.Error.Code != engine.CodeUserDisabled {
		t.Fatalf("a disabled user's stream: %d %+v", resp.StatusCode, e.Error)
	}
}
