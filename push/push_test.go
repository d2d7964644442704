package push_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/internal/fakefcm"
	"github.com/fieldsync/fieldsync/push"
	"github.com/fieldsync/fieldsync/push/fcm"
	"github.com/fieldsync/fieldsync/sqlite"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// clock is the injected clock of a test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// Sunday 29 November 2026, 10:00 UTC.
var t0 = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

// env is one organisation on a SQLite store with the real FCM SDK pointed
// at a fake FCM server.
type env struct {
	t      testing.TB
	path   string
	st     *sqlite.Store
	fake   *fakefcm.Server
	clk    *clock
	muts   atomic.Int64
	sender push.Sender
	// synchronous is the SQLite pragma the store is opened with.
	synchronous string
}

const org = "acme"

func newEnv(t testing.TB) *env { return newEnvSync(t, "OFF") }

// newEnvSync is newEnv with the SQLite synchronous pragma given (the tests
// use OFF; production's FULL fsyncs every commit).
func newEnvSync(t testing.TB, synchronous string) *env {
	t.Helper()
	e := &env{t: t, path: filepath.Join(t.TempDir(), "fieldsync.db"), fake: fakefcm.Start(), clk: &clock{t: t0},
		synchronous: synchronous}
	t.Cleanup(e.fake.Close)
	e.open()
	t.Cleanup(func() { e.st.Close() })
	ctx := context.Background()
	must(t, e.st.PutOrg(ctx, &identity.Org{ID: org, Name: "Acme", TimeZone: "Europe/Berlin", Created: t0}))
	for _, u := range []struct {
		id    string
		roles []string
	}{{"r1", []string{"rep"}}, {"cc1", []string{"credit_control"}}, {"cc2", []string{"credit_control"}},
		{"od1", []string{"order_desk"}}, {"m1", []string{"manager"}}} {
		must(t, e.st.CreateUser(ctx, &identity.User{Org: org, ID: u.id, Email: u.id + "@acme.test", Name: u.id,
			Roles: u.roles, Created: t0, Updated: t0}))
	}
	s, err := fcm.New(ctx, fcm.Config{ProjectID: "fieldsync-test", Now: e.clk.Now,
		Options: []option.ClientOption{option.WithEndpoint(e.fake.URL()),
			option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "test"}))}})
	must(t, err)
	e.sender = s
	return e
}

