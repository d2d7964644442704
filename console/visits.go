package console

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/kpi"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// visitBody is what the review pages read of a visit log.
type visitBody = fieldsales.VisitLog

// visitRow is one visit in the review list.
type visitRow struct {
	ID, RepID, Day, Rep, Customer, At, Verification, Distance, Duration, Clock, Outcome, Notes string
	Planned                                                                                    bool
	Review, ReviewComment, ReviewBy                                                            string
}

type visitsView struct {
	Team, Rep, From, To, State string
	Teams, Reps                []option
	Rows                       []visitRow
	Back                       string // this page's URL, where a review returns
	Error                      string
}

// teamsOf lists the teams a manager leads (an admin: every team).
func (cs *Console) teamsOf(c *fiber.Ctx, selected string) ([]option, error) {
	u := userOf(c)
	ctx, cancel := cs.callCtx()
	defer cancel()
	teams, err := cs.cfg.Accounts.ListTeams(ctx, u.Org)
	if err != nil {
		return nil, err
	}
	var out []option
	for _, t := range teams {
		if u.HasRole(identity.RoleAdmin) || slices.Contains(u.Leads, t.ID) {
			out = append(out, option{Value: t.ID, Label: t.Name})
		}
	}
	if selected == "" && len(out) > 0 {
		selected = out[0].Value
	}
	for i := range out {
		out[i].Selected = out[i].Value == selected
	}
	return out, nil
}

func (cs *Console) visitsPage(c *fiber.Ctx) error {
	v, err := cs.visitList(c)
	if err != nil {
		return err
	}
	return cs.render(c, "visits", view{Title: "Visit review", User: userOf(c), CSRF: csrfOf(c), Data: v})
}

func (cs *Console) visitList(c *fiber.Ctx) (*visitsView, error) {
	oi, err := cs.org(c)
	if err != nil {
		return nil, err
	}
	today := cs.cfg.Now().In(oi.loc)
	v := &visitsView{Team: strings.Clone(c.Query("team")), Rep: strings.Clone(c.Query("rep")),
		From:  strings.Clone(c.Query("from", today.AddDate(0, 0, -6).Format(time.DateOnly))),
		To:    strings.Clone(c.Query("to", today.Format(time.DateOnly))),
		State: strings.Clone(c.Query("state", "unreviewed"))}
	if v.Teams, err = cs.teamsOf(c, v.Team); err != nil {
		return nil, err
	}
	if v.Team == "" && len(v.Teams) > 0 {
		v.Team = v.Teams[0].Value
	}
	if v.Team != "" {
		ctx, cancel := cs.callCtx()
		members, err := cs.cfg.Accounts.ListUsers(ctx, userOf(c).Org, identity.UserFilter{Team: v.Team, Role: identity.RoleRep, Limit: 1000})
		cancel()
		if err != nil {
			return nil, err
		}
		for _, m := range members {
			v.Reps = append(v.Reps, option{Value: m.ID, Label: firstNonEmpty(m.Name, m.ID), Selected: m.ID == v.Rep})
		}
	}
	back := url.Values{"team": {v.Team}, "from": {v.From}, "to": {v.To}, "state": {v.State}}
	if v.Rep != "" {
		back.Set("rep", v.Rep)
	}
	v.Back = "/console/visits?" + back.Encode()
	q := kpi.Query{Team: v.Team, From: v.From, To: v.To}
	if v.Rep != "" {
		q = kpi.Query{Rep: v.Rep, From: v.From, To: v.To}
	}
	if q.Team == "" && q.Rep == "" {
		return v, nil
	}
	ctx, cancel := cs.callCtx()
	defer cancel()
	visits, err := cs.cfg.KPIs.Visits(ctx, actorOf(c), q)
	if err != nil {
		return nil, err
	}
	bodies := make([]visitBody, len(visits))
	var custIDs []string
	for i, vis := range visits {
		json.Unmarshal(vis.Body, &bodies[i])
		custIDs = append(custIDs, bodies[i].CustomerID)
	}
	slices.Sort(custIDs)
	names, err := cs.customerNames(ctx, actorOf(c), slices.Compact(custIDs))
	if err != nil {
		return nil, err
	}
	for i, vis := range visits {
		b := bodies[i]
		switch {
		case v.State == "unreviewed" && b.Review != nil && b.Review.Status != "":
			continue
		case v.State == "flagged" && (b.Review == nil || b.Review.Status != "flagged"):
			continue
		}
		v.Rows = append(v.Rows, rowOf(oi, vis.ID, vis.Rep, b, names))
	}
	return v, nil
}

