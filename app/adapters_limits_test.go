package app_test

// The library adapters' limits over plain HTTP: a page larger than
// --max-page-size and a body larger than --max-body are refused with a
// stable code that names what was too large; a push larger than
// --max-mutations is not a limit (the adapter splits it, as libraries push
// everything they have at once).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/app"
	"github.com/fieldsync/fieldsync/internal/patience"
)

func TestAdapterLimits(t *testing.T) {
	t.Parallel()
	const maxBody = 64 << 10
	w := newAccWorld(t, func(testing.TB) func(*app.Config) {
		return func(c *app.Config) { c.MaxBody, c.Limits.MaxMutations = maxBody, 50 }
	})
	createCustomer(t, w.Server.URL, w.Operator("acme"), "c-1", "r1")
	tok := w.Token("acme", "r1", "rep")
	wm := w.Server.URL + "/v1/adapters/watermelondb/sync"
	rx := w.Server.URL + "/v1/adapters/rxdb/customer_notes/1"
	maxPage := app.Defaults().Limits.MaxPageSize

	big := strings.Repeat("x", maxBody)
	wmNote := func(id, text string) string {
		return fmt.Sprintf(`{"id":%q,"customer_id":"c-1","text":%q,"fs_created_at":"2026-12-02T10:00:00Z","_status":"created","_changed":""}`, id, text)
	}
	rxNote := func(id, text string) string {
		return fmt.Sprintf(`{"newDocumentState":{"id":%q,"customer_id":"c-1","text":%q,"created_at":"2026-12-02T10:00:00Z","_deleted":false}}`, id, text)
	}
	for _, c := range []struct {
		name, method, url, body string
		status                  int
		code, pointer, says     string
	}{
		{"watermelondb page over the maximum", "GET", fmt.Sprintf("%s?limit=%d", wm, maxPage+1), "", 400, "limit_out_of_range", "/limit", fmt.Sprint(maxPage)},
		{"watermelondb page not a number", "GET", wm + "?limit=all", "", 400, "limit_out_of_range", "/limit", "positive"},
		{"rxdb batch over the maximum", "GET", fmt.Sprintf("%s/pull?limit=%d", rx, maxPage+1), "", 400, "limit_out_of_range", "/limit", fmt.Sprint(maxPage)},
		{"rxdb batch of zero", "GET", rx + "/pull?limit=0", "", 400, "limit_out_of_range", "/limit", "positive"},
		{"watermelondb push over the body limit", "POST", wm + "?device_id=d1",
			`{"changes":{"customer_notes":{"created":[` + wmNote("n-big", big) + `],"updated":[],"deleted":[]}},"lastPulledAt":null}`,
			413, "body_too_large", "", fmt.Sprint(maxBody)},
		{"rxdb push over the body limit", "POST", rx + "/push", `[` + rxNote("n-big", big) + `]`, 413, "body_too_large", "", fmt.Sprint(maxBody)},
	} {
		var body []byte
		if c.body != "" {
			body = []byte(c.body)
		}
		st, raw := answerOf(t, c.method, c.url, tok, body, nil)
		var e errorReply
		json.Unmarshal(raw, &e)
		if st != c.status || e.Error.Code != c.code || e.Error.Pointer != c.pointer || !strings.Contains(e.Error.Message, c.says) {
			t.Errorf("%s: %d %s, want %d %s at %q saying %q", c.name, st, raw, c.status, c.code, c.pointer, c.says)
		}
	}
	if _, ok := w.Visible(tok)["customer_notes/n-big"]; ok {
		t.Fatal("a refused body was applied")
	}

	// 120 notes in one push of each library, 50 mutations a push: split,
	// every one applied.
	var wmRows, rxRows []string
	for i := range 120 {
		wmRows = append(wmRows, wmNote(fmt.Sprintf("wm-%03d", i), "split"))
		rxRows = append(rxRows, rxNote(fmt.Sprintf("rx-%03d", i), "split"))
	}
	st, raw := doRaw(t, "POST", wm+"?device_id=d1", tok,
		[]byte(`{"changes":{"customer_notes":{"created":[`+strings.Join(wmRows, ",")+`],"updated":[],"deleted":[]}},"lastPulledAt":null}`))
	if st != 200 || !strings.Contains(string(raw), `"rejected":[]`) {
		t.Fatalf("watermelondb push of 120: %d %s", st, raw)
	}
	req := []byte(`[` + strings.Join(rxRows, ",") + `]`)
	st, raw = answerOf(t, "POST", rx+"/push", tok, req, map[string]string{"X-Device-Id": "d2"})
	if st != 200 || string(raw) != "[]" {
		t.Fatalf("rxdb push of 120: %d %s", st, raw)
	}
	n := 0
	for k := range w.Visible(tok) {
		if strings.HasPrefix(k, "customer_notes/") {
			n++
		}
	}
	if n != 240 {
		t.Fatalf("%d notes on the server, want 240", n)
	}
}

// answerOf sends a request (with extra headers) until an answer arrives.
// The server answers a body over its limit 413 and closes the connection
// without reading the rest, so the client may see the connection reset
// instead of the answer (fasthttp has no lingering close); the request is
// then sent again, within the test's patience.
func answerOf(t *testing.T, method, url, tok string, body []byte, headers map[string]string) (int, []byte) {
	t.Helper()
	give := time.Now().Add(patience.Of(t))
	for {
		req, err := http.NewRequest(method, url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			raw, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				return resp.StatusCode, raw
			}
		}
		if time.Now().After(give) {
			t.Fatalf("%s %s: no answer within the test's patience: %v", method, url, err)
		}
	}
}