// open (re)opens the store, as a restarted process does.
func (e *env) open() {
	st, err := sqlite.Open(context.Background(), e.path, sqlite.Options{Synchronous: e.synchronous})
	must(e.t, err)
	e.st = st
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (e *env) device(user, id, token, platform string) {
	must(e.t, e.st.PutDevice(context.Background(), push.Device{Org: org, User: user, ID: id, Token: token,
		Platform: platform, AppVersion: "3.1.0", Updated: e.clk.Now()}))
}

// write commits a document straight through the store, as the engine
// would (owner, last writer, the "org" scope), so triggers can be driven
// with any fields.
func (e *env) write(by, coll, id, owner string, body map[string]any) {
	e.t.Helper()
	raw, err := json.Marshal(body)
	must(e.t, err)
	mid := fmt.Sprintf("m%d", e.muts.Add(1))
	_, err = e.st.Push(context.Background(), engine.PushBatch{Actor: engine.Actor{Org: org, User: by}, Device: "test",
		Mutations: []engine.Mutation{{ID: mid, Collection: coll, DocID: id, Op: engine.OpUpdate}}},
		func(i int, cur *engine.Document) (*engine.Document, engine.Outcome) {
			v := int64(1)
			if cur != nil {
				v = cur.Version + 1
			}
			return &engine.Document{Org: org, Collection: coll, ID: id, Owner: owner, Version: v, Body: raw,
					Fields: map[string]engine.FieldMeta{}, Scopes: []string{fieldsales.ScopeOrg, "user:" + owner},
					UpdatedAt: e.clk.Now(), UpdatedBy: by},
				engine.Outcome{MutationID: mid, Status: engine.StatusApplied, Version: v}
		})
	must(e.t, err)
}

func (e *env) tailer(st push.Store) *push.Tailer {
	return push.NewTailer(push.TailerConfig{Feed: e.st, Store: st, Directory: e.st, Instance: "i1", Now: e.clk.Now})
}

func (e *env) dispatcher(cfg push.DispatcherConfig) *push.Dispatcher {
	cfg.Store, cfg.Sender, cfg.Now = e.st, e.sender, e.clk.Now
	if cfg.Instance == "" {
		cfg.Instance = "i1"
	}
	if cfg.Rand == nil {
		cfg.Rand = func() float64 { return 0 }
	}
	return push.NewDispatcher(cfg)
}

func (e *env) pass(d *push.Dispatcher) int {
	e.t.Helper()
	n, err := d.Pass(context.Background())
	must(e.t, err)
	return n
}

func (e *env) tail() {
	e.t.Helper()
	must(e.t, e.tailer(e.st).Pass(context.Background()))
}

func followUp(status string, notify ...string) map[string]any {
	return map[string]any{"activity": "credit_check", "order_id": "o1", "customer_id": "c1", "rep_id": "r1",
		"status": status, "notify_on_done": notify, "notify_on_blocked": notify, "blocked_reason": "limit exceeded",
		"closed_at": "2026-11-29T10:00:00Z"}
}

func tokens(reqs []fakefcm.Request) []string {
	var out []string
	for _, r := range reqs {
		out = append(out, r.Token)
	}
	slices.Sort(out)
	return out
}

// TestFollowUpDoneDelivered: a follow-up completed by one credit controller
// reaches the rep and the other credit controller (never the one who did
// it), once, with the message the app needs; edits that do not change the
// status notify nobody again.
func TestFollowUpDoneDelivered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.device("r1", "phone", "tok-r1", push.PlatformAndroid)
	e.device("cc1", "ipad", "tok-cc1", push.PlatformIOS)
	e.device("cc2", "pc", "tok-cc2", push.PlatformWeb)
	e.write("cc2", "follow_ups", "fu-o1-credit_check", "cc2", followUp("in_progress", "rep", "credit_control"))
	e.write("cc2", "follow_ups", "fu-o1-credit_check", "cc2", followUp("done", "rep", "credit_control"))
	e.tail()
	d := e.dispatcher(push.DispatcherConfig{})
	if n := e.pass(d); n != 2 {
		t.Fatalf("claimed %d notifications, want 2 (r1, cc1)", n)
	}
	if got := tokens(e.fake.Delivered()); !slices.Equal(got, []string{"tok-cc1", "tok-r1"}) {
		t.Fatalf("delivered to %v", got)
	}
	var msg struct {
		Data         map[string]string `json:"data"`
		Notification map[string]string `json:"notification"`
		Android      map[string]any    `json:"android"`
	}
	must(t, json.Unmarshal(e.fake.Delivered()[0].Message, &msg))
	if msg.Data["type"] != push.TriggerFollowUpDone || msg.Data["collection"] != "follow_ups" ||
		msg.Data["id"] != "fu-o1-credit_check" || msg.Data["pull"] != "1" || msg.Android["priority"] != "high" ||
		msg.Notification["body"] != "credit_check for order o1 is done." {
		t.Fatalf("message = %+v", msg)
	}
	// An unrelated edit and another pass: nothing new.
	body := followUp("done", "rep", "credit_control")
	body["result"] = "approved"
	e.write("cc2", "follow_ups", "fu-o1-credit_check", "cc2", body)
	e.tail()
	if n := e.pass(d); n != 0 || len(e.fake.Requests()) != 2 {
		t.Fatalf("second round: claimed %d, %d requests", n, len(e.fake.Requests()))
	}
	// Blocked notifies notify_on_blocked, as a new notification.
	e.write("od1", "follow_ups", "fu-o1-credit_check", "od1", followUp("blocked", "rep"))
	e.tail()
	e.pass(d)
	reqs := e.fake.Delivered()
	if len(reqs) != 3 || reqs[2].Token != "tok-r1" {
		t.Fatalf("after blocking: %v", tokens(reqs))
	}
}

