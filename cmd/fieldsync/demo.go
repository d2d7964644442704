package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	gosync "sync"
	"text/tabwriter"
	"time"

	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/jwtauth"
	"github.com/fieldsync/fieldsync/schemas"
	"github.com/fieldsync/fieldsync/sqlite"
	engine "github.com/fieldsync/fieldsync/sync"
	"github.com/fieldsync/fieldsync/workflow"
)

const demoUsage = `usage: fieldsync demo [--data DIR] [--org demo] [--seed N] [--days 30] [--customers 300]

Loads a demo organisation into the embedded store in DIR (stop the server
first: SQLite is locked while it runs; or use "fieldsync serve --demo"):
an admin, two managers leading a team each, eight reps, one user per
back-office role, customers around Stuttgart and Munich, motors,
switchgear, cables and pumps with price lists, and the last --days days of
visit plans, visit logs, notes, orders and follow-ups, written through the
sync engine and the workflow as the phones and the back office would.
Every demo user's password is "` + demoPassword + `" (demo only).
Running it again changes nothing and says so. docs/operations.md has more.
`

// demoOptions say which demo to load.
type demoOptions struct {
	Data, Org       string
	Seed            uint64
	Days, Customers int
}

// demoCmd runs "fieldsync demo".
func demoCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, demoUsage)
		fs.PrintDefaults()
	}
	var o demoOptions
	fs.StringVar(&o.Data, "data", env("DATA", "./data"), "data directory: SQLite database and signing keys (env FIELDSYNC_DATA)")
	registerDemoFlags(fs, &o, "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError(fmt.Sprintf("demo takes no arguments, got %q", fs.Args()))
	}
	if err := o.check(); err != nil {
		return err
	}
	res, err := loadDemo(ctx, o, stderr, false)
	if err != nil {
		return err
	}
	res.print(stdout, "http://127.0.0.1:8080", "fieldsync serve --data "+o.Data)
	return nil
}

// registerDemoFlags declares the demo's shape flags (prefix "demo-" for
// serve).
func registerDemoFlags(fs *flag.FlagSet, o *demoOptions, prefix string) {
	fs.StringVar(&o.Org, prefix+"org", "demo", "organisation id of the demo")
	fs.Func(prefix+"seed", "random seed: the same seed gives the same demo (default 1)", func(s string) error {
		n, err := strconv.ParseUint(s, 10, 64)
		o.Seed = n
		return err
	})
	o.Seed = 1
	fs.IntVar(&o.Days, prefix+"days", 30, "days of visits, orders and follow-ups before today, 1 to 92")
	fs.IntVar(&o.Customers, prefix+"customers", 300, "customers, 8 to 5000")
}

func (o demoOptions) check() error {
	if o.Days < 1 || o.Days > 92 {
		return usageError("--days must be 1 to 92")
	}
	if o.Customers < 8 || o.Customers > 5000 {
		return usageError("--customers must be 8 to 5000")
	}
	if o.Org == "" || !engine.ValidID(o.Org) {
		return usageError("--org must be 1-128 characters of A-Z a-z 0-9 _ . : -")
	}
	return nil
}

// demoMarker is the demo's shape, kept in the organisation's name so that a
// second run with other flags is refused instead of mixing two demos.
var demoMarker = regexp.MustCompile(`\(demo: seed (\d+), (\d+) days, (\d+) customers\)$`)

func (o demoOptions) orgName() string {
	return fmt.Sprintf("%s (demo: seed %d, %d days, %d customers)", demoCompany, o.Seed, o.Days, o.Customers)
}

// demoClock is the simulated time the engine and the workflow run on
// while the demo month is replayed.
type demoClock struct {
	mu gosync.Mutex
	t  time.Time
}

