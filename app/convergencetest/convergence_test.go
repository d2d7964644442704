package convergencetest

// TestConvergenceUnderFaults is the proof of the sync guarantees (exactly-once
// pushes, per-mutation outcomes, field-level conflicts, convergence, access
// changes) through real HTTP, a real SQLite file and the Go client: reps'
// phones edit offline and sync through a network that drops requests and
// loses replies after the server committed, the server restarts on the same
// data directory in the middle, and at the end every device must hold exactly
// the server's state for its scope, and the server's state must be exactly
// the replay, in version order, of the outcomes the devices were told.
//
// Every random choice comes from one seed, logged when the test fails. The
// edits of a seed replay exactly; rounds whose syncs run concurrently (and
// the restart) interleave as the scheduler likes, so a seed mostly, not
// always, reproduces a run.
//
// TestConvergenceUnderFaultsMongoDB plays the same scenario, with the same
// checks and the restart, on the MongoDB store: FerretDB shared by the test
// binary (with MongoDB's atomic single-document writes, see
// ferrettest.StartAtomic), a database of its own per scenario.
//
// Environment (both tests):
//
//	FIELDSYNC_SEED=<n>           run the scenario of seed n (default: time-based)
//	FIELDSYNC_ROUNDS=<n>         rounds per scenario (default 40 on SQLite, 20 on
//	                             FerretDB; 150 when soaking)
//	FIELDSYNC_SOAK=<duration>    repeat the scenario with fresh seeds until the
//	                             duration has passed, stopping at the first failure:
//	                             FIELDSYNC_SOAK=10m go test ./app/convergencetest -run Convergence -timeout 15m

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/client"
	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/internal/patience"
	"github.com/fieldsync/fieldsync/sync/engine"
)

const (
	convRounds      = 40
	convMongoRounds = 20 // FerretDB scans in Go: about 30 s on 2 cores
	convSoakRounds  = 150
	convAdmin       = "u-admin"
	notesColl       = fieldsales.CollCustomerNotes
	customersColl   = fieldsales.CollCustomers
)

var convReps = []string{"u-rep1", "u-rep2", "u-rep3"}

func TestConvergenceUnderFaults(t *testing.T) {
	t.Parallel()
	testConvergence(t, convRounds, func(*testing.T) func(*serveConfig) { return nil })
}

func TestConvergenceUnderFaultsMongoDB(t *testing.T) {
	t.Parallel()
	uri := sharedFerret(t)
	testConvergence(t, convMongoRounds, func(t *testing.T) func(*serveConfig) {
		db := freshMongoDatabase()
		// A command may take as long as a request: on a busy machine
		// FerretDB is slow, not wrong.
		timeout := patience.Of(t)
		return func(c *serveConfig) { c.MongoURI, c.MongoDatabase, c.MongoTimeout = uri, db, timeout }
	})
}

// convStore gives a scenario its store: the serveConfig tweak with which
// every start of that scenario's server (the first and the restart) opens
// the same database. SQLite needs none: the data directory is the database.
type convStore func(t *testing.T) func(*serveConfig)

func testConvergence(t *testing.T, defaultRounds int, store convStore) {
	rounds, soakRounds := defaultRounds, convSoakRounds
	if v := os.Getenv("FIELDSYNC_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("FIELDSYNC_ROUNDS=%q: want a positive number", v)
		}
		rounds, soakRounds = n, n
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("FIELDSYNC_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("FIELDSYNC_SEED=%q: want an unsigned number", v)
		}
		seed = n
	}
	soak := os.Getenv("FIELDSYNC_SOAK")
	if soak == "" {
		runConvergence(t, seed, rounds, store(t))
		return
	}
	d, err := time.ParseDuration(soak)
	if err != nil {
		t.Fatalf("FIELDSYNC_SOAK=%q: want a duration such as 10m", soak)
	}
	began := time.Now()
	runs := 0
	for {
		runs++
		ok := t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { runConvergence(t, seed, soakRounds, store(t)) })
		if !ok || time.Since(began) >= d {
			break
		}
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("soak: %d scenarios of %d rounds in %v", runs, soakRounds, time.Since(began).Round(time.Millisecond))
}

func runConvergence(t *testing.T, seed uint64, rounds int, store func(*serveConfig)) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d: rerun with FIELDSYNC_SEED=%d FIELDSYNC_ROUNDS=%d go test ./app -run '%s$' -v",
				seed, seed, rounds, strings.SplitN(t.Name(), "/", 2)[0])
		}
	})
	began := time.Now()
	s := newScenario(t, seed, store)
	restartAt := rounds/3 + s.rnd.IntN(rounds/3+1)
	for r := range rounds {
		s.playRound(r, r == restartAt)
	}
	s.converge()
	s.rejectionInBatch()
	s.converge()
	s.check(rounds >= 20)
	t.Logf("seed %d: %d rounds in %v; %s", seed, rounds, time.Since(began).Round(time.Millisecond), s.stats())
}

// convDevice is one phone of the scenario.
type convDevice struct {
	id     string
	user   string
	cfg    client.Config // to reopen the client on the same store (an app restart)
	c      *client.Client
	faults *client.FaultTransport
	issued uint64 // mutation ids <id>-1 .. <id>-<issued> were enqueued
}

func (d *convDevice) mutationID(n uint64) string { return d.id + "-" + strconv.FormatUint(n, 10) }

type scenario struct {
	t     *testing.T
	rnd   *rand.Rand
	round int
	data  string
	store func(*serveConfig) // the store every start of the server opens
	// patience bounds one request and one sync (internal/patience), and
	// deadline the whole scenario: two minutes before the test binary's
	// -timeout (room for the servers' bounded stops), so that a store that
	// stops answering fails the test with its seed instead of hanging it
	// until go test kills the binary.
	patience time.Duration
	deadline time.Time
	srv      *testServer
	net      *currentServer
	tokens   map[string]string
	devs     []*convDevice
	admin    *convDevice
	ledger   *ledger

	nextID     int             // for note and customer ids, and unique values
	poisoned   map[string]bool // ids of invalid creates: never edited
	reassigned map[string]bool // customers whose reps changed
	drop, lose float64         // fault probabilities of the rounds

	syncs, syncErrors                   atomic.Int32 // counted by concurrent syncs
	restarts, concurrentRounds, reopens int
}