// TestOtherTriggers: a manager's review of a visit log, a visit planned by
// a manager, and an order status change by the back office each reach the
// rep, also when the rep edited the document since; the rep's own changes
// (a plan of their own, submitting or cancelling an order) notify nobody.
func TestOtherTriggers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.device("r1", "phone", "tok-r1", push.PlatformAndroid)
	e.write("r1", "visit_logs", "v1", "r1", map[string]any{"customer_id": "c1"})
	e.write("m1", "visit_logs", "v1", "r1", map[string]any{"customer_id": "c1",
		"review": map[string]any{"status": "flagged", "by": "m1", "at": "2026-11-29T09:00:00Z"}})
	// The rep edits the reviewed visit before the tailer reads it: the
	// review still reaches the rep (the reviewer is who is left out).
	e.write("r1", "visit_logs", "v1", "r1", map[string]any{"customer_id": "c1", "notes": "follow up in May",
		"review": map[string]any{"status": "flagged", "by": "m1", "at": "2026-11-29T09:00:00Z"}})
	e.write("r1", "orders", "o3", "r1", map[string]any{"status": "cancelled", "status_changed_at": "2026-11-29T09:10:00Z"})
	e.write("od1", "orders", "o4", "r1", map[string]any{"status": "rejected", "status_changed_at": "2026-11-29T09:20:00Z"})
	e.write("r1", "orders", "o4", "r1", map[string]any{"status": "rejected", "status_changed_at": "2026-11-29T09:20:00Z", "notes": "seen"})
	e.write("r1", "visit_plans", "p-own", "r1", map[string]any{"customer_id": "c1", "status": "planned", "assigned_by": "r1"})
	e.write("m1", "visit_plans", "p1", "r1", map[string]any{"customer_id": "c1", "status": "planned", "assigned_by": "m1",
		"planned_start": "2026-12-01T08:00:00Z"})
	// Created by the manager (the manager owns it), for the rep in rep_id.
	e.write("m1", "visit_plans", "p2", "m1", map[string]any{"customer_id": "c1", "status": "planned", "assigned_by": "m1",
		"rep_id": "r1"})
	e.write("r1", "orders", "o1", "r1", map[string]any{"status": "submitted", "status_changed_at": "2026-11-29T09:00:00Z"})
	e.write("r1", "orders", "o2", "r1", map[string]any{"status": "submitted"})
	e.write("od1", "orders", "o2", "r1", map[string]any{"status": "confirmed", "status_changed_at": "2026-11-29T09:30:00Z"})
	e.tail()
	e.pass(e.dispatcher(push.DispatcherConfig{}))
	var types []string
	for _, r := range e.fake.Delivered() {
		var m struct {
			Data map[string]string `json:"data"`
		}
		must(t, json.Unmarshal(r.Message, &m))
		types = append(types, m.Data["type"]+" "+m.Data["id"])
	}
	slices.Sort(types)
	want := []string{"order_status o2", "order_status o4", "visit_assigned p1", "visit_assigned p2", "visit_reviewed v1"}
	if !slices.Equal(types, want) {
		t.Fatalf("delivered %v, want %v", types, want)
	}
}

