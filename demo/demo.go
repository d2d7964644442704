// Package demo generates the demo organisation: people, catalogue,
// customers and a month of visits, orders and follow-ups, replayed through
// the real engine, workflow and identity service into the embedded SQLite
// store. It knows no flags and no HTTP: cmd/fieldsync reads the options,
// the server serves what it loaded.
package demo

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/workflow"
)

// Options say which demo to load: the data directory of the embedded
// store, the organisation id, and the shape (the same seed, days and
// customers give the same demo).
type Options struct {
	Data, Org       string
	Seed            uint64
	Days, Customers int
	// Anchor is where the simulated days end. Zero: when the demo's
	// organisation was created, so that a second run, even days later,
	// computes exactly the same documents. Tests set it to replay the
	// demo of another hour or weekday; it is never in the future.
	Anchor time.Time
}

// Check refuses options outside the demo's limits; the messages name the
// command's flags.
func (o Options) Check() error {
	if o.Days < 1 || o.Days > 92 {
		return errors.New("--days must be 1 to 92")
	}
	if o.Customers < 8 || o.Customers > 5000 {
		return errors.New("--customers must be 8 to 5000")
	}
	if o.Org == "" || !engine.ValidID(o.Org) {
		return errors.New("--org must be 1-128 characters of A-Z a-z 0-9 _ . : -")
	}
	if o.Anchor.After(time.Now()) {
		return errors.New("the demo's anchor must not be in the future")
	}
	return nil
}

// demoMarker is the demo's shape, kept in the organisation's name so that a
// second run with other flags is refused instead of mixing two demos.
var demoMarker = regexp.MustCompile(`\(demo: seed (\d+), (\d+) days, (\d+) customers\)$`)

func (o Options) orgName() string {
	return fmt.Sprintf("%s (demo: seed %d, %d days, %d customers)", demoCompany, o.Seed, o.Days, o.Customers)
}

// Print tells what the demo holds and how to sign in. url is where the
// server listens (or will); start is the command that starts it, if any.
func (r *Result) Print(out io.Writer, url, start string) {
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
	fmt.Fprintf(out, "  %s, time zone %s; %d day(s) of activity, %s to %s\n", demoCompany, demoTimeZone, w.days,
		w.first.Format("2006-01-02"), last.Format("2006-01-02"))
	fmt.Fprintf(out, "  %d users in %d teams, %d customers, %d products, %d price lists\n", len(w.users), len(w.teams),
		len(w.customers), len(w.products), len(w.lists))
	if !r.skippedLoad {
		fmt.Fprintf(out, "  %d visit logs%s, %d reviewed; %d visit plans, %d customer notes\n", sum(r.visits),
			counts(r.visits, fieldsales.VisitVerified, fieldsales.VisitOutOfRange, fieldsales.VisitNoGPS, fieldsales.VisitLowAccuracy),
			r.reviewed, r.plans, r.notes)
		fmt.Fprintf(out, "  %d orders%s\n", sum(r.orders), counts(r.orders, workflow.StatusDraft, workflow.StatusSubmitted,
			workflow.StatusCreditHold, workflow.StatusPriceApproval, workflow.StatusConfirmed, workflow.StatusDelivered,
			workflow.StatusInvoiced, workflow.StatusRejected, workflow.StatusCancelled))
		fmt.Fprintf(out, "  %d follow-ups%s\n", sum(r.fups), counts(r.fups, workflow.FUOpen, workflow.FUClaimed,
			workflow.FUInProgress, workflow.FUBlocked, workflow.FUDone, workflow.FUCancelled))
	}
	fmt.Fprintf(out, "\nSign in as any of them. DEMO ONLY: every demo user's password is %q; keep no real data in this organisation.\n\n", Password)
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
		"      sed -E 's/.*\"access_token\":\"([^\"]+)\".*/\\1/'; }\n", Password)
	fmt.Fprintf(out, "  REP=$(login %s)      # a rep: their customers, plans, visits, orders, notes\n", rep.Email)
	fmt.Fprintf(out, "  curl -s \"$B/v1/sync/pull?limit=100\" -H \"Authorization: Bearer $REP\"\n")
	fmt.Fprintf(out, "  DESK=$(login %s)    # the order desk's follow-ups that can be worked now\n", desk.Email)
	fmt.Fprintf(out, "  curl -s \"$B/v1/followups?actionable=true\" -H \"Authorization: Bearer $DESK\"\n")
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

// counts lists m's non-zero counts in the order of keys, in parentheses
// (nothing when there are none).
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
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
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
	var tty bool
	if ok {
		st, err := f.Stat()
		tty = err == nil && st.Mode()&os.ModeCharDevice != 0
	}
	return &demoProgress{w: w, tty: tty, all: all, shown: -1}
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
