package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/fakefcm"
	"github.com/fieldsync/fieldsync/internal/patience"
	"github.com/fieldsync/fieldsync/jwtauth"
	notify "github.com/fieldsync/fieldsync/push"
	"github.com/fieldsync/fieldsync/sqlite"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// pushWorld is organisation "acme" on a server (the real binary here) with
// a rep, a demand planner, a customer and a product, set up through HTTP.
func pushWorld(t *testing.T, url, data string) *accWorld {
	t.Helper()
	keys, err := jwtauth.LoadOrCreate(data)
	if err != nil {
		t.Fatal(err)
	}
	w := &accWorld{T: t, Server: &testServer{URL: url, Data: data, Keys: keys}}
	w.Admin("acme", "PUT", "/org", map[string]any{"time_zone": "Europe/Berlin"}, 200)
	w.AddUser("acme", accUser{ID: "rep-1", Roles: []string{"rep"}})
	w.AddUser("acme", accUser{ID: "dp-1", Roles: []string{"demand_planning"}})
	for coll, docs := range map[string][]map[string]any{
		"products":    {{"id": "p-1", "fields": map[string]any{"sku": "M-1", "name": "Motor", "list_price": "100"}}},
		"price_lists": {{"id": "pl-1", "fields": map[string]any{"name": "OEM", "currency": "EUR", "prices": map[string]any{"p-1": "90"}}}},
		"customers":   {{"id": "c-1", "fields": map[string]any{"name": "Pumpen AG", "assigned_reps": []string{"rep-1"}, "price_list_id": "pl-1"}}},
	} {
		w.Admin("acme", "POST", "/documents/"+coll, map[string]any{"docs": docs}, 200)
	}
	return w
}