// TestRetryDelays: 429 and 503 answers schedule the next attempt no
// earlier than their Retry-After; other retryable failures back off
// exponentially within the jitter bounds; the notification is delivered
// once FCM accepts it.
func TestRetryDelays(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.device("r1", "phone", "tok-r1", push.PlatformAndroid)
	// 429 (30 s), 503 (600 s: past the SDK's own retry cap), 500 twice, then OK.
	e.fake.Script("tok-r1", fakefcm.QuotaExceeded(30), fakefcm.Unavailable(600), fakefcm.Answer{Status: 500},
		fakefcm.Answer{Status: 500}, fakefcm.Answer{Status: 200})
	e.write("cc1", "follow_ups", "fu-1", "cc1", followUp("done", "rep"))
	e.tail()
	jitter := 0.0
	base := 10 * time.Second
	d := e.dispatcher(push.DispatcherConfig{BaseDelay: base, MaxDelay: time.Minute, Rand: func() float64 { return jitter }})
	id := push.NotificationID(org, "follow_ups", "fu-1", push.TriggerFollowUpDone, "done|2026-11-29T10:00:00Z", "r1")
	row := func() push.Notification {
		n, err := e.st.Notification(context.Background(), id)
		must(t, err)
		return n
	}
	steps := []struct {
		jitter     float64
		wantDelay  time.Duration
		wantErrPfx string
	}{
		{0, 30 * time.Second, "429"},   // backoff 5 s (10 s, jittered to half) < Retry-After 30 s
		{0, 600 * time.Second, "503"},  // Retry-After 600 s
		{0.5, 30 * time.Second, "500"}, // attempt 3: 40 s, jitter 0.5: 20 s + 10 s
		{0.999, 0, "500"},              // attempt 4: 80 s capped at 60 s: within [30 s, 60 s]
	}
	for i, s := range steps {
		jitter = s.jitter
		now := e.clk.Now()
		if n := e.pass(d); n != 1 {
			t.Fatalf("step %d: claimed %d", i, n)
		}
		r := row()
		delay := r.Due.Sub(now)
		if r.Status != push.StatusPending || r.Attempts != i+1 || len(r.LastError) < 3 || r.LastError[:3] != s.wantErrPfx {
			t.Fatalf("step %d: row %+v", i, r)
		}
		if s.wantDelay != 0 && delay != s.wantDelay {
			t.Fatalf("step %d: next attempt after %v, want %v", i, delay, s.wantDelay)
		}
		if s.wantDelay == 0 && (delay < 30*time.Second || delay > time.Minute) {
			t.Fatalf("step %d: next attempt after %v, want within [30s, 60s]", i, delay)
		}
		// Not before its time.
		e.clk.Set(r.Due.Add(-time.Millisecond))
		if n := e.pass(d); n != 0 {
			t.Fatalf("step %d: claimed before due", i)
		}
		e.clk.Set(r.Due)
	}
	if n := e.pass(d); n != 1 {
		t.Fatal("final attempt not claimed")
	}
	if r := row(); r.Status != push.StatusSent || r.Attempts != 5 || len(e.fake.Delivered()) != 1 || len(e.fake.Requests()) != 5 {
		t.Fatalf("final: %+v; %d requests", r, len(e.fake.Requests()))
	}
	// The bounds of the backoff itself, over many draws.
	for attempt := 1; attempt <= 6; attempt++ {
		full := min(base<<(attempt-1), time.Minute)
		for _, j := range []float64{0, 0.25, 0.5, 0.999} {
			jitter = j
			got := d.Delay(attempt, 0)
			if got < full/2 || got > full {
				t.Errorf("Delay(%d) with jitter %v = %v, want within [%v, %v]", attempt, j, got, full/2, full)
			}
		}
	}
	if got := d.Delay(1, 2*time.Hour); got != 2*time.Hour {
		t.Errorf("Delay with a Retry-After beyond the cap = %v; Retry-After wins", got)
	}
}

// TestInvalidTokens: UNREGISTERED and INVALID_ARGUMENT remove the device;
// the other device still gets the notification, which is then sent.
func TestInvalidTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.device("r1", "old-phone", "tok-gone", push.PlatformAndroid)
	e.device("r1", "tablet", "tok-bad", push.PlatformAndroid)
	e.device("r1", "phone", "tok-ok", push.PlatformIOS)
	e.fake.Script("tok-gone", fakefcm.Unregistered)
	e.fake.Script("tok-bad", fakefcm.InvalidArgument)
	e.write("cc1", "follow_ups", "fu-1", "cc1", followUp("done", "rep"))
	e.tail()
	reg := prometheus.NewRegistry()
	e.pass(e.dispatcher(push.DispatcherConfig{Metrics: push.NewMetrics(reg)}))
	if got := counters(t, reg); got["fieldsync_notifications_invalid_tokens_total"] != 2 || got["fieldsync_notifications_sent_total"] != 1 {
		t.Fatalf("metrics %v", got)
	}
	devs, err := e.st.Devices(context.Background(), org, "r1")
	must(t, err)
	if len(devs) != 1 || devs[0].ID != "phone" {
		t.Fatalf("devices left: %+v", devs)
	}
	if got := tokens(e.fake.Delivered()); !slices.Equal(got, []string{"tok-ok"}) {
		t.Fatalf("delivered %v", got)
	}
	id := push.NotificationID(org, "follow_ups", "fu-1", push.TriggerFollowUpDone, "done|2026-11-29T10:00:00Z", "r1")
	n, _ := e.st.Notification(context.Background(), id)
	if n.Status != push.StatusSent || n.Attempts != 1 {
		t.Fatalf("row %+v", n)
	}
}

