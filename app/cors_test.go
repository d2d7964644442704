package app_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// CORS: none by default; with --cors-origins the listed origins get a
// correct preflight and the Access-Control headers, others get nothing.
func TestCORS(t *testing.T) {
	t.Parallel()
	closed := startServer(t, "", nil)
	open := startServer(t, "", func(c *serveConfig) { c.CORSOrigins = []string{"https://app.example.com"} })
	toks := map[string]string{closed.URL: closed.Token(t, "acme", "rep-1"), open.URL: open.Token(t, "acme", "rep-1")}
	cases := []struct {
		name, base, method, path, origin string
		preflight                        bool
		wantStatus                       int
		wantOrigin                       string // Access-Control-Allow-Origin; "" for none
	}{
		{"default: no preflight answer", closed.URL, "OPTIONS", "/v1/sync/push", "https://app.example.com", true, 0, ""},
		{"default: no header on a request", closed.URL, "GET", "/v1/me", "https://app.example.com", false, 200, ""},
		{"listed origin: preflight", open.URL, "OPTIONS", "/v1/sync/push", "https://app.example.com", true, 204, "https://app.example.com"},
		{"listed origin: preflight of an RxDB push", open.URL, "OPTIONS", "/v1/adapters/rxdb/customers/1/push", "https://app.example.com", true, 204, "https://app.example.com"},
		{"listed origin: request", open.URL, "GET", "/v1/me", "https://app.example.com", false, 200, "https://app.example.com"},
		{"other origin: preflight", open.URL, "OPTIONS", "/v1/sync/push", "https://evil.example", true, 0, ""},
		{"other origin: request", open.URL, "GET", "/v1/me", "https://evil.example", false, 200, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, c.base+c.path, nil)
			req.Header.Set("Origin", c.origin)
			if c.preflight {
				req.Header.Set("Access-Control-Request-Method", "POST")
				req.Header.Set("Access-Control-Request-Headers", "authorization,content-type,x-device-id")
			} else {
				req.Header.Set("Authorization", "Bearer "+toks[c.base])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if c.wantStatus != 0 && resp.StatusCode != c.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, c.wantStatus)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != c.wantOrigin {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", got, c.wantOrigin)
			}
			if resp.Header.Get("Access-Control-Allow-Credentials") != "" {
				t.Error("credentials are allowed: callers use bearer tokens, never cookies")
			}
			if c.preflight && c.wantOrigin != "" {
				methods := resp.Header.Get("Access-Control-Allow-Methods")
				headers := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers"))
				if !strings.Contains(methods, "POST") || !strings.Contains(headers, "authorization") || !strings.Contains(headers, "x-device-id") ||
					resp.Header.Get("Access-Control-Max-Age") != "600" {
					t.Errorf("preflight answer: methods %q headers %q max-age %q", methods, headers, resp.Header.Get("Access-Control-Max-Age"))
				}
			}
		})
	}
}