// TestPushSurvivesKill drives the real binary through the follow-up
// workflow with FCM pointed at the fake (a service-account key whose token
// endpoint is the fake too, so the SDK's whole credentials flow runs):
//  1. an instance that does not dispatch (--push-off) sees the order
//     submitted and its availability check completed, and is killed
//     (SIGKILL): the push was never sent;
//  2. the next instance tails the feed, claims the notification and is
//     killed while its request to FCM is in flight, unanswered;
//  3. the third instance delivers it once its predecessor's lease ran out.
//
// FCM answers exactly one request, and the outbox row is sent after one
// attempt, so nothing is left to send again.
func TestPushSurvivesKill(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	fake := fakefcm.Start()
	defer fake.Close()
	sa := filepath.Join(t.TempDir(), "service-account.json")
	if err := fake.ServiceAccount(sa, "fieldsync-kill"); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--fcm-credentials", sa, "--fcm-endpoint", fake.URL(), "--push-poll", "50ms", "--push-lease", "2s"}

	p := startBinary(t, data, append(flags, "--push-off")...)
	w := pushWorld(t, p.URL, data)
	rep, dp := w.Token("acme", "rep-1", "rep"), w.Token("acme", "dp-1", "demand_planning")
	if st, raw := doRaw(t, "POST", p.URL+"/v1/devices", rep, mustJSON(t, map[string]any{"device_id": "phone-1",
		"token": "tok-rep-phone", "platform": "android", "app_version": "5.0.0"})); st != 200 {
		t.Fatalf("register device: %d %s", st, raw)
	}
	order := map[string]any{"customer_id": "c-1", "currency": "EUR", "status": "submitted",
		"lines": []map[string]any{{"product_id": "p-1", "quantity": 2, "discount_pct": 0}}}
	w.MustApply(rep, "phone-1", []map[string]any{mCreate("m-1", "orders", "o-1", order)})
	const fu = "fu-o-1-availability_check"
	if st, raw := doRaw(t, "POST", p.URL+"/v1/followups/"+fu+"/complete", dp, mustJSON(t, map[string]any{"note": "in stock"})); st != 200 {
		t.Fatalf("complete %s: %d %s", fu, st, raw)
	}
	kill(t, p)

	release := fake.Hold("tok-rep-phone")
	defer release()
	p = startBinary(t, data, flags...)
	waitFor(t, 30*time.Second, "the second instance's request to FCM", func() bool { return fake.Held() == 1 })
	kill(t, p)
	// The fake sees the killed sender's connection close and gives up on
	// the request; releasing the hold before that would answer it as if it
	// had been delivered.
	waitFor(t, 30*time.Second, "the fake to notice the killed sender", func() bool { return fake.Held() == 0 })
	release()
	if n := len(fake.Requests()); n != 0 {
		t.Fatalf("FCM answered %d requests of a killed instance", n)
	}

	p = startBinary(t, data, flags...)
	if !fake.WaitDelivered(1, patience.Of(t)) {
		t.Fatalf("not delivered after restart:\n%s", p.log())
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-p.done
	reqs := fake.Requests()
	if len(reqs) != 1 || reqs[0].Token != "tok-rep-phone" || fake.Tokens() == 0 {
		t.Fatalf("FCM got %d requests (want exactly 1), %d access tokens issued", len(reqs), fake.Tokens())
	}
	var msg struct {
		Data map[string]string `json:"data"`
	}
	if err := json.Unmarshal(reqs[0].Message, &msg); err != nil || msg.Data["type"] != notify.TriggerFollowUpDone || msg.Data["id"] != fu {
		t.Fatalf("message %s", reqs[0].Message)
	}

	// The outbox, read with the server stopped: sent, after one attempt.
	st, err := sqlite.Open(context.Background(), filepath.Join(data, "fieldsync.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	docs, err := st.Get(context.Background(), "acme", []engine.DocRef{{Collection: "follow_ups", ID: fu}})
	if err != nil || docs[engine.DocRef{Collection: "follow_ups", ID: fu}] == nil {
		t.Fatalf("follow-up: %v", err)
	}
	var body struct {
		ClosedAt string `json:"closed_at"`
	}
	json.Unmarshal(docs[engine.DocRef{Collection: "follow_ups", ID: fu}].Body, &body)
	id := notify.NotificationID("acme", "follow_ups", fu, notify.TriggerFollowUpDone, "done|"+body.ClosedAt, "rep-1")
	n, err := st.Notification(context.Background(), id)
	if err != nil || n.Status != notify.StatusSent || n.Attempts != 1 || !slices.Equal(n.Delivered, []string{"phone-1"}) {
		t.Fatalf("outbox row %+v, %v", n, err)
	}
}

// TestPushLogSender: without FCM credentials the server logs each push and
// counts it sent; the follow-up completed through the workflow reaches the
// rep's registered device this way, and /metrics shows it.
func TestPushLogSender(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	ts := startServerWith(t, "", func(c *serveConfig) {
		c.LogFormat = "json"
		c.Push.Poll = 20 * time.Millisecond
	}, logs)
	w := pushWorld(t, ts.URL, ts.Data)
	rep, dp := w.Token("acme", "rep-1", "rep"), w.Token("acme", "dp-1", "demand_planning")
	if st, raw := doRaw(t, "POST", ts.URL+"/v1/devices", rep, mustJSON(t, map[string]any{"device_id": "phone-1",
		"token": "tok-1", "platform": "ios", "app_version": "5.0.0"})); st != 200 {
		t.Fatalf("register device: %d %s", st, raw)
	}
	order := map[string]any{"customer_id": "c-1", "currency": "EUR", "status": "submitted",
		"lines": []map[string]any{{"product_id": "p-1", "quantity": 1, "discount_pct": 0}}}
	w.MustApply(rep, "phone-1", []map[string]any{mCreate("m-1", "orders", "o-1", order)})
	if st, raw := doRaw(t, "POST", ts.URL+"/v1/followups/fu-o-1-availability_check/complete", dp,
		mustJSON(t, map[string]any{"note": "in stock"})); st != 200 {
		t.Fatalf("complete: %d %s", st, raw)
	}
	waitFor(t, 20*time.Second, "the log sender's line", func() bool {
		return strings.Contains(logs.String(), `"msg":"push (log sender)"`)
	})
	var line map[string]any
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, `"msg":"push (log sender)"`) {
			json.Unmarshal([]byte(l), &line)
		}
	}
	if line["type"] != notify.TriggerFollowUpDone || line["id"] != "fu-o-1-availability_check" || line["platform"] != "ios" {
		t.Fatalf("log line %v", line)
	}
	waitFor(t, 10*time.Second, "fieldsync_notifications_sent_total 1", func() bool {
		_, raw := doRaw(t, "GET", ts.URL+"/metrics", "", nil)
		return strings.Contains(string(raw), "fieldsync_notifications_sent_total 1\n")
	})
}

func kill(t *testing.T, p *proc) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
}