// TestDeadLetter: a notification that keeps failing is dead after
// MaxAttempts, kept with its last error, and never claimed again.
func TestDeadLetter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.device("r1", "phone", "tok-r1", push.PlatformAndroid)
	e.fake.Script("tok-r1", fakefcm.Answer{Status: 500})
	e.write("cc1", "follow_ups", "fu-1", "cc1", followUp("done", "rep"))
	e.tail()
	reg := prometheus.NewRegistry()
	d := e.dispatcher(push.DispatcherConfig{MaxAttempts: 3, Metrics: push.NewMetrics(reg)})
	for i := range 3 {
		if n := e.pass(d); n != 1 {
			t.Fatalf("attempt %d not claimed", i+1)
		}
		e.clk.Set(e.clk.Now().Add(time.Hour))
	}
	if n := e.pass(d); n != 0 {
		t.Fatal("a dead notification was claimed")
	}
	id := push.NotificationID(org, "follow_ups", "fu-1", push.TriggerFollowUpDone, "done|2026-11-29T10:00:00Z", "r1")
	n, _ := e.st.Notification(context.Background(), id)
	if n.Status != push.StatusDead || n.Attempts != 3 || n.LastError == "" || len(e.fake.Requests()) != 3 {
		t.Fatalf("row %+v after %d requests", n, len(e.fake.Requests()))
	}
	if got := counters(t, reg); got["fieldsync_notifications_retried_total"] != 2 || got["fieldsync_notifications_failed_total"] != 1 ||
		got["fieldsync_notifications_sent_total"] != 0 {
		t.Fatalf("metrics %v", got)
	}
}

// TestMuteAndQuietHours: a muted category is never enqueued; in quiet
// hours (22:00-07:00 Europe/Berlin) non-urgent notifications wait for
// their end while urgent ones (follow-ups) go at once.
func TestMuteAndQuietHours(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.device("r1", "phone", "tok-r1", push.PlatformAndroid)
	must(t, e.st.PutPrefs(ctx, org, "r1", push.Prefs{Muted: []string{push.CategoryVisitPlan}}))
	must(t, e.st.PutQuietHours(ctx, org, push.QuietHours{Start: 22 * 60, End: 7 * 60}))
	berlin, _ := time.LoadLocation("Europe/Berlin")
	night := time.Date(2026, 11, 29, 23, 30, 0, 0, berlin)
	e.clk.Set(night)
	e.write("m1", "visit_plans", "p1", "r1", map[string]any{"status": "planned", "assigned_by": "m1"})
	e.write("od1", "orders", "o2", "r1", map[string]any{"status": "confirmed", "status_changed_at": "2026-11-29T22:30:00Z"})
	fu := followUp("done", "rep")
	fu["closed_at"] = night.UTC().Format(time.RFC3339)
	e.write("cc1", "follow_ups", "fu-1", "cc1", fu)
	e.tail()
	d := e.dispatcher(push.DispatcherConfig{})
	e.pass(d)
	if got := e.fake.Delivered(); len(got) != 1 || !json.Valid(got[0].Message) || !contains(got[0].Message, "follow_up_done") {
		t.Fatalf("during quiet hours delivered %d (want only the urgent follow-up)", len(got))
	}
	orderID := push.NotificationID(org, "orders", "o2", push.TriggerOrderStatus, "confirmed|2026-11-29T22:30:00Z", "r1")
	n, err := e.st.Notification(ctx, orderID)
	must(t, err)
	if want := time.Date(2026, 11, 30, 7, 0, 0, 0, berlin); !n.Due.Equal(want) {
		t.Fatalf("order notification due %v, want %v", n.Due.In(berlin), want)
	}
	e.clk.Set(time.Date(2026, 11, 30, 6, 59, 0, 0, berlin))
	if e.pass(d) != 0 {
		t.Fatal("sent during quiet hours")
	}
	e.clk.Set(time.Date(2026, 11, 30, 7, 0, 0, 0, berlin))
	e.pass(d)
	if got := e.fake.Delivered(); len(got) != 2 || !contains(got[1].Message, "order_status") {
		t.Fatalf("after quiet hours: %d delivered", len(got))
	}
	// The muted visit plan was never enqueued.
	planID := push.NotificationID(org, "visit_plans", "p1", push.TriggerVisitAssigned, "m1|r1", "r1")
	if _, err := e.st.Notification(ctx, planID); engine.ErrorKind(err) != engine.KindNotFound {
		t.Fatalf("muted notification enqueued: %v", err)
	}
}