func newScenario(t *testing.T, seed uint64, store func(*serveConfig)) *scenario {
	s := &scenario{
		t:          t,
		rnd:        rand.New(rand.NewPCG(seed, seed^0x5eed)),
		data:       t.TempDir(),
		patience:   patience.Of(t),
		deadline:   time.Now().Add(30 * time.Minute),
		store:      store,
		tokens:     map[string]string{},
		ledger:     newLedger(),
		poisoned:   map[string]bool{},
		reassigned: map[string]bool{},
	}
	if dl, ok := t.Deadline(); ok {
		s.deadline = dl.Add(-2 * time.Minute)
	}
	s.drop = 0.05 + 0.1*s.rnd.Float64()
	s.lose = 0.05 + 0.1*s.rnd.Float64()
	s.srv = startServer(t, s.data, s.store)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	t.Cleanup(tr.CloseIdleConnections)
	s.net = &currentServer{base: tr, served: map[string]int{}}
	s.net.point(s.srv.URL)
	for _, u := range convReps {
		s.tokens[u] = s.srv.Token(t, "org-1", u, "rep")
	}
	s.tokens[convAdmin] = s.srv.Token(t, "org-1", convAdmin, "admin")

	// Three phones per rep, one admin console; every other one keeps its
	// state in a file.
	for i, u := range convReps {
		for _, name := range []string{"a", "b", "c"} {
			s.devs = append(s.devs, s.newDevice(fmt.Sprintf("rep%d-%s", i+1, name), u, len(s.devs)%2 == 0))
		}
	}
	s.admin = s.newDevice("admin-1", convAdmin, true)
	s.devs = append(s.devs, s.admin)

	// The reps are users of the organisation: customers may be assigned
	// only to active reps.
	ensureReps(t, s.srv.URL, s.tokens[convAdmin], convReps...)
	// Customers shared in every combination of reps, synced before any
	// fault so that every phone starts from them.
	for _, reps := range [][]string{{"u-rep1"}, {"u-rep1", "u-rep2"}, {"u-rep2", "u-rep3"}, {"u-rep3"},
		{"u-rep1", "u-rep3"}, {"u-rep1", "u-rep2", "u-rep3"}} {
		s.createCustomer(reps)
	}
	for _, d := range s.devs {
		if _, err := s.settle(d); err != nil {
			t.Fatalf("%s: first sync: %v", d.id, err)
		}
	}
	for _, d := range s.devs {
		d.faults.DropRequest, d.faults.LoseReply = s.drop, s.lose
	}
	return s
}

func (s *scenario) newDevice(id, user string, file bool) *convDevice {
	d := &convDevice{id: id, user: user}
	d.faults = client.NewFaultTransport(s.net, s.rnd.Uint64(), 0, 0)
	var store client.LocalStore = client.NewMemoryStore()
	if file {
		store = client.NewFileStore(filepath.Join(s.t.TempDir(), "state.json"))
	}
	d.cfg = client.Config{
		BaseURL:          s.srv.URL, // the host is rewritten to the current server
		Token:            client.StaticToken(s.tokens[user]),
		DeviceID:         id,
		Store:            store,
		HTTPClient:       &http.Client{Timeout: s.patience, Transport: d.faults},
		BatchSize:        5 + s.rnd.IntN(11),
		PageSize:         3 + s.rnd.IntN(10),
		MaxRetries:       1 + s.rnd.IntN(3),
		Sleep:            func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
		MutationIDPrefix: id,
		OnOutcome:        func(m engine.Mutation, o engine.Outcome) { s.ledger.record(d, m, o) },
	}
	s.open(d)
	return d
}

func (s *scenario) open(d *convDevice) {
	c, err := client.New(d.cfg)
	if err != nil {
		s.t.Fatalf("%s: open: %v", d.id, err)
	}
	d.c = c
}

// playRound makes every device edit locally, then syncs those that are
// online: one after the other in a seeded order, or all at once. In the
// restart round the server restarts while the devices after a seeded cut sync.
func (s *scenario) playRound(r int, restart bool) {
	s.round = r
	if time.Now().After(s.deadline) {
		s.t.Fatalf("round %d: the scenario ran out of time (two minutes before the test binary's -timeout): a store that stopped answering?", r)
	}
	var online []*convDevice
	for _, d := range s.devs {
		if s.rnd.IntN(25) == 0 {
			s.open(d) // the app was killed and started again
			s.reopens++
		}
		if s.rnd.Float64() < 0.65 {
			online = append(online, d)
		}
		for range s.rnd.IntN(4) {
			s.randomEdit(d)
		}
	}
	s.sameFieldEdits()
	s.rnd.Shuffle(len(online), func(i, j int) { online[i], online[j] = online[j], online[i] })

	switch {
	case restart:
		k := s.rnd.IntN(len(online) + 1)
		for _, d := range online[:k] {
			s.sync(d)
		}
		wait := s.syncAll(online[k:])
		s.restart()
		wait()
	case s.rnd.IntN(3) == 0:
		s.concurrentRounds++
		s.syncAll(online)()
	default:
		for _, d := range online {
			s.sync(d)
		}
	}
}

// budget is the context of one operation: the test's patience, within the
// scenario's deadline.
func (s *scenario) budget() (context.Context, context.CancelFunc) {
	dl := time.Now().Add(s.patience)
	if s.deadline.Before(dl) {
		dl = s.deadline
	}
	return context.WithDeadline(context.Background(), dl)
}

// syncAll starts a Sync of every device in its own goroutine and returns
// the function that waits for them.
func (s *scenario) syncAll(devs []*convDevice) (wait func()) {
	var wg sync.WaitGroup
	for _, d := range devs {
		wg.Go(func() { s.sync(d) })
	}
	return wg.Wait
}

