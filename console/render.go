package console

import (
	"bytes"
	"context"
	"html/template"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/workflow"
)

// view is what every page template gets: the layout reads Title, User and
// CSRF (the sign-out form), the page reads Data.
type view struct {
	Title string
	User  *identity.User
	CSRF  string
	Nav   []navItem
	Data  any
}

type navItem struct {
	Label, Href string
	Current     bool
}

// parsePages parses the layout with each page (templates/<name>.html), and
// the fragments (templates/_*.html) into all of them.
func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{"join": strings.Join}
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/_*.html")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" || strings.HasPrefix(name, "_") {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return nil, err
		}
		pages[name] = t
	}
	// Fragments render on their own too (the live queue).
	for _, n := range []string{"_queue"} {
		pages[n] = base.Lookup(n + ".html")
	}
	return pages, nil
}

// render writes a page (the layout around it) or, for a fragment name
// starting with "_", the fragment alone.
func (cs *Console) render(c *fiber.Ctx, name string, v view) error {
	t := cs.pages[name]
	if v.User != nil && v.Nav == nil {
		v.Nav = cs.navFor(c, v.User, c.OriginalURL())
	}
	var buf bytes.Buffer
	var err error
	if strings.HasPrefix(name, "_") {
		err = t.Execute(&buf, v.Data)
	} else {
		err = t.Execute(&buf, v)
	}
	if err != nil {
		cs.log.Error("console render", "page", name, "err", err)
		return c.Status(fiber.StatusInternalServerError).SendString("internal error")
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return c.Send(buf.Bytes())
}

// queueRolesOf are the queues the signed-in user works (queueRoles), with
// the back-office roles their organisation added when they are an admin.
func (cs *Console) queueRolesOf(c *fiber.Ctx) []string {
	u := userOf(c)
	var added []string
	if u.HasRole(identity.RoleAdmin) {
		// Without the organisation's record an admin still has the
		// built-in queues; an added role's queue waits for the next read.
		if oi, err := cs.org(c); err == nil {
			added = oi.roles
		}
	}
	return queueRoles(u, added)
}

// queueRoles are the queues a user works: every role but rep and admin;
// an admin sees every queue: the built-in roles' and those in added (the
// back-office roles their organisation added).
func queueRoles(u *identity.User, added []string) []string {
	var roles []string
	for _, r := range u.Roles {
		if r != identity.RoleRep && r != identity.RoleAdmin && !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	if u.HasRole(identity.RoleAdmin) {
		builtIn := append([]string{identity.RoleManager}, identity.DefaultBackOfficeRoles...)
		for _, r := range append(builtIn, added...) {
			if !slices.Contains(roles, r) {
				roles = append(roles, r)
			}
		}
	}
	return roles
}

func (cs *Console) navFor(c *fiber.Ctx, u *identity.User, here string) []navItem {
	var nav []navItem
	for _, r := range cs.queueRolesOf(c) {
		href := "/console/queue?role=" + r
		nav = append(nav, navItem{Label: roleLabel(r), Href: href, Current: strings.HasPrefix(here, href)})
	}
	if u.HasRole(identity.RoleManager) || u.HasRole(identity.RoleAdmin) {
		for _, p := range []navItem{{Label: "Visits", Href: "/console/visits"}, {Label: "KPIs", Href: "/console/kpis"}} {
			p.Current = strings.HasPrefix(here, p.Href)
			nav = append(nav, p)
		}
	}
	if u.HasRole(identity.RoleAdmin) {
		admin := []navItem{{Label: "Users", Href: "/console/admin/users"}, {Label: "Teams", Href: "/console/admin/teams"}, {Label: "Customers", Href: "/console/admin/customers"},
			{Label: "Matrix", Href: "/console/admin/matrix"}, {Label: "Organisation", Href: "/console/admin/org"}}
		if cs.cfg.ServiceAccounts != nil {
			admin = append(admin, navItem{Label: "Service accounts", Href: "/console/admin/service-accounts"})
		}
		if cs.cfg.Webhooks != nil {
			admin = append(admin, navItem{Label: "Webhooks", Href: "/console/admin/webhooks"})
		}
		for _, p := range admin {
			p.Current = strings.HasPrefix(here, p.Href)
			nav = append(nav, p)
		}
	}
	return nav
}

// roleLabel turns order_desk into "Order desk".
func roleLabel(r string) string {
	s := strings.ReplaceAll(r, "_", " ")
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// orgInfo is what pages need of an organisation to show people by name and
// times in its zone; it is read again after orgInfoTTL.
type orgInfo struct {
	loc   *time.Location
	names map[string]string
	// activityRole and activityName come from the matrix in force.
	activityRole, activityName map[string]string
	requires                   map[string][]string // result fields an activity's completion needs
	roles                      []string            // back-office roles the organisation added
	read                       time.Time
}

const orgInfoTTL = 10 * time.Second

func (cs *Console) org(c *fiber.Ctx) (*orgInfo, error) {
	org := userOf(c).Org
	now := cs.cfg.Now()
	cs.mu.Lock()
	oi := cs.orgs[org]
	cs.mu.Unlock()
	if oi != nil && now.Sub(oi.read) < orgInfoTTL {
		return oi, nil
	}
	ctx, cancel := cs.callCtx()
	defer cancel()
	o, err := cs.cfg.Accounts.Org(ctx, org)
	if err != nil {
		return nil, err
	}
	oi = &orgInfo{loc: time.UTC, names: map[string]string{}, read: now, activityRole: map[string]string{},
		activityName: map[string]string{}, requires: map[string][]string{}}
	raw, _, err := cs.cfg.Workflow.Matrix(ctx, org)
	if err != nil {
		return nil, err
	}
	if m, err := workflow.Parse(raw, func(string) bool { return true }); err == nil {
		for _, a := range m.Activities {
			oi.activityRole[a.ID], oi.activityName[a.ID], oi.requires[a.ID] = a.Responsible, a.Name, a.Requires
		}
	}
	oi.roles = o.Roles
	if l, err := time.LoadLocation(o.TimeZone); err == nil && o.TimeZone != "" {
		oi.loc = l
	}
	us, err := cs.allUsers(ctx, org)
	if err != nil {
		return nil, err
	}
	for _, u := range us {
		oi.names[u.ID] = u.Name
	}
	cs.mu.Lock()
	cs.orgs[org] = oi
	cs.mu.Unlock()
	return oi, nil
}

// name is a person's name, or their id when the directory has no name.
func (oi *orgInfo) name(id string) string {
	if n := oi.names[id]; n != "" {
		return n
	}
	return id
}

// when formats a stored RFC 3339 time in the organisation's zone.
func (oi *orgInfo) when(stamp string) string {
	t, err := time.Parse(time.RFC3339Nano, stamp)
	if err != nil {
		return stamp
	}
	return oi.at(t)
}

// at formats a time in the organisation's zone.
func (oi *orgInfo) at(t time.Time) string { return t.In(oi.loc).Format("2006-01-02 15:04 MST") }

// day is the calendar day of a stored time in the organisation's zone.
func (oi *orgInfo) day(stamp string) string {
	t, err := time.Parse(time.RFC3339Nano, stamp)
	if err != nil {
		return ""
	}
	return t.In(oi.loc).Format(time.DateOnly)
}

// allUsers lists every user of org, page by page.
func (cs *Console) allUsers(ctx context.Context, org string) ([]*identity.User, error) {
	var all []*identity.User
	for after := ""; ; {
		us, err := cs.cfg.Accounts.ListUsers(ctx, org, identity.UserFilter{After: after, Limit: 1000})
		if err != nil {
			return nil, err
		}
		all = append(all, us...)
		if len(us) < 1000 {
			return all, nil
		}
		after = us[len(us)-1].ID
	}
}