func (c *demoClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *demoClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// demoLoader carries out the demo's events through the real engine,
// workflow and identity service, on the simulated clock.
type demoLoader struct {
	w     *demoWorld
	clock *demoClock
	store *sqlite.Store
	eng   *engine.Engine
	wf    *workflow.Service
	ids   *identity.Service
	// skipped counts follow-up actions a run left out because the
	// follow-up had moved on already (a second run skips them all).
	skipped int
}

// demoResult is what a load did and found.
type demoResult struct {
	w                    *demoWorld
	opts                 demoOptions
	fresh                bool // the organisation was created by this run
	changes              int64
	usersAdded, pwSet    int
	elapsed              time.Duration
	skippedLoad          bool // serve --demo found it complete and did nothing
	visits, orders, fups map[string]int
	reviewed, plans      int
	skipped              int // follow-up actions left out: the follow-up had moved on
	notes                int
}

func (r *demoResult) changed() bool {
	return r.fresh || r.changes > 0 || r.usersAdded > 0 || r.pwSet > 0
}

// loadDemo loads (or completes, or checks) the demo organisation in
// o.Data. With ifMissing, a demo whose users can sign in already is left
// alone without replaying it (serve --demo).
func loadDemo(ctx context.Context, o demoOptions, progress io.Writer, ifMissing bool) (*demoResult, error) {
	started := time.Now()
	sch, err := schemas.Load()
	if err != nil {
		return nil, err
	}
	keys, err := jwtauth.LoadOrCreate(o.Data)
	if err != nil {
		return nil, err
	}
	// Synchronous NORMAL: a demo is replayed, not acknowledged to phones,
	// so it does not need an fsync per commit (it is still crash-safe).
	st, err := sqlite.Open(ctx, filepath.Join(o.Data, "fieldsync.db"), sqlite.Options{Synchronous: "NORMAL"})
	if err != nil {
		return nil, fmt.Errorf("%w (is a server running on %s? stop it, or use fieldsync serve --demo)", err, o.Data)
	}
	defer st.Close()
	ids, err := identity.New(identity.Config{Store: st, Tokens: keys})
	if err != nil {
		return nil, err
	}
	res := &demoResult{opts: o}
	org, err := st.Org(ctx, o.Org)
	switch {
	case engine.ErrorKind(err) == engine.KindNotFound:
		name, tz := o.orgName(), demoTimeZone
		if org, err = ids.PutOrg(ctx, o.Org, identity.OrgChange{Name: &name, TimeZone: &tz}); err != nil {
			return nil, err
		}
		res.fresh = true
	case err != nil:
		return nil, err
	default:
		m := demoMarker.FindStringSubmatch(org.Name)
		if m == nil {
			return nil, fmt.Errorf("organisation %q exists and is not a demo organisation: choose another --org", o.Org)
		}
		if ifMissing {
			// serve --demo keeps the demo that is there, whatever its shape.
			o.Seed, _ = strconv.ParseUint(m[1], 10, 64)
			o.Days, _ = strconv.Atoi(m[2])
			o.Customers, _ = strconv.Atoi(m[3])
			res.opts = o
		}
		if m[1] != strconv.FormatUint(o.Seed, 10) || m[2] != strconv.Itoa(o.Days) || m[3] != strconv.Itoa(o.Customers) {
			return nil, fmt.Errorf("organisation %q holds the demo of --seed %s --days %s --customers %s: run with those, or choose another --org",
				o.Org, m[1], m[2], m[3])
		}
	}
	loc, err := time.LoadLocation(demoTimeZone)
	if err != nil {
		return nil, fmt.Errorf("time zone %s: %w", demoTimeZone, err)
	}
	// The demo's month ends when its organisation was created: a second
	// run, even days later, computes exactly the same documents.
	w := newDemoWorld(o.Org, o.Seed, o.Days, o.Customers, org.Created, loc)
	res.w = w
	if ifMissing && !res.fresh {
		if u, err := st.User(ctx, o.Org, "admin"); err == nil && u.PasswordHash != "" {
			res.skippedLoad = true
			res.elapsed = time.Since(started)
			return res, nil
		}
	}
	head0, err := st.Head(ctx, o.Org)
	if err != nil {
		return nil, err
	}
	clock := &demoClock{}
	clock.set(w.first.AddDate(0, 0, -7).Add(7 * time.Hour))
	eng, err := engine.New(ctx, engine.Config{Store: st, Schemas: sch, Directory: ids, Now: clock.Now})
	if err != nil {
		return nil, err
	}
	wf, err := workflow.New(workflow.Config{Writer: eng, Docs: st, Store: st, Orgs: ids, Directory: ids, Now: clock.Now})
	if err != nil {
		return nil, err
	}
	eng.AddHook(wf)
	l := &demoLoader{w: w, clock: clock, store: st, eng: eng, wf: wf, ids: ids}
	if err := l.people(ctx, res); err != nil {
		return nil, err
	}
	if err := l.reference(ctx); err != nil {
		return nil, err
	}
	prog := newDemoProgress(progress, len(w.events))
	for _, e := range w.events {
		clock.set(e.At)
		if err := e.Do(ctx, l); err != nil {
			prog.finish()
			return nil, fmt.Errorf("demo event at %s: %w", e.At.Format(time.RFC3339), err)
		}
		prog.step(e.At.In(loc))
	}
	prog.finish()
	// Passwords last: a demo whose users can sign in is a complete one.
	if res.pwSet, err = l.passwords(ctx); err != nil {
		return nil, err
	}
	head1, err := st.Head(ctx, o.Org)
	if err != nil {
		return nil, err
	}
	res.changes = head1 - head0
	res.skipped = l.skipped
	if err := l.summarise(ctx, res); err != nil {
		return nil, err
	}
	res.elapsed = time.Since(started)
	return res, nil
}

// people creates the teams and users that are missing (without passwords:
// those come last).
func (l *demoLoader) people(ctx context.Context, res *demoResult) error {
	for _, t := range l.w.teams {
		if _, err := l.ids.AddTeam(ctx, l.w.org, t.ID, t.Name); err != nil && engine.ErrorCode(err) != identity.CodeTeamExists {
			return err
		}
	}
	for _, u := range l.w.users {
		_, err := l.ids.User(ctx, l.w.org, u.ID)
		if err == nil {
			continue
		}
		if engine.ErrorKind(err) != engine.KindNotFound {
			return err
		}
		if _, err := l.ids.AddUser(ctx, l.w.org, identity.NewUser{ID: u.ID, Email: u.Email, Name: u.Name, Roles: u.Roles,
			Teams: u.Teams, Leads: u.Leads}); err != nil {
			return fmt.Errorf("add demo user %s: %w", u.Email, err)
		}
		res.usersAdded++
	}
	return nil
}

// passwords gives every demo user without one the demo password, hashing
// as many at once as the identity service allows.
func (l *demoLoader) passwords(ctx context.Context) (int, error) {
	var wg gosync.WaitGroup
	errs := make([]error, len(l.w.users))
	set := make([]bool, len(l.w.users))
	for i, u := range l.w.users {
		cur, err := l.ids.User(ctx, l.w.org, u.ID)
		if err != nil {
			return 0, err
		}
		if cur.PasswordHash != "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pw := demoPassword
			_, errs[i] = l.ids.UpdateUser(ctx, l.w.org, u.ID, identity.UserChange{Password: &pw})
			set[i] = errs[i] == nil
		}()
	}
	wg.Wait()
	n := 0
	for _, s := range set {
		if s {
			n++
		}
	}
	return n, errors.Join(errs...)
}

