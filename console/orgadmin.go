package console

import (
	"errors"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// teamsView is the admin's teams page: every team with its managers and
// reps by name, a form to add one and one to rename each.
type teamsView struct {
	Teams  []teamRow
	Errors map[string]string // by field: id, name ("" for the rest)
	Form   struct{ ID, Name string }
}

type teamRow struct {
	ID, Name, Leads, Members string
}

func (cs *Console) teamsPage(c *fiber.Ctx) error {
	v, err := cs.teams(c)
	if err != nil {
		return err
	}
	return cs.render(c, "teams", view{Title: "Teams", User: userOf(c), CSRF: csrfOf(c), Data: v})
}

func (cs *Console) teams(c *fiber.Ctx) (*teamsView, error) {
	org := userOf(c).Org
	ctx, cancel := cs.callCtx()
	defer cancel()
	teams, err := cs.cfg.Accounts.ListTeams(ctx, org)
	if err != nil {
		return nil, err
	}
	users, err := cs.allUsers(ctx, org)
	if err != nil {
		return nil, err
	}
	v := &teamsView{Errors: map[string]string{}}
	for _, t := range teams {
		var leads, members []string
		for _, u := range users {
			name := firstNonEmpty(u.Name, u.ID)
			if slices.Contains(u.Leads, t.ID) {
				leads = append(leads, name)
			}
			if slices.Contains(u.Teams, t.ID) {
				members = append(members, name)
			}
		}
		v.Teams = append(v.Teams, teamRow{ID: t.ID, Name: t.Name, Leads: strings.Join(leads, ", "), Members: strings.Join(members, ", ")})
	}
	return v, nil
}

// teamAction adds a team (id "" in the path: POST /admin/teams) or renames
// one, through the identity service the admin API calls.
func (cs *Console) teamAction(c *fiber.Ctx) error {
	org, id, name := userOf(c).Org, strings.Clone(c.Params("id")), strings.Clone(strings.TrimSpace(c.FormValue("name")))
	ctx, cancel := cs.callCtx()
	defer cancel()
	var err error
	if id == "" {
		id = strings.Clone(strings.TrimSpace(c.FormValue("id")))
		_, err = cs.cfg.Admin.AddTeam(ctx, org, id, name)
	} else {
		_, err = cs.cfg.Admin.RenameTeam(ctx, org, id, name)
	}
	if err == nil {
		return c.Redirect("/console/admin/teams", fiber.StatusSeeOther)
	}
	var e *engine.Error
	if !errors.As(err, &e) || (e.Kind != engine.KindInvalid && e.Kind != engine.KindConflict) {
		return err
	}
	v, verr := cs.teams(c)
	if verr != nil {
		return verr
	}
	v.Form.ID, v.Form.Name = id, name
	field := strings.TrimPrefix(e.Pointer, "/")
	if field != "id" && field != "name" {
		field = ""
	}
	v.Errors[field] = e.Message
	return cs.render(c.Status(fiber.StatusUnprocessableEntity), "teams", view{Title: "Teams", User: userOf(c), CSRF: csrfOf(c), Data: v})
}

// orgView is the organisation's settings page.
type orgView struct {
	ID, Name, TimeZone, Roles string
	Errors                    map[string]string
	Saved                     bool
}

func (cs *Console) orgPage(c *fiber.Ctx) error {
	ctx, cancel := cs.callCtx()
	defer cancel()
	o, err := cs.cfg.Accounts.Org(ctx, userOf(c).Org)
	if err != nil {
		return err
	}
	v := &orgView{ID: o.ID, Name: o.Name, TimeZone: o.TimeZone, Roles: strings.Join(o.Roles, ", "),
		Errors: map[string]string{}, Saved: c.Query("saved") != ""}
	return cs.render(c, "org", view{Title: "Organisation", User: userOf(c), CSRF: csrfOf(c), Data: v})
}

// putOrg changes the organisation's name, time zone and back-office roles
// as PUT /v1/admin/org does; a refusal is shown at its field.
func (cs *Console) putOrg(c *fiber.Ctx) error {
	org := userOf(c).Org
	name := strings.Clone(strings.TrimSpace(c.FormValue("name")))
	tz := strings.Clone(strings.TrimSpace(c.FormValue("time_zone")))
	rolesText := strings.Clone(c.FormValue("roles"))
	roles := []string{}
	for _, r := range strings.Split(rolesText, ",") {
		if r = strings.TrimSpace(r); r != "" {
			roles = append(roles, r)
		}
	}
	ctx, cancel := cs.callCtx()
	defer cancel()
	_, err := cs.cfg.Admin.PutOrg(ctx, org, identity.OrgChange{Name: &name, TimeZone: &tz, Roles: &roles})
	if err == nil {
		cs.mu.Lock()
		delete(cs.orgs, org) // the time zone may have changed
		cs.mu.Unlock()
		return c.Redirect("/console/admin/org?saved=1", fiber.StatusSeeOther)
	}
	var e *engine.Error
	if !errors.As(err, &e) || e.Kind != engine.KindInvalid {
		return err
	}
	field, _, _ := strings.Cut(strings.TrimPrefix(e.Pointer, "/"), "/")
	if field != "name" && field != "time_zone" && field != "roles" {
		field = ""
	}
	v := &orgView{ID: org, Name: name, TimeZone: tz, Roles: rolesText, Errors: map[string]string{field: e.Message}}
	return cs.render(c.Status(fiber.StatusUnprocessableEntity), "org", view{Title: "Organisation", User: userOf(c), CSRF: csrfOf(c), Data: v})
}
