package main

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/fieldsync/fieldsync/demo"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/app"
	"github.com/fieldsync/fieldsync/internal/apptest"
	"github.com/fieldsync/fieldsync/sqlite"
)

// TestDemo loads a small demo (7 days, 60 customers) through the command,
// then checks it through a real server the way a newcomer would: every
// role signs in with the printed password, a rep's pull brings their
// customers and visits, the order desk's queue has work, a manager's KPIs
// over the demo's days are not zero. A second run changes nothing, serve
// --demo leaves the loaded demo alone, and other flags on the same
// organisation are refused.
func TestDemo(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	args := []string{"demo", "--data", data, "--days", "7", "--customers", "60"}
	code, out, errs := cli(t, "", args...)
	if code != 0 || !strings.Contains(out, `Loaded demo organisation "demo"`) || !strings.Contains(out, demo.Password) ||
		!strings.Contains(errs, "demo: 100%") {
		t.Fatalf("fieldsync demo: exit %d\n%s%s", code, out, errs)
	}
	if strings.Contains(out, "were left out") {
		t.Errorf("a fresh demo left planned follow-up actions out:\n%s", out)
	}
	kpiURL := regexp.MustCompile(`kpis\?team=(\w+)&from=([0-9-]+)&to=([0-9-]+)"`).FindStringSubmatch(out)
	if kpiURL == nil {
		t.Fatalf("no KPI example in the output:\n%s", out)
	}
	_, users := demo.People("demo")
	for _, u := range users {
		if !strings.Contains(out, u.Email) {
			t.Errorf("%s is not among the printed sign-ins", u.Email)
		}
	}

	ts := apptest.Start(t, data, func(c *app.Config) { c.EscalationInterval = 0 })
	readmeDemo(t, out, ts.URL)
	tokens := map[string]string{}
	for _, u := range users {
		st, g, e := apptest.Login(t, ts.URL, u.Email, demo.Password, "laptop")
		if st != 200 || g.User.ID != u.ID || !slices.Equal(g.User.Roles, u.Roles) {
			t.Fatalf("%s signs in: %d %+v %+v", u.Email, st, g.User, e)
		}
		tokens[u.ID] = g.AccessToken
	}

	// A rep's first sync: their customers (and only theirs), with the
	// visits, plans and orders at those customers, and the catalogue.
	docs, _ := apptest.PullAll(t, ts.URL, tokens["rep-1"], "", 1000)
	n := map[string]int{}
	own := 0
	for key, raw := range docs {
		coll, id, _ := strings.Cut(key, "/")
		n[coll]++
		if coll == "customers" {
			var c struct {
				Reps []string `json:"assigned_reps"`
			}
			if json.Unmarshal(raw, &c) != nil || !slices.Contains(c.Reps, "rep-1") {
				t.Errorf("rep-1 pulled %s, not theirs: %s", key, raw)
			}
		}
		if coll == "visit_logs" && strings.HasPrefix(id, "vl-rep-1-") {
			own++
		}
	}
	if n["customers"] == 0 || n["customers"] >= 60 || own == 0 || n["visit_plans"] == 0 || n["products"] < 200 || n["price_lists"] != 3 {
		t.Errorf("rep-1's pull: %v, %d of their own visits", n, own)
	}

	// The order desk's queue holds the order follow-ups that are its own.
	var page struct {
		FollowUps []struct {
			Doc struct {
				Role     string `json:"responsible_role"`
				Activity string `json:"activity"`
			} `json:"doc"`
		} `json:"follow_ups"`
	}
	if st := apptest.Do(t, "GET", ts.URL+"/v1/followups?role=order_desk&limit=200", tokens["order-desk"], nil, &page); st != 200 || len(page.FollowUps) == 0 {
		t.Fatalf("order desk's queue: %d, %d follow-ups", st, len(page.FollowUps))
	}
	for _, f := range page.FollowUps {
		if f.Doc.Role != "order_desk" {
			t.Errorf("order desk's queue holds a follow-up of %s (%s)", f.Doc.Role, f.Doc.Activity)
		}
	}

	// The manager's KPIs over the demo's days, with the printed query.
	var kpis struct {
		Total struct {
			Visits     int               `json:"visits"`
			Verified   int               `json:"verified_visits"`
			FaceTime   int               `json:"face_time_s"`
			Planned    int               `json:"planned"`
			Orders     int               `json:"orders"`
			OrderValue map[string]string `json:"order_value"`
		} `json:"total"`
		FollowUps struct {
			Closed int `json:"closed"`
		} `json:"follow_ups"`
	}
	q := url.Values{"team": {kpiURL[1]}, "from": {kpiURL[2]}, "to": {kpiURL[3]}}.Encode()
	if st := apptest.Do(t, "GET", ts.URL+"/v1/kpis?"+q, tokens["manager-1"], nil, &kpis); st != 200 {
		t.Fatalf("manager's KPIs: %d", st)
	}
	if k := kpis.Total; k.Visits == 0 || k.Verified == 0 || k.Verified == k.Visits || k.FaceTime == 0 || k.Planned == 0 ||
		k.Orders == 0 || (k.OrderValue["EUR"] == "" || k.OrderValue["EUR"] == "0.00") || kpis.FollowUps.Closed == 0 {
		t.Errorf("manager's KPIs: %+v", kpis)
	}
	ts.Stop()

	// Again: nothing changes, and the command says so.
	before := demoHead(t, data)
	code, out, errs = cli(t, "", args...)
	if code != 0 || !strings.Contains(out, "nothing changed") {
		t.Errorf("second fieldsync demo: exit %d\n%s%s", code, out, errs)
	}
	var buf bytes.Buffer
	c, err := parseServe([]string{"--data", data, "--demo"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Demo.load(context.Background(), c, &buf, io.Discard); err != nil || !strings.Contains(buf.String(), "loaded already") {
		t.Errorf("serve --demo on a loaded demo: %v\n%s", err, buf.String())
	}
	if after := demoHead(t, data); after != before {
		t.Errorf("a second run moved the feed from %d to %d", before, after)
	}
	code, _, errs = cli(t, "", "demo", "--data", data, "--days", "8", "--customers", "60")
	if code != 1 || !strings.Contains(errs, "holds the demo of --seed 1 --days 7 --customers 60") {
		t.Errorf("demo with other flags on the same organisation: exit %d %s", code, errs)
	}
}

// demoHead is the store's committed feed position.
func demoHead(t *testing.T, data string) int64 {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(data, "fieldsync.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h, err := st.Head(context.Background(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// readmeDemo checks the README's demo block against this (smaller) demo:
// the output it prints under the serve command has the demo's shape (the
// README's figures come from a full run, so numbers may differ), and its
// requests, run as printed with bash and curl, all succeed.
func readmeDemo(t *testing.T, out, base string) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("the README's demo block needs curl (.ci/run installs it)")
	}
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "serve --demo\n")
	if i < 0 {
		t.Fatal("the README has no `serve --demo` command")
	}
	block := s[i+len("serve --demo\n"):]
	block = block[:strings.Index(block, "```")]
	printed, requests, _ := strings.Cut(block, "# In another terminal:\n")
	number := regexp.MustCompile(`[0-9][0-9.,]*`)
	for _, l := range strings.Split(strings.TrimSpace(printed), "\n") {
		want := strings.TrimPrefix(l, "# ")
		parts := strings.Split(want, "...")
		for j, p := range parts {
			q := number.Split(p, -1)
			for k := range q {
				q[k] = regexp.QuoteMeta(q[k])
			}
			parts[j] = strings.Join(q, `[0-9][0-9.,]*`)
		}
		if re := regexp.MustCompile(`(?m)^` + strings.Join(parts, `.*?`)); !re.MatchString(out) {
			t.Errorf("the README shows the demo printing %q; it printed:\n%s", want, out)
		}
	}
	// Each request's reply must be JSON without an error.
	script := "set -eo pipefail\n" + strings.Replace(requests, "B=http://127.0.0.1:8080", "B="+base, 1)
	script = regexp.MustCompile(`(?m)^(curl .*)$`).ReplaceAllString(script, `$1; echo`)
	cmd := exec.Command("bash", "-c", script)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("the README's demo requests: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	replies := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(replies) != strings.Count(requests, "\ncurl ") {
		t.Fatalf("the README's demo requests answered %d replies:\n%s", len(replies), stdout.String())
	}
	for _, r := range replies {
		var v map[string]any
		if json.Unmarshal([]byte(r), &v) != nil || v["error"] != nil {
			t.Errorf("a README demo request answered %.300s", r)
		}
	}
}