// reference writes the catalogue, the price lists and the customers as an
// import would: created when missing, never overwritten (an admin may have
// edited them since).
func (l *demoLoader) reference(ctx context.Context) error {
	var docs []engine.UpsertDoc
	add := func(coll, id string, fields map[string]any) {
		f := map[string]jsonRaw{}
		for k, v := range fields {
			f[k] = mustRaw(v)
		}
		docs = append(docs, engine.UpsertDoc{Collection: coll, ID: id, Fields: f, CreateOnly: true})
	}
	for _, p := range l.w.products {
		add(engine.CollProducts, p.ID, map[string]any{"sku": p.ID, "name": p.Name, "category": p.Category, "unit": p.Unit,
			"list_price": p.Price, "currency": "EUR", "active": p.Active})
	}
	validFrom := time.Date(l.w.first.Year(), 1, 1, 0, 0, 0, 0, l.w.loc).Format("2006-01-02")
	for _, pl := range l.w.lists {
		f := map[string]any{"name": pl.Name, "currency": "EUR", "valid_from": validFrom, "prices": pl.Prices}
		if pl.Segment != "" {
			f["segment"] = pl.Segment
		}
		add(engine.CollPriceLists, pl.ID, f)
	}
	for _, c := range l.w.customers {
		add(engine.CollCustomers, c.ID, c.doc())
	}
	admin := engine.Actor{Org: l.w.org, User: "admin", Roles: []string{engine.RoleAdmin}}
	size := l.eng.Limits().MaxMutations
	for i := 0; i < len(docs); i += size {
		outs, err := l.eng.Upsert(ctx, admin, "demo", docs[i:min(i+size, len(docs))])
		if err != nil {
			return err
		}
		for j, o := range outs {
			if o.Status == engine.StatusRejected {
				return fmt.Errorf("%s/%s: %s: %s", docs[i+j].Collection, docs[i+j].ID, o.Error.Code, o.Error.Message)
			}
		}
	}
	return nil
}