func contains(raw []byte, s string) bool { return slices.Contains(splitQuoted(raw), s) }

func splitQuoted(raw []byte) []string {
	var out []string
	var m map[string]any
	json.Unmarshal(raw, &m)
	if d, ok := m["data"].(map[string]any); ok {
		for _, v := range d {
			out = append(out, fmt.Sprint(v))
		}
	}
	return out
}

// killAfterEnqueue is the push store of a tailer that dies after inserting
// notifications and before moving its cursor.
type killAfterEnqueue struct {
	push.Store
}

func (killAfterEnqueue) AdvanceTail(context.Context, string, string, int64, time.Time) (bool, error) {
	return false, fmt.Errorf("killed")
}

// TestCrashSafety: the tailer dies between its outbox insert and its cursor
// move, then the dispatcher dies holding a claim before sending; after each
// restart (the store closed and reopened) the follow-up's notification is
// delivered exactly once.
func TestCrashSafety(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.device("r1", "phone", "tok-r1", push.PlatformAndroid)
	e.write("cc1", "follow_ups", "fu-1", "cc1", followUp("done", "rep"))
	if err := e.tailer(killAfterEnqueue{e.st}).Pass(ctx); err == nil {
		t.Fatal("the killed tailer reported success")
	}
	// The dispatcher of the dying process claimed the row, then died too.
	claimed, err := e.st.Claim(ctx, "dead-instance", e.clk.Now(), e.clk.Now().Add(time.Minute), 10)
	must(t, err)
	if len(claimed) != 1 || len(e.fake.Requests()) != 0 {
		t.Fatalf("claimed %d, %d sent", len(claimed), len(e.fake.Requests()))
	}
	must(t, e.st.Close())

	// Restart: the tailer reads the same change again (its cursor never
	// moved) and inserts nothing new; the claim's lease runs out.
	e.open()
	e.tail()
	d := e.dispatcher(push.DispatcherConfig{Instance: "i2"})
	if n := e.pass(d); n != 0 {
		t.Fatal("claimed while the dead instance's lease holds")
	}
	e.clk.Set(e.clk.Now().Add(time.Minute))
	e.pass(d)
	e.tail()
	e.pass(d)
	if got := tokens(e.fake.Requests()); !slices.Equal(got, []string{"tok-r1"}) {
		t.Fatalf("requests after restart: %v (want exactly one)", got)
	}
}

// presence is a fixed set of streaming devices.
type presence map[string][]string

func (p presence) Online(_ context.Context, org, user string) ([]string, error) {
	return p[org+"/"+user], nil
}

// TestStreamingDeviceSkipped: a device on the live stream is poked there;
// only the user's other device gets the FCM push, and the notification is
// done.
func TestStreamingDeviceSkipped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.device("r1", "phone", "tok-phone", push.PlatformAndroid)
	e.device("r1", "tablet", "tok-tablet", push.PlatformAndroid)
	e.write("cc1", "follow_ups", "fu-1", "cc1", followUp("done", "rep"))
	e.tail()
	e.pass(e.dispatcher(push.DispatcherConfig{Presence: presence{org + "/r1": {"phone"}}}))
	if got := tokens(e.fake.Requests()); !slices.Equal(got, []string{"tok-tablet"}) {
		t.Fatalf("pushed %v, want only the tablet", got)
	}
	id := push.NotificationID(org, "follow_ups", "fu-1", push.TriggerFollowUpDone, "done|2026-11-29T10:00:00Z", "r1")
	n, _ := e.st.Notification(context.Background(), id)
	if n.Status != push.StatusSent || !slices.Contains(n.Delivered, "phone") {
		t.Fatalf("row %+v", n)
	}
}