// sync runs one Sync. Failures the faults and the restart cause are
// expected (the device tries again next round); a refused request is not.
func (s *scenario) sync(d *convDevice) {
	ctx, cancel := s.budget()
	defer cancel()
	_, err := d.c.Sync(ctx)
	s.syncs.Add(1)
	if err != nil {
		s.syncErrors.Add(1)
	}
	if err != nil && !transient(err) {
		s.t.Errorf("round %d: %s: sync failed for a reason no fault explains: %v", s.round, d.id, err)
	}
}

func transient(err error) bool {
	var re *client.RequestError
	if errors.As(err, &re) {
		return re.Status >= 500 || re.Status == http.StatusTooManyRequests
	}
	var ue *url.Error
	var ne net.Error
	return errors.Is(err, client.ErrDropped) || errors.Is(err, client.ErrReplyLost) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.As(err, &ue) || errors.As(err, &ne)
}

// restart stops the server and starts a new one on the same data directory
// and store; devices reach it through the rewriting transport.
func (s *scenario) restart() {
	// A connection the transport dialled but never used counts as busy to
	// the server for its first 5 s, so shutdown would wait on it: close them.
	s.net.base.(*http.Transport).CloseIdleConnections()
	s.srv.Stop()
	s.srv = startServer(s.t, s.data, s.store)
	s.net.point(s.srv.URL)
	s.restarts++
}

// settle syncs d while no fault is injected. A failure a busy machine
// explains (503 from a store that did not answer in time, a request that
// outlasted the test's patience) is tried again, as the app would on its next
// sync, until the scenario's deadline; any other failure is returned.
func (s *scenario) settle(d *convDevice) (client.SyncReport, error) {
	for {
		ctx, cancel := s.budget()
		rep, err := d.c.Sync(ctx)
		cancel()
		if err == nil || !transient(err) || time.Now().After(s.deadline) {
			return rep, err
		}
		s.t.Logf("%s: sync failed on a busy machine, again: %v", d.id, err)
	}
}

// converge turns the faults off and syncs every device until a whole pass
// pushes and pulls nothing.
func (s *scenario) converge() {
	for _, d := range s.devs {
		d.faults.DropRequest, d.faults.LoseReply = 0, 0
	}
	for pass := 1; pass <= 10; pass++ {
		quiet := true
		for _, d := range s.devs {
			rep, err := s.settle(d)
			if err != nil {
				s.t.Fatalf("converge pass %d: %s: %v", pass, d.id, err)
			}
			if rep.Push.Sent > 0 || rep.Pull.Changes > 0 || d.c.Pending() > 0 {
				quiet = false
			}
		}
		if quiet {
			return
		}
	}
	s.t.Fatal("the devices did not converge within 10 passes")
}

// rejectionInBatch pushes, from every device with an empty queue, one batch
// of an invalid create between valid mutations: only it is rejected.
func (s *scenario) rejectionInBatch() {
	for _, d := range s.devs {
		bad, good := s.newID("note"), s.newID("note")
		s.poisoned[bad] = true
		s.issue(d, true, false, d.c.Create(notesColl, bad, s.noteDoc(d, "")))
		s.issue(d, false, true, d.c.Create(notesColl, good, s.noteDoc(d, s.value(d))))
		s.issue(d, false, true, d.c.Update(notesColl, good, map[string]any{"tags": []string{"pricing"}}))
		ctx, cancel := s.budget()
		rep, err := d.c.Push(ctx)
		cancel()
		if err != nil {
			s.t.Fatalf("%s: push: %v", d.id, err)
		}
		if rep.Sent != 3 || rep.Rejected != 1 || rep.Applied != 2 || rep.Retries != 0 {
			s.t.Errorf("%s: one batch of [invalid create, create, update]: %+v; want 3 sent in one request, 1 rejected, 2 applied",
				d.id, rep)
		}
	}
}

// Edits. Every choice comes from s.rnd and sorted ids, so a seed replays them.

func (s *scenario) newID(kind string) string {
	s.nextID++
	return fmt.Sprintf("%s-%d", kind, s.nextID)
}

// value is a text nobody wrote before, so a replay can tell writes apart.
func (s *scenario) value(d *convDevice) string {
	s.nextID++
	return fmt.Sprintf("%s r%d v%d", d.id, s.round, s.nextID)
}

func (s *scenario) noteDoc(d *convDevice, text string) map[string]any {
	customer := "c-none"
	if ids := sortedKeys(d.c.Docs(customersColl), nil); len(ids) > 0 {
		customer = ids[s.rnd.IntN(len(ids))]
	}
	doc := map[string]any{
		"customer_id": customer, "text": text,
		"created_at": time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC).Add(time.Duration(s.nextID) * time.Minute).Format(time.RFC3339),
	}
	if s.rnd.IntN(2) == 0 {
		doc["tags"] = s.tags()
	}
	return doc
}

func (s *scenario) tags() []string {
	out := []string{}
	for _, tag := range []string{"pricing", "competitor", "complaint", "motors", "urgent"} {
		if s.rnd.IntN(3) == 0 {
			out = append(out, tag)
		}
	}
	return out
}

// issue records a mutation the test just enqueued on d.
func (s *scenario) issue(d *convDevice, invalid, mustApply bool, err error) {
	if err != nil {
		s.t.Fatalf("round %d: %s: local edit: %v", s.round, d.id, err)
	}
	d.issued++
	s.ledger.issue(d.mutationID(d.issued), intent{invalid: invalid, mustApply: mustApply})
}

// pick returns a random visible document id of coll on d ("" if none).
func (s *scenario) pick(d *convDevice, coll string) string {
	ids := sortedKeys(d.c.Docs(coll), s.poisoned)
	if len(ids) == 0 {
		return ""
	}
	return ids[s.rnd.IntN(len(ids))]
}