// actor is a demo user as the engine sees them.
func (l *demoLoader) actor(user string) engine.Actor {
	return engine.Actor{Org: l.w.org, User: user, Roles: l.w.user[user].Roles}
}

// push sends muts from user's phone (a manager's tablet), with the phone's
// clock as device_time. Every mutation must be applied or merged: a
// rejection is a mistake in the demo's plan.
func (l *demoLoader) push(ctx context.Context, user string, muts []engine.Mutation) error {
	u := l.w.user[user]
	device := "phone-" + user
	if slices.Contains(u.Roles, engine.RoleManager) {
		device = "tablet-" + user
	}
	outs, err := l.eng.Push(ctx, l.actor(user), engine.PushRequest{DeviceID: device, Mutations: muts,
		DeviceTime: l.clock.Now().Add(u.Skew).Format(time.RFC3339Nano)})
	if err != nil {
		return err
	}
	for i, o := range outs {
		if o.Status == engine.StatusRejected {
			return fmt.Errorf("%s pushing %s/%s: %s at %s: %s", user, muts[i].Collection, muts[i].DocID, o.Error.Code,
				o.Error.Pointer, o.Error.Message)
		}
	}
	return nil
}

// current reads documents' versions (what the device pulled last).
func (l *demoLoader) current(ctx context.Context, coll string, ids ...string) (map[string]*engine.Document, error) {
	refs := make([]engine.DocRef, len(ids))
	for i, id := range ids {
		refs[i] = engine.DocRef{Collection: coll, ID: id}
	}
	got, err := l.store.Get(ctx, l.w.org, refs)
	if err != nil {
		return nil, err
	}
	out := map[string]*engine.Document{}
	for r, d := range got {
		out[r.ID] = d
	}
	return out, nil
}

// cancelOrder: the rep cancels a submitted order from the phone.
func (l *demoLoader) cancelOrder(ctx context.Context, rep, order string) error {
	cur, err := l.current(ctx, engine.CollOrders, order)
	if err != nil || cur[order] == nil {
		return errors.Join(err, fmt.Errorf("order %s to cancel is missing", order))
	}
	return l.push(ctx, rep, []engine.Mutation{updateMut(order+"-cancel", engine.CollOrders, order, cur[order].Version,
		map[string]any{"status": "cancelled"})})
}