// counters reads every counter of reg by name.
func counters(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	must(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if c := m.GetCounter(); c != nil {
				out[mf.GetName()] += c.GetValue()
			}
		}
	}
	return out
}

// TestQuietHoursAfter: when a non-urgent notification may go, for quiet
// hours within a day and across midnight, on the night the clocks go back.
func TestQuietHoursAfter(t *testing.T) {
	t.Parallel()
	berlin, err := time.LoadLocation("Europe/Berlin")
	must(t, err)
	at := func(mo time.Month, d, h, m int) time.Time { return time.Date(2026, mo, d, h, m, 0, 0, berlin) }
	night := push.QuietHours{Start: 22 * 60, End: 7 * 60}
	lunch := push.QuietHours{Start: 12 * 60, End: 13*60 + 30}
	for _, c := range []struct {
		q        push.QuietHours
		now, due time.Time
	}{
		{night, at(11, 29, 21, 59), at(11, 29, 21, 59)},
		{night, at(11, 29, 22, 0), at(11, 30, 7, 0)},
		{night, at(11, 30, 3, 0), at(11, 30, 7, 0)},
		{night, at(11, 30, 7, 0), at(11, 30, 7, 0)},
		// 25 October 2026: 03:00 CEST becomes 02:00 CET; 07:00 is 06:00 UTC.
		{night, at(10, 24, 23, 30), time.Date(2026, 10, 25, 6, 0, 0, 0, time.UTC)},
		{lunch, at(11, 29, 12, 15), at(11, 29, 13, 30)},
		{lunch, at(11, 29, 13, 30), at(11, 29, 13, 30)},
		{push.QuietHours{}, at(11, 29, 23, 0), at(11, 29, 23, 0)},
	} {
		if got := c.q.After(c.now, berlin); !got.Equal(c.due) {
			t.Errorf("%+v at %v: due %v, want %v", c.q, c.now, got, c.due.In(berlin))
		}
	}
}

// TestOldTransitions: an edit of a document whose transition is older than
// the tailer's MaxAge (6 h) does not announce it again, and a visit plan
// that was visited or has begun notifies nobody.
func TestOldTransitions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.device("r1", "phone", "tok-r1", push.PlatformAndroid)
	old := followUp("done", "rep")
	old["closed_at"] = t0.Add(-7 * time.Hour).Format(time.RFC3339)
	e.write("cc1", "follow_ups", "fu-old", "cc1", old)
	e.write("od1", "orders", "o-old", "r1", map[string]any{"status": "delivered", "status_changed_at": t0.Add(-30 * 24 * time.Hour).Format(time.RFC3339)})
	e.write("m1", "visit_plans", "p-done", "r1", map[string]any{"status": "done", "assigned_by": "m1"})
	e.write("m1", "visit_plans", "p-past", "r1", map[string]any{"status": "planned", "assigned_by": "m1",
		"planned_start": t0.Add(-time.Hour).Format(time.RFC3339)})
	e.write("m1", "visit_plans", "p-next", "r1", map[string]any{"status": "planned", "assigned_by": "m1",
		"planned_start": t0.Add(24 * time.Hour).Format(time.RFC3339)})
	e.tail()
	e.pass(e.dispatcher(push.DispatcherConfig{}))
	var ids []string
	for _, r := range e.fake.Requests() {
		var m struct {
			Data map[string]string `json:"data"`
		}
		must(t, json.Unmarshal(r.Message, &m))
		ids = append(ids, m.Data["id"])
	}
	if !slices.Equal(ids, []string{"p-next"}) {
		t.Fatalf("notified about %v, want only the upcoming plan", ids)
	}
}