func (s *scenario) randomEdit(d *convDevice) {
	if d == s.admin {
		s.adminEdit()
		return
	}
	switch p := s.rnd.IntN(100); {
	case p < 35:
		s.issue(d, false, false, d.c.Create(notesColl, s.newID("note"), s.noteDoc(d, s.value(d))))
	case p < 65:
		if id := s.pick(d, notesColl); id != "" {
			fields := map[string]any{}
			switch s.rnd.IntN(3) {
			case 0:
				fields["text"] = s.value(d)
			case 1:
				fields["tags"] = s.tags()
			default:
				fields["text"], fields["tags"] = s.value(d), s.tags()
			}
			s.issue(d, false, false, d.c.Update(notesColl, id, fields))
		}
	case p < 75:
		if id := s.pick(d, notesColl); id != "" {
			s.issue(d, false, false, d.c.Delete(notesColl, id))
		}
	case p < 90:
		if id := s.pick(d, customersColl); id != "" {
			field := []string{"notes", "segment"}[s.rnd.IntN(2)]
			s.issue(d, false, false, d.c.Update(customersColl, id, map[string]any{field: s.value(d)}))
		}
	case p < 95:
		// An invalid create (text violates minLength 1), and a valid one
		// right behind it that must not be blocked.
		id := s.newID("note")
		s.poisoned[id] = true
		s.issue(d, true, false, d.c.Create(notesColl, id, s.noteDoc(d, "")))
		s.issue(d, false, true, d.c.Create(notesColl, s.newID("note"), s.noteDoc(d, s.value(d))))
	default:
		if id := s.pick(d, notesColl); id != "" {
			s.issue(d, true, false, d.c.Update(notesColl, id, map[string]any{"text": ""}))
		}
	}
}

func (s *scenario) adminEdit() {
	d := s.admin
	switch p := s.rnd.IntN(100); {
	case p < 40:
		if id := s.pick(d, customersColl); id != "" {
			field := []string{"notes", "segment"}[s.rnd.IntN(2)]
			s.issue(d, false, false, d.c.Update(customersColl, id, map[string]any{field: s.value(d)}))
		}
	case p < 55:
		if id := s.pick(d, customersColl); id != "" {
			s.reassigned[id] = true
			s.issue(d, false, false, d.c.Update(customersColl, id, map[string]any{"assigned_reps": s.someReps()}))
		}
	case p < 65:
		s.createCustomer(s.someReps())
	}
}

func (s *scenario) createCustomer(reps []string) {
	d := s.admin
	id := s.newID("c")
	s.issue(d, false, false, d.c.Create(customersColl, id, map[string]any{
		"name": "Customer " + id, "segment": "OEM", "assigned_reps": reps,
	}))
}

// someReps is a non-empty subset of the reps, in order.
func (s *scenario) someReps() []string {
	for {
		var out []string
		for _, r := range convReps {
			if s.rnd.IntN(2) == 0 {
				out = append(out, r)
			}
		}
		if len(out) > 0 {
			return out
		}
	}
}

// sameFieldEdits makes two devices write the same field of the same
// document in this round: two phones of one rep on a note, and two users
// (reps or the admin) on a shared customer.
func (s *scenario) sameFieldEdits() {
	for _, u := range convReps {
		var mine []*convDevice
		for _, d := range s.devs {
			if d.user == u {
				mine = append(mine, d)
			}
		}
		i := s.rnd.IntN(len(mine))
		j := (i + 1 + s.rnd.IntN(len(mine)-1)) % len(mine)
		a, b := mine[i], mine[j]
		shared := sortedKeys(a.c.Docs(notesColl), s.poisoned)
		theirs := b.c.Docs(notesColl)
		shared = slices.DeleteFunc(shared, func(id string) bool { _, ok := theirs[id]; return !ok })
		if len(shared) == 0 {
			continue
		}
		id := shared[s.rnd.IntN(len(shared))]
		field := []string{"text", "tags"}[s.rnd.IntN(2)]
		for _, d := range []*convDevice{a, b} {
			var v any = s.value(d)
			if field == "tags" {
				v = append(s.tags(), d.id)
			}
			s.issue(d, false, false, d.c.Update(notesColl, id, map[string]any{field: v}))
		}
	}

	a := s.devs[s.rnd.IntN(len(s.devs))]
	var others []*convDevice
	for _, d := range s.devs {
		if d.user != a.user {
			others = append(others, d)
		}
	}
	b := others[s.rnd.IntN(len(others))]
	shared := sortedKeys(a.c.Docs(customersColl), nil)
	theirs := b.c.Docs(customersColl)
	shared = slices.DeleteFunc(shared, func(id string) bool { _, ok := theirs[id]; return !ok })
	if len(shared) == 0 {
		return
	}
	id := shared[s.rnd.IntN(len(shared))]
	for _, d := range []*convDevice{a, b} {
		s.issue(d, false, false, d.c.Update(customersColl, id, map[string]any{"notes": s.value(d)}))
	}
}

func sortedKeys[V any](m map[string]V, except map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		if !except[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// currentServer sends every request to the server running now (its port
// changes on restart) and counts, per mutation id, the pushes the server
// answered: an id answered twice was sent again after the server had
// committed it.
type currentServer struct {
	host atomic.Pointer[string]
	base http.RoundTripper

	mu     sync.Mutex
	served map[string]int
}

func (cs *currentServer) point(rawURL string) {
	u, err := url.Parse(rawURL)
	if err != nil {
		panic(err)
	}
	cs.host.Store(&u.Host)
}

func (cs *currentServer) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.URL.Host, r.Host = *cs.host.Load(), ""
	var ids []string
	if req.URL.Path == "/v1/sync/push" && req.GetBody != nil {
		if body, err := req.GetBody(); err == nil {
			var p engine.PushRequest
			if json.NewDecoder(body).Decode(&p) == nil {
				for _, m := range p.Mutations {
					ids = append(ids, m.ID)
				}
			}
		}
	}
	resp, err := cs.base.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusOK && len(ids) > 0 {
		cs.mu.Lock()
		for _, id := range ids {
			cs.served[id]++
		}
		cs.mu.Unlock()
	}
	return resp, err
}

// resent counts the mutations the server answered more than once.
func (cs *currentServer) resent() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	n := 0
	for _, c := range cs.served {
		if c > 1 {
			n++
		}
	}
	return n
}

// The ledger: what the test enqueued, and what the server answered.

type intent struct {
	invalid   bool // the test made it invalid on purpose
	mustApply bool // nothing can stop it (a fresh create behind an invalid one)
}