func rowOf(oi *orgInfo, id, rep string, b visitBody, names map[string]string) visitRow {
	r := visitRow{ID: id, RepID: rep, Day: oi.day(b.CheckInAt), Rep: oi.name(rep), Customer: firstNonEmpty(names[b.CustomerID], b.CustomerID),
		At: oi.when(b.CheckInAt), Verification: strings.ReplaceAll(firstNonEmpty(b.Verification.Status, "unchecked"), "_", " "),
		Outcome: b.Outcome, Notes: b.Notes, Planned: b.VisitPlanID != "", Clock: "–"}
	if b.Verification.DistanceM != nil {
		r.Distance = fmt.Sprintf("%d m", *b.Verification.DistanceM)
	}
	if b.DurationS != nil {
		r.Duration = (time.Duration(*b.DurationS) * time.Second).String()
	}
	if b.ClockOffsetS != 0 {
		r.Clock = (time.Duration(b.ClockOffsetS) * time.Second).String()
	}
	if b.Review != nil {
		r.Review, r.ReviewComment, r.ReviewBy = b.Review.Status, b.Review.Comment, oi.name(b.Review.By)
	}
	return r
}

// visitView is one visit's page.
type visitView struct {
	Row    visitRow
	Back   string
	Photos []photoView // attachments.go
}

func (cs *Console) visitPage(c *fiber.Ctx) error {
	oi, err := cs.org(c)
	if err != nil {
		return err
	}
	ctx, cancel := cs.callCtx()
	defer cancel()
	vis, err := cs.cfg.KPIs.Visit(ctx, actorOf(c), strings.Clone(c.Params("id")))
	if err != nil {
		return err
	}
	var b visitBody
	json.Unmarshal(vis.Body, &b)
	names, err := cs.customerNames(ctx, actorOf(c), []string{b.CustomerID})
	if err != nil {
		return err
	}
	photos, err := cs.photos(ctx, oi, actorOf(c), engine.DocRef{Collection: fieldsales.CollVisitLogs, ID: vis.ID})
	if err != nil {
		return err
	}
	v := &visitView{Row: rowOf(oi, vis.ID, vis.Rep, b, names), Back: "/console/visits/" + url.PathEscape(vis.ID), Photos: photos}
	return cs.render(c, "visit", view{Title: "Visit", User: userOf(c), CSRF: csrfOf(c), Data: v})
}

// review approves or flags the visits checked on a review form, with one
// comment, as one push through the sync engine: the same write rules as a
// manager's phone, and the rep sees the review on the next sync. A visit
// the caller may not see makes the whole form not found; nothing is written.
func (cs *Console) review(c *fiber.Ctx) error {
	verdict := c.FormValue("verdict")
	status := map[string]string{"approve": "approved", "flag": "flagged"}[verdict]
	var ids []string
	c.Request().PostArgs().VisitAll(func(k, v []byte) {
		if string(k) == "id" && len(v) > 0 {
			ids = append(ids, string(v))
		}
	})
	back := c.FormValue("back")
	if !strings.HasPrefix(back, "/console/visits") || strings.HasPrefix(back, "/console/visits//") {
		back = "/console/visits"
	}
	back = strings.Clone(back)
	comment := strings.Clone(c.FormValue("comment"))
	commentOnly := verdict == "comment"
	if (status == "" && !commentOnly) || len(ids) == 0 {
		return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "", "choose at least one visit and approve, flag or comment")
	}
	if commentOnly && strings.TrimSpace(comment) == "" {
		return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/comment", "write the comment to add")
	}
	if len(ids) > 500 {
		return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "", "review at most 500 visits at once")
	}
	ctx, cancel := cs.callCtx()
	defer cancel()
	req := engine.PushRequest{DeviceID: "console"}
	for _, id := range ids {
		vis, err := cs.cfg.KPIs.Visit(ctx, actorOf(c), id)
		if err != nil {
			return err
		}
		// A comment alone keeps the verdict the visit has (if any); the
		// review is one field, so it is written whole.
		review := map[string]any{"status": status}
		if commentOnly {
			var b fieldsales.VisitLog
			json.Unmarshal(vis.Doc.Body, &b)
			delete(review, "status")
			if b.Review != nil && b.Review.Status != "" {
				review["status"] = b.Review.Status
			}
		}
		if comment != "" {
			review["comment"] = comment
		}
		fields := map[string]json.RawMessage{}
		fields["review"], _ = json.Marshal(review)
		b := make([]byte, 6)
		rand.Read(b)
		req.Mutations = append(req.Mutations, engine.Mutation{ID: "console-review-" + hex.EncodeToString(b),
			Collection: fieldsales.CollVisitLogs, DocID: vis.ID, Op: engine.OpUpdate, BaseVersion: vis.Version, Fields: fields})
	}
	outs, err := cs.cfg.Sync.Push(ctx, actorOf(c), req)
	if err != nil {
		return err
	}
	for _, o := range outs {
		if o.Status == engine.StatusRejected && o.Error != nil {
			return engine.Errorf(engine.KindInvalid, o.Error.Code, o.Error.Pointer, "%s", o.Error.Message)
		}
	}
	return c.Redirect(back, fiber.StatusSeeOther)
}