// review: a manager's review session of visit logs.
func (l *demoLoader) review(ctx context.Context, mgr string, ids []string, reviews map[string]map[string]any) error {
	cur, err := l.current(ctx, engine.CollVisitLogs, ids...)
	if err != nil {
		return err
	}
	var muts []engine.Mutation
	for _, id := range ids {
		if d := cur[id]; d != nil {
			muts = append(muts, updateMut(id+"-review", engine.CollVisitLogs, id, d.Version, map[string]any{"review": reviews[id]}))
		}
	}
	if len(muts) == 0 {
		return nil
	}
	return l.push(ctx, mgr, muts)
}

// act: a back-office user (or a manager) works a follow-up through the
// workflow's API, if it is still in the state the plan expects.
func (l *demoLoader) act(ctx context.Context, user, id, before string, a workflow.Action) error {
	cur, err := l.current(ctx, engine.CollFollowUps, id)
	if err != nil {
		return err
	}
	d := cur[id]
	if d == nil || jsonField(d.Body, "status") != before {
		l.skipped++
		return nil
	}
	if _, err := l.wf.Act(ctx, l.actor(user), id, a); err != nil {
		return fmt.Errorf("%s: %s %s: %w", user, a.Kind, id, err)
	}
	return nil
}

// sweep escalates overdue follow-ups, as serve does every minute.
func (l *demoLoader) sweep(ctx context.Context) error {
	_, err := l.wf.Sweep(ctx)
	return err
}

// summarise reads the demo's documents back and counts them by state.
func (l *demoLoader) summarise(ctx context.Context, res *demoResult) error {
	res.visits, res.orders, res.fups = map[string]int{}, map[string]int{}, map[string]int{}
	count := func(coll string, ids []string, each func(body []byte)) error {
		for i := 0; i < len(ids); i += 500 {
			got, err := l.current(ctx, coll, ids[i:min(i+500, len(ids))]...)
			if err != nil {
				return err
			}
			for _, d := range got {
				if !d.Deleted {
					each(d.Body)
				}
			}
		}
		return nil
	}
	err := count(engine.CollVisitLogs, l.w.visitIDs, func(b []byte) {
		res.visits[jsonField(b, "verification", "status")]++
		if jsonField(b, "review", "status") != "" {
			res.reviewed++
		}
	})
	if err == nil {
		err = count(engine.CollOrders, l.w.orderIDs, func(b []byte) { res.orders[jsonField(b, "status")]++ })
	}
	var fus []string
	for _, o := range l.w.orderIDs {
		for _, a := range []string{"credit_release", "price_approval", "availability_check", "erp_entry", "dispatch", "delivery", "invoice"} {
			fus = append(fus, workflow.FollowUpID(o, a))
		}
	}
	fus = append(fus, l.w.raisedIDs...)
	if err == nil {
		err = count(engine.CollFollowUps, fus, func(b []byte) { res.fups[jsonField(b, "status")]++ })
	}
	if err == nil {
		err = count(engine.CollVisitPlans, l.w.planIDs, func([]byte) { res.plans++ })
	}
	if err == nil {
		err = count(engine.CollCustomerNotes, l.w.noteIDs, func([]byte) { res.notes++ })
	}
	return err
}