type acked struct {
	dev *convDevice
	m   engine.Mutation
	o   engine.Outcome
	intent
}

type ledger struct {
	mu       sync.Mutex
	intents  map[string]intent
	outcomes map[string]*acked
	order    []*acked // in the order the devices learned them
	dups     []string
}

func newLedger() *ledger {
	return &ledger{intents: map[string]intent{}, outcomes: map[string]*acked{}}
}

func (l *ledger) issue(id string, in intent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.intents[id] = in
}

func (l *ledger) record(d *convDevice, m engine.Mutation, o engine.Outcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, dup := l.outcomes[m.ID]; dup {
		l.dups = append(l.dups, m.ID)
		return
	}
	a := &acked{dev: d, m: m, o: o, intent: l.intents[m.ID]}
	l.outcomes[m.ID] = a
	l.order = append(l.order, a)
}

func (s *scenario) stats() string {
	var applied, merged, conflicts, rejected, deletes int
	for _, a := range s.ledger.order {
		switch a.o.Status {
		case engine.StatusApplied:
			applied++
			if a.m.Op == engine.OpDelete {
				deletes++
			}
		case engine.StatusMerged:
			merged++
			conflicts += len(a.o.Conflicts)
		case engine.StatusRejected:
			rejected++
		}
	}
	var fc client.FaultCounts
	for _, d := range s.devs {
		c := d.faults.Counts()
		fc.Requests += c.Requests
		fc.Dropped += c.Dropped
		fc.Lost += c.Lost
	}
	return fmt.Sprintf("%d mutations: %d applied (%d deletes), %d merged (%d field conflicts), %d rejected; "+
		"%d requests, %d dropped, %d replies lost, %d mutations answered twice; "+
		"%d syncs, %d failed; %d concurrent rounds, %d restarts, %d app restarts",
		len(s.ledger.order), applied, deletes, merged, conflicts, rejected,
		fc.Requests, fc.Dropped, fc.Lost, s.net.resent(), s.syncs.Load(), s.syncErrors.Load(), s.concurrentRounds, s.restarts, s.reopens)
}

// Checks.

type docKey struct{ coll, id string }

func (k docKey) String() string { return k.coll + "/" + k.id }

// serverDoc is a document as a user's change feed shows it.
type serverDoc struct {
	version int64
	deleted bool
	doc     json.RawMessage
}

func (s *scenario) check(exercised bool) {
	t := s.t
	l := s.ledger
	// Every mutation the test enqueued was answered exactly once.
	if len(l.dups) > 0 {
		t.Errorf("mutations answered more than once: %v", l.dups)
	}
	issued := 0
	for _, d := range s.devs {
		issued += int(d.issued)
		for n := uint64(1); n <= d.issued; n++ {
			if _, ok := l.outcomes[d.mutationID(n)]; !ok {
				t.Errorf("mutation %s was enqueued but never answered", d.mutationID(n))
			}
		}
	}
	if len(l.outcomes) != issued {
		t.Errorf("%d outcomes for %d mutations enqueued", len(l.outcomes), issued)
	}

	// The server's truth per user: the raw feed (tombstones included), and
	// what a fresh device pulls, which must agree.
	feeds := map[string]map[docKey]serverDoc{}
	truth := map[string]map[string]map[string]client.Doc{}
	for _, u := range append(slices.Clone(convReps), convAdmin) {
		feeds[u] = s.feed(u)
		truth[u] = s.freshPull(u)
		live := map[string]map[string]client.Doc{}
		for k, f := range feeds[u] {
			if !f.deleted {
				if live[k.coll] == nil {
					live[k.coll] = map[string]client.Doc{}
				}
				live[k.coll][k.id] = client.Doc{Version: f.version, Doc: f.doc}
			}
		}
		if diff := diffStates(live, truth[u]); diff != "" {
			t.Errorf("%s: the feed and a fresh device disagree: %s", u, diff)
		}
	}

	// 1. Every device holds exactly the server's state for its scope.
	for _, d := range s.devs {
		if n := d.c.Pending(); n != 0 {
			t.Errorf("%s: %d mutations still pending", d.id, n)
		}
		if diff := diffStates(d.c.ServerState(), truth[d.user]); diff != "" {
			t.Errorf("%s: server copies differ from the server: %s", d.id, diff)
		}
		for _, coll := range []string{notesColl, customersColl} {
			// Docs carries no versions: compare the bodies.
			want := map[string]client.Doc{}
			for id, doc := range truth[d.user][coll] {
				want[id] = client.Doc{Doc: doc.Doc}
			}
			got := map[string]client.Doc{}
			for id, doc := range d.c.Docs(coll) {
				got[id] = client.Doc{Doc: doc}
			}
			if diff := diffStates(map[string]map[string]client.Doc{coll: got}, map[string]map[string]client.Doc{coll: want}); diff != "" {
				t.Errorf("%s: visible documents differ from the server: %s", d.id, diff)
			}
		}
	}

	// 2 and 3. The server's documents are exactly the replay of the
	// answered mutations in version order: none lost, none applied twice,
	// conflicts decided by the documented rule.
	byDoc := map[docKey][]*acked{}
	for _, a := range l.order {
		k := docKey{a.m.Collection, a.m.DocID}
		byDoc[k] = append(byDoc[k], a)
	}
	replayed := map[docKey]*replayDoc{}
	for _, k := range sortedDocKeys(byDoc) {
		if r := s.replay(k, byDoc[k]); r != nil {
			replayed[k] = r
		}
	}
	s.compareWithFeeds(replayed, feeds)

	// The brief's form of "nothing lost": live notes on the server are the
	// applied creates minus the applied deletes.
	want := map[string]bool{}
	for _, a := range l.order {
		if a.m.Collection == notesColl && a.m.Op == engine.OpCreate && a.o.Status == engine.StatusApplied {
			want[a.m.DocID] = true
		}
	}
	for _, a := range l.order {
		if a.m.Collection == notesColl && a.m.Op == engine.OpDelete && a.o.Status == engine.StatusApplied {
			delete(want, a.m.DocID)
		}
	}
	got := map[string]bool{}
	for _, u := range convReps {
		for id := range truth[u][notesColl] {
			got[id] = true
		}
	}
	for id := range truth[convAdmin][notesColl] {
		got[id] = true
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("live notes on the server (%d) != applied creates minus applied deletes (%d)", len(got), len(want))
	}

	// 4. Rejections: the invalid edits and nothing unexplained.
	invalid := 0
	for _, a := range l.order {
		s.checkRejection(a, byDoc[docKey{a.m.Collection, a.m.DocID}])
		if a.invalid && a.o.Status == engine.StatusRejected {
			invalid++
		}
	}

	if !exercised {
		t.Logf("fewer than 20 rounds: not checking that the faults and conflicts happened")
		return
	}
	// A run in which nothing went wrong proves nothing.
	var fc client.FaultCounts
	for _, d := range s.devs {
		c := d.faults.Counts()
		fc.Dropped += c.Dropped
		fc.Lost += c.Lost
	}
	conflicts, deletes := 0, 0
	for _, a := range l.order {
		conflicts += len(a.o.Conflicts)
		if a.m.Op == engine.OpDelete && a.o.Status == engine.StatusApplied {
			deletes++
		}
	}
	if fc.Dropped == 0 || fc.Lost == 0 || s.net.resent() == 0 || conflicts == 0 || deletes == 0 || invalid == 0 || s.restarts != 1 {
		t.Errorf("the scenario did not exercise what it proves: %s", s.stats())
	}
}

