package console

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/kpi"
)

// kpiView is the KPIs page: a team's table (or one rep's days) for a
// period, with a bar chart the server draws as SVG.
type kpiView struct {
	Team, Rep, RepName, From, To string
	Teams                        []option
	Rows                         []kpiRow
	Total                        kpiRow
	Bars                         []bar
	ChartHeight                  int
}

type option struct {
	Value, Label string
	Selected     bool
}

// kpiRow is one line of the table: a rep of the team, or a day of a rep.
type kpiRow struct {
	Label, Href                                 string
	Visits, Verified, Planned, PlannedVisited   int
	Productive, Orders, SLABreaches             int
	VisitsPerDay, FaceTime, OrderValue, Offload string
	MapHref                                     string
}

// bar is one bar of the chart: face time % of a rep or a day.
type bar struct {
	Label, Value string
	Y, Width     int
}

func (cs *Console) kpiPage(c *fiber.Ctx) error {
	u := userOf(c)
	oi, err := cs.org(c)
	if err != nil {
		return err
	}
	today := cs.cfg.Now().In(oi.loc)
	v := &kpiView{Team: strings.Clone(c.Query("team")), Rep: strings.Clone(c.Query("rep")),
		From: strings.Clone(c.Query("from", today.AddDate(0, 0, -6).Format(time.DateOnly))),
		To:   strings.Clone(c.Query("to", today.Format(time.DateOnly)))}
	ctx, cancel := cs.callCtx()
	defer cancel()
	teams, err := cs.cfg.Accounts.ListTeams(ctx, u.Org)
	if err != nil {
		return err
	}
	for _, t := range teams {
		if u.HasRole(identity.RoleAdmin) || slices.Contains(u.Leads, t.ID) {
			v.Teams = append(v.Teams, option{Value: t.ID, Label: t.Name})
		}
	}
	if v.Team == "" && v.Rep == "" && len(v.Teams) > 0 {
		v.Team = v.Teams[0].Value
	}
	for i := range v.Teams {
		v.Teams[i].Selected = v.Teams[i].Value == v.Team
	}
	q := kpi.Query{Team: v.Team, From: v.From, To: v.To}
	if v.Rep != "" {
		q = kpi.Query{Rep: v.Rep, From: v.From, To: v.To}
		v.RepName = oi.name(v.Rep)
	}
	if q.Team == "" && q.Rep == "" {
		return cs.render(c, "kpis", view{Title: "KPIs", User: u, CSRF: csrfOf(c), Data: v})
	}
	rep, err := cs.cfg.KPIs.Report(ctx, actorOf(c), q)
	if err != nil {
		return err
	}
	period := "&from=" + v.From + "&to=" + v.To
	if v.Rep != "" && len(rep.Reps) == 1 {
		for _, d := range rep.Reps[0].Days {
			r := figuresRow(d.Date, d.Figures)
			r.MapHref = "/console/map?rep=" + v.Rep + "&day=" + d.Date
			v.Rows = append(v.Rows, r)
		}
		v.Total = figuresRow("Period", rep.Reps[0].Period)
		v.Total.SLABreaches = rep.Reps[0].FollowUps.SLABreaches
		v.Total.Offload = pctString(rep.Reps[0].FollowUps.BackOfficeSharePct)
	} else {
		for _, r := range rep.Reps {
			row := figuresRow(oi.name(r.Rep), r.Period)
			row.Href = "/console/kpis?rep=" + r.Rep + period
			row.SLABreaches = r.FollowUps.SLABreaches
			row.Offload = pctString(r.FollowUps.BackOfficeSharePct)
			v.Rows = append(v.Rows, row)
		}
		v.Total = figuresRow("Team", rep.Total)
		v.Total.SLABreaches = rep.FollowUps.SLABreaches
		v.Total.Offload = pctString(rep.FollowUps.BackOfficeSharePct)
	}
	// The chart: face time % per row, 0-100 over 400 px.
	for i, r := range v.Rows {
		w := 0
		if r.FaceTime != "–" {
			var p float64
			fmt.Sscanf(r.FaceTime, "%f", &p)
			w = int(p * 4)
		}
		v.Bars = append(v.Bars, bar{Label: r.Label, Value: r.FaceTime, Y: i * 28, Width: w})
	}
	v.ChartHeight = len(v.Bars)*28 + 4
	title := "KPIs"
	if v.RepName != "" {
		title = "KPIs of " + v.RepName
	}
	return cs.render(c, "kpis", view{Title: title, User: u, CSRF: csrfOf(c), Data: v})
}

func figuresRow(label string, f kpi.Figures) kpiRow {
	var vals []string
	for _, cur := range slices.Sorted(func(yield func(string) bool) {
		for k := range f.OrderValue {
			if !yield(k) {
				return
			}
		}
	}) {
		vals = append(vals, f.OrderValue[cur]+" "+cur)
	}
	return kpiRow{Label: label, Visits: f.Visits, Verified: f.VerifiedVisits, Planned: f.Planned,
		PlannedVisited: f.PlannedVisited, Productive: f.ProductiveCalls, Orders: f.Orders,
		VisitsPerDay: fmt.Sprintf("%.1f", f.VisitsPerDay), FaceTime: pctString(f.FaceTimePct),
		OrderValue: strings.Join(vals, ", ")}
}

func pctString(p *float64) string {
	if p == nil {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", *p)
}