// print tells what the demo holds and how to sign in. url is where the
// server listens (or will); start is the command that starts it, if any.
func (r *demoResult) print(out io.Writer, url, start string) {
	w, o := r.w, r.opts
	last := w.first.AddDate(0, 0, w.days-1)
	switch {
	case r.skippedLoad:
		fmt.Fprintf(out, "Demo organisation %q is loaded already (fieldsync demo checks and completes it).\n", o.Org)
	case r.changed() && r.fresh:
		fmt.Fprintf(out, "Loaded demo organisation %q in %.1f s (%d changes).\n", o.Org, r.elapsed.Seconds(), r.changes)
	case r.changed():
		fmt.Fprintf(out, "Completed demo organisation %q in %.1f s (%d changes, %d users added, %d passwords set).\n",
			o.Org, r.elapsed.Seconds(), r.changes, r.usersAdded, r.pwSet)
	default:
		fmt.Fprintf(out, "Demo organisation %q was complete already: nothing changed (checked in %.1f s).\n", o.Org, r.elapsed.Seconds())
	}
	if r.fresh && r.skipped > 0 {
		fmt.Fprintf(out, "  (%d planned follow-up actions found their follow-up in another state and were left out)\n", r.skipped)
	}
	fmt.Fprintf(out, "  %s, time zone %s; %d days of activity, %s to %s\n", demoCompany, demoTimeZone, w.days,
		w.first.Format("2006-01-02"), last.Format("2006-01-02"))
	fmt.Fprintf(out, "  %d users in %d teams, %d customers, %d products, %d price lists\n", len(w.users), len(w.teams),
		len(w.customers), len(w.products), len(w.lists))
	if !r.skippedLoad {
		fmt.Fprintf(out, "  %d visit logs (%s; %d reviewed), %d visit plans, %d customer notes\n", sum(r.visits),
			counts(r.visits, engine.VisitVerified, engine.VisitOutOfRange, engine.VisitNoGPS, engine.VisitLowAccuracy),
			r.reviewed, r.plans, r.notes)
		fmt.Fprintf(out, "  %d orders (%s)\n", sum(r.orders), counts(r.orders, workflow.StatusDraft, workflow.StatusSubmitted,
			workflow.StatusCreditHold, workflow.StatusPriceApproval, workflow.StatusConfirmed, workflow.StatusDelivered,
			workflow.StatusInvoiced, workflow.StatusRejected, workflow.StatusCancelled))
		fmt.Fprintf(out, "  %d follow-ups (%s)\n", sum(r.fups), counts(r.fups, workflow.FUOpen, workflow.FUClaimed,
			workflow.FUInProgress, workflow.FUBlocked, workflow.FUDone, workflow.FUCancelled))
	}
	fmt.Fprintf(out, "\nSign in as any of them. DEMO ONLY: every demo user's password is %q; keep no real data in this organisation.\n\n", demoPassword)
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ROLE\tNAME\tEMAIL\tTEAM")
	for _, u := range w.users {
		team := strings.Join(append(slices.Clone(u.Teams), u.Leads...), ",")
		if len(u.Leads) > 0 {
			team = "leads " + team
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", strings.Join(u.Roles, ","), u.Name, u.Email, team)
	}
	tw.Flush()
	rep, desk, mgr := w.user["rep-1"], w.user["order-desk"], w.user["manager-1"]
	fmt.Fprintf(out, "\nTry it with curl (%s%s):\n\n", strings.TrimSuffix(url, "/"), map[bool]string{true: " once `" + start + "` runs", false: ""}[start != ""])
	fmt.Fprintf(out, "  B=%s\n", strings.TrimSuffix(url, "/"))
	fmt.Fprintf(out, "  login() { curl -s $B/v1/auth/login -H 'Content-Type: application/json' \\\n"+
		"      -d \"{\\\"email\\\":\\\"$1\\\",\\\"password\\\":\\\"%s\\\",\\\"device_id\\\":\\\"laptop\\\"}\" |\n"+
		"      sed -E 's/.*\"access_token\":\"([^\"]+)\".*/\\1/'; }\n", demoPassword)
	fmt.Fprintf(out, "  REP=$(login %s)      # a rep: their customers, plans, visits, orders, notes\n", rep.Email)
	fmt.Fprintf(out, "  curl -s \"$B/v1/sync/pull?limit=100\" -H \"Authorization: Bearer $REP\"\n")
	fmt.Fprintf(out, "  DESK=$(login %s)    # the order desk's queue of follow-ups\n", desk.Email)
	fmt.Fprintf(out, "  curl -s \"$B/v1/followups?role=order_desk&status=open\" -H \"Authorization: Bearer $DESK\"\n")
	fmt.Fprintf(out, "  MGR=$(login %s)     # a manager: the team's KPIs over the demo's days\n", mgr.Email)
	fmt.Fprintf(out, "  curl -s \"$B/v1/kpis?team=%s&from=%s&to=%s\" -H \"Authorization: Bearer $MGR\"\n", mgr.Leads[0],
		w.first.Format("2006-01-02"), last.Format("2006-01-02"))
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// counts lists m's non-zero counts in the order of keys.
func counts(m map[string]int, keys ...string) string {
	var parts []string
	for _, k := range keys {
		if m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", m[k], k))
		}
	}
	for k, v := range m {
		if !slices.Contains(keys, k) && v > 0 {
			if k == "" {
				k = "none"
			}
			parts = append(parts, fmt.Sprintf("%d %s", v, k))
		}
	}
	return strings.Join(parts, ", ")
}

// demoProgress shows how far the replay of the month got: one line
// redrawn on a terminal, a line per tenth otherwise.
type demoProgress struct {
	w         io.Writer
	tty       bool
	done, all int
	shown     int
	drawn     time.Time
}

func newDemoProgress(w io.Writer, all int) *demoProgress {
	f, ok := w.(*os.File)
	return &demoProgress{w: w, tty: ok && isTerminal(f), all: all, shown: -1}
}

func (p *demoProgress) step(at time.Time) {
	p.done++
	if p.tty {
		if p.done == p.all || time.Since(p.drawn) >= 100*time.Millisecond {
			fmt.Fprintf(p.w, "\rdemo: replaying %s  %d/%d events", at.Format("Mon 2006-01-02 15:04"), p.done, p.all)
			p.drawn, p.shown = time.Now(), p.done
		}
		return
	}
	if tenth := 10 * p.done / max(p.all, 1); tenth > p.shown {
		fmt.Fprintf(p.w, "demo: %d%% (%s, %d/%d events)\n", 10*tenth, at.Format("2006-01-02"), p.done, p.all)
		p.shown = tenth
	}
}

func (p *demoProgress) finish() {
	if p.tty && p.shown >= 0 {
		fmt.Fprintln(p.w)
	}
}

type jsonRaw = json.RawMessage

func mustRaw(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // the demo's own values always marshal
	}
	return b
}