// feed reads user's whole change feed over HTTP: live documents and
// tombstones; an evicted document is gone.
func (s *scenario) feed(user string) map[docKey]serverDoc {
	out := map[docKey]serverDoc{}
	cp := ""
	for {
		var r pullReply
		u := s.srv.URL + "/v1/sync/pull?limit=7&checkpoint=" + url.QueryEscape(cp)
		if st := do(s.t, "GET", u, s.tokens[user], nil, &r); st != http.StatusOK {
			s.t.Fatalf("%s: pull: status %d", user, st)
		}
		for _, c := range r.Changes {
			k := docKey{c.Collection, c.ID}
			switch c.Op {
			case "put":
				out[k] = serverDoc{version: c.Version, doc: c.Doc}
			case "delete":
				out[k] = serverDoc{version: c.Version, deleted: true}
			case "evict":
				delete(out, k)
			default:
				s.t.Fatalf("%s: pull: unknown op %q", user, c.Op)
			}
		}
		cp = r.Checkpoint
		if !r.HasMore {
			return out
		}
	}
}

// freshPull is what a new device of user pulls.
func (s *scenario) freshPull(user string) map[string]map[string]client.Doc {
	c, err := client.New(client.Config{BaseURL: s.srv.URL, Token: client.StaticToken(s.tokens[user]),
		DeviceID: "truth-" + user, PageSize: 11})
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := s.budget()
	defer cancel()
	if _, err := c.Pull(ctx); err != nil {
		s.t.Fatalf("%s: fresh pull: %v", user, err)
	}
	return c.ServerState()
}

// diffStates describes how two collection -> id -> doc maps differ ("" if
// they do not): versions equal, bodies equal as JSON values.
func diffStates(got, want map[string]map[string]client.Doc) string {
	var diffs []string
	colls := map[string]bool{}
	for c := range got {
		colls[c] = true
	}
	for c := range want {
		colls[c] = true
	}
	for _, coll := range sortedKeys(colls, nil) {
		ids := map[string]bool{}
		for id := range got[coll] {
			ids[id] = true
		}
		for id := range want[coll] {
			ids[id] = true
		}
		for _, id := range sortedKeys(ids, nil) {
			g, gok := got[coll][id]
			w, wok := want[coll][id]
			switch {
			case !gok:
				diffs = append(diffs, fmt.Sprintf("%s/%s missing (server has v%d %s)", coll, id, w.Version, w.Doc))
			case !wok:
				diffs = append(diffs, fmt.Sprintf("%s/%s v%d %s is not on the server", coll, id, g.Version, g.Doc))
			case g.Version != w.Version || !sameJSON(g.Doc, w.Doc):
				diffs = append(diffs, fmt.Sprintf("%s/%s is v%d %s, server has v%d %s", coll, id, g.Version, g.Doc, w.Version, w.Doc))
			}
		}
	}
	if len(diffs) > 5 {
		diffs = append(diffs[:5], fmt.Sprintf("and %d more", len(diffs)-5))
	}
	return strings.Join(diffs, "; ")
}

func decodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

func sameJSON(a, b []byte) bool {
	va, errA := decodeJSON(a)
	vb, errB := decodeJSON(b)
	return errA == nil && errB == nil && reflect.DeepEqual(va, vb)
}