// TestPushTwoInstances: two real binaries on one MongoDB database (the
// shared FerretDB) both tail and dispatch; a manager plans 60 visits for
// 15 reps, and every plan's push reaches its rep's phone exactly once. FCM
// answers after 20 ms, as a distant one does, so both instances find work;
// which instance sent a request shows in its access token (each instance
// fetched its own from the fake's token endpoint).
func TestPushTwoInstances(t *testing.T) {
	t.Parallel()
	uri, db := sharedFerret(t), freshMongoDatabase()
	data := t.TempDir()
	fake := fakefcm.Start()
	defer fake.Close()
	fake.SetDelay(20 * time.Millisecond)
	sa := filepath.Join(t.TempDir(), "service-account.json")
	if err := fake.ServiceAccount(sa, "fieldsync-two"); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--mongodb-uri", uri, "--mongodb-database", db, "--fcm-credentials", sa, "--fcm-endpoint", fake.URL(),
		"--push-poll", "20ms", "--push-batch", "5"}
	p1 := startBinary(t, data, flags...)
	p2 := startBinary(t, data, flags...)

	keys, err := jwtauth.LoadOrCreate(data)
	if err != nil {
		t.Fatal(err)
	}
	w := &accWorld{T: t, Server: &testServer{URL: p1.URL, Data: data, Keys: keys}}
	w.Admin("acme", "PUT", "/org", map[string]any{"time_zone": "UTC"}, 200)
	w.AddTeam("acme", "north")
	const reps, plansEach = 15, 4
	var repIDs []string
	for i := range reps {
		repIDs = append(repIDs, fmt.Sprintf("rep-%02d", i))
		w.AddUser("acme", accUser{ID: repIDs[i], Roles: []string{"rep"}, Teams: []string{"north"}})
	}
	w.AddUser("acme", accUser{ID: "mgr-1", Roles: []string{"manager"}, Leads: []string{"north"}})
	w.Admin("acme", "POST", "/documents/customers", map[string]any{"docs": []map[string]any{
		{"id": "c-1", "fields": map[string]any{"name": "Pumpen AG", "assigned_reps": repIDs}}}}, 200)
	for i, r := range repIDs {
		// Half the phones register through each instance.
		url := []string{p1.URL, p2.URL}[i%2]
		if st, raw := doRaw(t, "POST", url+"/v1/devices", w.Token("acme", r, "rep"), mustJSON(t, map[string]any{
			"device_id": "phone", "token": "tok-" + r, "platform": "android", "app_version": "5.0.0"})); st != 200 {
			t.Fatalf("register %s: %d %s", r, st, raw)
		}
	}
	var muts []map[string]any
	start := time.Now().Add(48 * time.Hour).UTC()
	for i := range reps * plansEach {
		r := repIDs[i%reps]
		muts = append(muts, mCreate(fmt.Sprintf("m-%03d", i), "visit_plans", fmt.Sprintf("plan-%03d", i), map[string]any{
			"customer_id": "c-1", "rep_id": r, "status": "planned",
			"planned_start": start.Add(time.Duration(i) * time.Minute).Format(time.RFC3339),
			"planned_end":   start.Add(time.Duration(i)*time.Minute + 30*time.Minute).Format(time.RFC3339)}))
	}
	// Written through the second instance; the first may be the one tailing.
	w.Server.URL = p2.URL
	t0 := time.Now()
	w.MustApply(w.Token("acme", "mgr-1", "manager"), "mgr-laptop", muts)
	t.Logf("pushed %d plans in %v", len(muts), time.Since(t0))

	const total = reps * plansEach
	if !fake.WaitDelivered(total, patience.Of(t)) {
		t.Fatalf("%d of %d pushes delivered (%d requests, %d tokens)\ninstance 1:\n%s\ninstance 2:\n%s", len(fake.Delivered()), total,
			len(fake.Requests()), fake.Tokens(), p1.log(), p2.log())
	}
	byInstance := map[string]int{}
	perPlan := map[string]int{}
	for _, r := range fake.Requests() {
		var m struct {
			Data map[string]string `json:"data"`
		}
		if err := json.Unmarshal(r.Message, &m); err != nil || m.Data["type"] != notify.TriggerVisitAssigned {
			t.Fatalf("message %s", r.Message)
		}
		if want := "tok-" + repIDs[atoi(t, strings.TrimPrefix(m.Data["id"], "plan-"))%reps]; r.Token != want {
			t.Fatalf("%s went to %s, want %s", m.Data["id"], r.Token, want)
		}
		perPlan[m.Data["id"]]++
		byInstance[r.Auth]++
	}
	if len(perPlan) != total {
		t.Fatalf("%d plans notified, want %d", len(perPlan), total)
	}
	for id, n := range perPlan {
		if n != 1 {
			t.Errorf("%s pushed %d times", id, n)
		}
	}
	if len(byInstance) != 2 {
		t.Fatalf("requests by access token %v: want both instances dispatching", byInstance)
	}
	t.Logf("requests per instance (by access token): %v", byInstance)
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}