// jsonField returns the string at path in a JSON object, "" when absent.
func jsonField(body []byte, path ...string) string {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return ""
	}
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[k]
	}
	s, _ := v.(string)
	return s
}

// demoServeFlags are serve's --demo and --demo-org.
type demoServeFlags struct {
	on  bool
	org string
}

func (d *demoServeFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&d.on, "demo", envBool("DEMO", false),
		"first load the demo organisation into the embedded store, unless it is there already (fieldsync demo; env FIELDSYNC_DEMO)")
	fs.StringVar(&d.org, "demo-org", env("DEMO_ORG", "demo"), "organisation id of --demo (env FIELDSYNC_DEMO_ORG)")
}

// load runs before serve opens the store (SQLite admits one process, and
// the demo closes its own store when done). A demo organisation that
// exists is kept as it is, whatever flags made it.
func (d demoServeFlags) load(ctx context.Context, c serveConfig, stdout, stderr io.Writer) error {
	if !d.on {
		return nil
	}
	if c.MongoURI != "" {
		return usageError("--demo loads the embedded store; it cannot be used with --mongodb-uri")
	}
	o := demoOptions{Data: c.Data, Org: d.org, Seed: 1, Days: 30, Customers: 300}
	if err := o.check(); err != nil {
		return usageError(strings.Replace(err.Error(), "--org", "--demo-org", 1))
	}
	res, err := loadDemo(ctx, o, stderr, true)
	if err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil || host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	res.print(stdout, "http://"+net.JoinHostPort(host, port), "")
	return nil
}