func sortedDocKeys[V any](m map[docKey]V) []docKey {
	out := make([]docKey, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// replayDoc is a document rebuilt from the outcomes.
type replayDoc struct {
	owner    string
	customer string // the customer a note hangs off
	version  int64
	deleted  bool
	body     map[string]any
}

type fieldMeta struct {
	version int64
	device  string
}

// replay rebuilds a document from the answers its mutations got, checking
// each against the conflict rule of docs/protocol.md. It returns nil for a
// document that was never created.
//
// Every accepted change makes exactly one new version: the create is 1, an
// applied update or a merge that kept a field makes the next one, and the
// first delete makes the last; a merge that kept none of its fields and a
// second delete answer with the version they found. So the versions made
// must be exactly 1..V, V being the server's version: a change applied twice
// would make two, a lost one would leave a gap.
func (s *scenario) replay(k docKey, as []*acked) *replayDoc {
	t := s.t
	made := map[int64]*acked{}    // version -> the change that made it
	found := map[int64][]*acked{} // version -> answers that changed nothing
	var deletes []*acked
	makes := func(v int64, a *acked) {
		if prev := made[v]; prev != nil {
			t.Errorf("%s: version %d was made twice: by %s (%s) and %s (%s)", k, v, prev.m.ID, prev.m.Op, a.m.ID, a.m.Op)
			return
		}
		made[v] = a
	}
	creates := 0
	for _, a := range as {
		m, o := &a.m, &a.o
		switch {
		case o.Status == engine.StatusRejected:
		case m.Op == engine.OpCreate:
			creates++
			if o.Status != engine.StatusApplied || o.Version != 1 {
				t.Errorf("%s: create %s answered %s v%d; want applied v1", k, m.ID, o.Status, o.Version)
			}
			makes(1, a)
		case m.Op == engine.OpUpdate && o.Status == engine.StatusMerged && len(o.Conflicts) == len(m.Fields):
			found[o.Version] = append(found[o.Version], a)
		case m.Op == engine.OpUpdate:
			makes(o.Version, a)
		case m.Op == engine.OpDelete:
			if o.Status != engine.StatusApplied {
				t.Errorf("%s: delete %s answered %s; want applied", k, m.ID, o.Status)
			}
			deletes = append(deletes, a)
		}
	}
	if creates == 0 {
		if len(made)+len(found)+len(deletes) > 0 {
			t.Errorf("%s: changes were accepted for a document never created", k)
		}
		return nil
	}
	if creates > 1 {
		t.Errorf("%s: created %d times", k, creates)
	}
	if len(deletes) > 0 {
		makes(deletes[0].o.Version, deletes[0])
		for _, a := range deletes[1:] {
			if a.o.Version != deletes[0].o.Version {
				t.Errorf("%s: deletes answered v%d (%s) and v%d (%s); a document is deleted once",
					k, deletes[0].o.Version, deletes[0].m.ID, a.o.Version, a.m.ID)
			}
		}
	}
	var last int64
	for v := range made {
		last = max(last, v)
	}

	r := &replayDoc{owner: made[1].dev.user, customer: customerOfCreate(made[1].m)}
	meta := map[string]fieldMeta{}
	for v := int64(1); v <= last; v++ {
		a := made[v]
		if a == nil {
			t.Errorf("%s: version %d of %d was made by no answered mutation: a mutation was applied twice, or a change no device was told of",
				k, v, last)
			return nil
		}
		if r.deleted {
			t.Errorf("%s: %s %s made v%d after the delete", k, a.m.Op, a.m.ID, v)
		}
		switch a.m.Op {
		case engine.OpCreate:
			body, err := decodeJSON(a.m.Doc)
			if err != nil {
				t.Fatalf("%s: create %s: %v", k, a.m.ID, err)
			}
			r.body = body.(map[string]any)
			for f := range r.body {
				meta[f] = fieldMeta{1, a.dev.id}
			}
		case engine.OpUpdate:
			if a.invalid {
				t.Errorf("%s: invalid update %s made v%d", k, a.m.ID, v)
			}
			kept := s.checkUpdate(k, v-1, r.body, meta, a)
			for f, raw := range a.m.Fields {
				if kept[f] {
					continue
				}
				val, _ := decodeJSON(raw)
				r.body[f] = val
				meta[f] = fieldMeta{v, a.dev.id}
			}
			// A replayed answer carries no document (docs/protocol.md).
			if a.o.Status == engine.StatusMerged && !a.o.Replayed && !sameJSON(a.o.Doc, mustMarshal(t, r.body)) {
				t.Errorf("%s: merge %s answered %s; the replay has %s", k, a.m.ID, a.o.Doc, mustMarshal(t, r.body))
			}
		case engine.OpDelete:
			r.deleted = true
		}
		r.version = v
		for _, a := range found[v] {
			if r.deleted {
				t.Errorf("%s: update %s of the deleted document was merged, not rejected", k, a.m.ID)
				continue
			}
			s.checkUpdate(k, v, r.body, meta, a)
			if !a.o.Replayed && !sameJSON(a.o.Doc, mustMarshal(t, r.body)) {
				t.Errorf("%s: merge %s answered %s; the replay has %s", k, a.m.ID, a.o.Doc, mustMarshal(t, r.body))
			}
		}
		delete(found, v)
	}
	for v, as := range found {
		for _, a := range as {
			t.Errorf("%s: merge %s answered v%d, which no mutation made", k, a.m.ID, v)
		}
	}
	return r
}

// checkUpdate checks the answer to update a, decided on the document at
// version cur, against the conflict rule: a field that another device
// changed after the base version keeps its value and is reported; the
// answer is merged when anything changed concurrently. It returns the
// fields whose committed value was kept.
func (s *scenario) checkUpdate(k docKey, cur int64, body map[string]any, meta map[string]fieldMeta, a *acked) map[string]bool {
	t := s.t
	m, o := &a.m, &a.o
	if m.BaseVersion > cur {
		t.Errorf("%s: update %s with base v%d was decided on v%d", k, m.ID, m.BaseVersion, cur)
	}
	concurrent := false
	for _, fm := range meta {
		if fm.version > m.BaseVersion && fm.device != a.dev.id {
			concurrent = true
		}
	}
	want := map[string]bool{}
	for f := range m.Fields {
		if fm, ok := meta[f]; ok && fm.version > m.BaseVersion && fm.device != a.dev.id {
			want[f] = true
		}
	}
	got := map[string]bool{}
	for _, c := range o.Conflicts {
		got[c.Field] = true
		keptOK := sameJSON(c.Kept, mustMarshal(t, body[c.Field])) || (o.Replayed && c.Kept == nil) // a replay names no kept value
		if !sameJSON(c.Yours, m.Fields[c.Field]) || !keptOK || c.KeptVersion != meta[c.Field].version {
			t.Errorf("%s: update %s: conflict on %s reports yours %s, kept %s v%d; want yours %s, kept %s v%d",
				k, m.ID, c.Field, c.Yours, c.Kept, c.KeptVersion, m.Fields[c.Field], mustMarshal(t, body[c.Field]), meta[c.Field].version)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: update %s (device %s, base v%d, on v%d) reports conflicts on %v; the rule gives %v",
			k, m.ID, a.dev.id, m.BaseVersion, cur, sortedKeys(got, nil), sortedKeys(want, nil))
	}
	status := engine.StatusApplied
	if concurrent || len(want) > 0 {
		status = engine.StatusMerged
	}
	if o.Status != status {
		t.Errorf("%s: update %s (device %s, base v%d, on v%d) answered %s; want %s", k, m.ID, a.dev.id, m.BaseVersion, cur, o.Status, status)
	}
	return want
}

// compareWithFeeds checks the replay against each user's feed
// (docs/access.md): the admin sees every document; a customer is seen by
// its assigned reps, and a note by the reps its customer is assigned to now,
// whoever wrote it; nobody else sees either.
func (s *scenario) compareWithFeeds(replayed map[docKey]*replayDoc, feeds map[string]map[docKey]serverDoc) {
	t := s.t
	repsOf := func(r *replayDoc) []any {
		if r == nil || r.deleted {
			return nil
		}
		reps, _ := r.body["assigned_reps"].([]any)
		return reps
	}
	sees := func(u string, k docKey, r *replayDoc) bool {
		switch {
		case u == convAdmin:
			return true
		case k.coll == customersColl:
			return slices.Contains(repsOf(r), any(u))
		}
		return slices.Contains(repsOf(replayed[docKey{customersColl, r.customer}]), any(u))
	}
	for _, k := range sortedDocKeys(replayed) {
		r := replayed[k]
		for u, feed := range feeds {
			f, ok := feed[k]
			switch {
			case !sees(u, k, r):
				if ok && !f.deleted {
					t.Errorf("%s: %s sees it, out of its scope", k, u)
				}
			case !ok && r.deleted:
				// Deleted before this user could see it: there is nothing
				// to remove from their devices.
			case !ok:
				t.Errorf("%s: missing from %s's feed (replay: v%d, deleted %v)", k, u, r.version, r.deleted)
			case f.version != r.version || f.deleted != r.deleted:
				t.Errorf("%s: %s's feed has v%d deleted %v; the replay has v%d deleted %v", k, u, f.version, f.deleted, r.version, r.deleted)
			case !r.deleted && !sameJSON(f.doc, mustMarshal(t, r.body)):
				t.Errorf("%s: %s's feed has %s; the replay has %s", k, u, f.doc, mustMarshal(t, r.body))
			}
		}
	}
	for u, feed := range feeds {
		for k := range feed {
			if replayed[k] == nil {
				t.Errorf("%s: in %s's feed but no answered mutation created it", k, u)
			}
		}
	}
}

// checkRejection fails unless a rejection is explained: the invalid edits
// are schema violations (or meet a deleted document), a valid update is
// rejected only when its document was deleted or never created, or when the
// device's user lost the customer (docs/access.md).
func (s *scenario) checkRejection(a *acked, history []*acked) {
	t := s.t
	m, o := &a.m, &a.o
	lostCustomer := func(c string) bool { return s.reassigned[c] || c == "c-none" }
	if a.mustApply && o.Status != engine.StatusApplied &&
		!(o.Error != nil && o.Error.Code == fieldsales.CodeCustomerNotInScope && lostCustomer(customerOfCreate(*m))) {
		t.Errorf("%s: create %s behind an invalid one answered %s %+v; want applied", m.DocID, m.ID, o.Status, o.Error)
	}
	if o.Status != engine.StatusRejected {
		return
	}
	if o.Error == nil {
		t.Errorf("%s/%s: %s rejected without an error", m.Collection, m.DocID, m.ID)
		return
	}
	deleted := slices.ContainsFunc(history, func(h *acked) bool {
		return h.m.Op == engine.OpDelete && h.o.Status == engine.StatusApplied
	})
	// history is in the order the devices learned the answers, not the
	// order the server decided them: a create whose reply was lost can be
	// answered to its phone after another phone's edit of the note it made.
	var created *acked
	if i := slices.IndexFunc(history, func(h *acked) bool { return h.m.Op == engine.OpCreate }); i >= 0 {
		created = history[i]
	}
	code := o.Error.Code
	switch {
	case a.invalid && m.Op == engine.OpCreate:
		if code != engine.CodeSchemaViolation || o.Error.Pointer != "/doc/text" {
			t.Errorf("%s/%s: invalid create %s rejected %+v; want schema_violation at /doc/text", m.Collection, m.DocID, m.ID, *o.Error)
		}
	case a.invalid && code == engine.CodeSchemaViolation:
		if o.Error.Pointer != "/fields/text" {
			t.Errorf("%s/%s: invalid update %s rejected at %q; want /fields/text", m.Collection, m.DocID, m.ID, o.Error.Pointer)
		}
	case m.Op == engine.OpUpdate && code == engine.CodeDocumentDeleted && deleted:
	case m.Collection == customersColl && code == engine.CodeForbidden && s.reassigned[m.DocID]:
	// A note on a customer the rep lost (or never had: "c-none" stands for
	// a rep without customers) while the note waited on the phone.
	case m.Collection == notesColl && m.Op == engine.OpCreate && code == fieldsales.CodeCustomerNotInScope &&
		o.Error.Pointer == "/doc/customer_id" && lostCustomer(customerOfCreate(*m)):
	// An edit made on the phone to a note whose create was refused.
	case m.Op != engine.OpCreate && code == engine.CodeNotFound && created != nil && created.o.Status == engine.StatusRejected:
	case m.Collection == notesColl && m.Op != engine.OpCreate && code == engine.CodeForbidden && created != nil &&
		s.reassigned[customerOfCreate(created.m)]:
	// Only a note's author (or an admin) deletes it (docs/access.md, "Write rules").
	case m.Collection == notesColl && m.Op == engine.OpDelete && code == engine.CodeForbidden && created != nil &&
		created.dev.user != a.dev.user:
	default:
		t.Errorf("%s/%s: %s %s (invalid %v) rejected for no reason the scenario explains: %+v",
			m.Collection, m.DocID, m.Op, m.ID, a.invalid, *o.Error)
	}
}

// customerOfCreate returns the customer_id of a create ("" for others).
func customerOfCreate(m engine.Mutation) string {
	var doc struct {
		Customer string `json:"customer_id"`
	}
	if m.Op == engine.OpCreate {
		json.Unmarshal(m.Doc, &doc)
	}
	return doc.Customer
}

func mustMarshal(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
