package consoletest

import (
	"fmt"
	"github.com/fieldsync/fieldsync/demo"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkConsole renders each console screen server-side on the demo
// organisation whose order desk has 5,000 more open follow-ups (raised by a
// rep through sync, routed by the workflow), over real HTTP with a signed-in
// session. Beside the pages, "api-followups" is the JSON listing of the same
// queue (GET /v1/followups): the cost of the data without the page. Each
// sub-benchmark reports its p95 in ms. docs/benchmarks.md has the command and
// figures.
func BenchmarkConsole(b *testing.B) {
	ts := startServer(b, consoleDemo(b), func(c *serveConfig) { c.EscalationInterval = 0; quiet(c) })
	rep := ts.Token(b, "demo", "rep-1", "rep")
	docs, _ := pullAll(b, ts.URL, rep, "", 500)
	var customer string
	for k := range docs {
		if id, ok := strings.CutPrefix(k, "customers/"); ok {
			customer = id
			break
		}
	}
	const queue, batch = 5000, 250
	for start := 0; start < queue; start += batch {
		var muts []map[string]any
		for i := start; i < start+batch; i++ {
			id := fmt.Sprintf("bench-q-%05d", i)
			muts = append(muts, map[string]any{"mutation_id": "m-" + id, "collection": "follow_ups", "id": id, "op": "create",
				"doc": map[string]any{"activity": "delivery_status_query", "customer_id": customer,
					"description": fmt.Sprintf("Customer asks about delivery %d", i)}})
		}
		benchPush(b, http.DefaultClient, ts.URL, rep, mustJSON(b, push("bench-phone", muts...)))
	}

	desk := consoleClient(b, ts.URL, "order-desk@demo.example")
	mgr := consoleClient(b, ts.URL, "manager-1@demo.example")
	page := func(c *http.Client, path string) string {
		resp, err := c.Get(ts.URL + path)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("GET %s: %d %.300s", path, resp.StatusCode, body)
		}
		return string(body)
	}
	q := page(desk, "/console/queue?role=order_desk")
	fu := regexp.MustCompile(`href="/console/followups/([^"]+)"`).FindStringSubmatch(q)
	orderLink := regexp.MustCompile(`href="/console/orders/([^"]+)"`)
	ord := orderLink.FindStringSubmatch(page(desk, "/console/queue?role=order_desk&view=waiting"))
	for _, query := range []string{"status=open", "status=done"} {
		// On days when no ERP entry of the demo waits, another follow-up
		// of the order desk names an order it sees.
		if ord != nil {
			break
		}
		var list struct {
			FollowUps []struct {
				Doc struct {
					OrderID string `json:"order_id"`
				} `json:"doc"`
			} `json:"follow_ups"`
		}
		do(b, "GET", ts.URL+"/v1/followups?role=order_desk&limit=200&"+query, ts.Token(b, "demo", "order-desk", "order_desk"), nil, &list)
		for _, f := range list.FollowUps {
			if f.Doc.OrderID != "" {
				ord = []string{"", f.Doc.OrderID}
				break
			}
		}
	}
	visits := page(mgr, "/console/visits?state=all")
	mapURL := regexp.MustCompile(`href="(/console/map\?[^"]+)"`).FindStringSubmatch(visits)
	if fu == nil || ord == nil || mapURL == nil {
		b.Fatalf("the demo pages lack a follow-up (%v), an order (%v) or a map link (%v)", fu != nil, ord != nil, mapURL != nil)
	}
	deskTok := ts.Token(b, "demo", "order-desk", "order_desk")
	screens := []struct {
		name string
		c    *http.Client
		path string
	}{
		{"queue", desk, "/console/queue?role=order_desk"},
		{"queue-live", desk, "/console/queue/live?role=order_desk&view=actionable"},
		{"queue-waiting", desk, "/console/queue?role=order_desk&view=waiting"},
		{"followup", desk, "/console/followups/" + fu[1]},
		{"order", desk, "/console/orders/" + ord[1]},
		{"visits", mgr, "/console/visits?state=all"},
		{"map", mgr, strings.ReplaceAll(mapURL[1], "&amp;", "&")},
		{"kpis", mgr, "/console/kpis"},
	}
	for _, s := range screens {
		b.Run(s.name, func(b *testing.B) {
			var took []time.Duration
			for b.Loop() {
				t0 := time.Now()
				page(s.c, s.path)
				took = append(took, time.Since(t0))
			}
			reportP95(b, took)
		})
	}
	mgrTok := ts.Token(b, "demo", "manager-1", "manager")
	today := testNow().Format(time.DateOnly)
	week := testNow().AddDate(0, 0, -6).Format(time.DateOnly)
	for _, api := range []struct{ name, tok, path string }{
		{"api-followups", deskTok, "/v1/followups?role=order_desk&actionable=true"},
		{"api-followups-waiting", deskTok, "/v1/followups?role=order_desk&actionable=false&status=open"},
		{"api-kpis", mgrTok, "/v1/kpis?team=stuttgart&from=" + week + "&to=" + today},
	} {
		b.Run(api.name, func(b *testing.B) {
			var took []time.Duration
			for b.Loop() {
				t0 := time.Now()
				if code := do(b, "GET", ts.URL+api.path, api.tok, nil, nil); code != 200 {
					b.Fatalf("%s: %d", api.path, code)
				}
				took = append(took, time.Since(t0))
			}
			reportP95(b, took)
		})
	}
}

func reportP95(b *testing.B, took []time.Duration) {
	slices.Sort(took)
	if len(took) > 0 {
		b.ReportMetric(float64(took[len(took)*95/100].Microseconds())/1000, "p95-ms")
	}
}

// consoleClient signs email in to the console and returns an HTTP client
// holding the session cookie.
func consoleClient(b *testing.B, base, email string) *http.Client {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.Get(base + "/console/sign-in")
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="_csrf" value="([^"]+)"`).FindSubmatch(body)
	if m == nil {
		b.Fatal("no sign-in token")
	}
	resp, err = c.PostForm(base+"/console/sign-in", url.Values{"_csrf": {string(m[1])}, "email": {email}, "password": {demo.Password}})
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Request.URL.Path, "/console/queue") {
		b.Fatalf("sign in %s: %d at %s", email, resp.StatusCode, resp.Request.URL)
	}
	return c
}
