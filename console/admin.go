package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/sync/engine"
)

type usersView struct {
	Query string
	Users []userRow
	Add   userForm
}

// userForm is the add and edit form of a user: its fields, the roles and
// teams to tick, and refusals by field ("" for the form).
type userForm struct {
	Prefix              string // of the form's element ids: "add", "edit"
	ID, Name, Email     string
	Roles, Teams, Leads []choice
	Errors              map[string]string
}

// userFields are the form fields a refusal's pointer may name.
var userFields = []string{"id", "email", "name", "roles", "teams", "leads", "password"}

// userForm fills a form with the organisation's roles and teams, ticking
// those of picked.
func (cs *Console) userForm(c *fiber.Ctx, picked identity.User) (userForm, error) {
	org := userOf(c).Org
	ctx, cancel := cs.callCtx()
	defer cancel()
	o, err := cs.cfg.Accounts.Org(ctx, org)
	if err != nil {
		return userForm{}, err
	}
	teams, err := cs.cfg.Accounts.ListTeams(ctx, org)
	if err != nil {
		return userForm{}, err
	}
	ids, names := []string{}, map[string]string{}
	for _, t := range teams {
		ids = append(ids, t.ID)
		names[t.ID] = t.Name
	}
	team := func(id string) string { return firstNonEmpty(names[id], id) }
	return userForm{ID: picked.ID, Name: picked.Name, Email: picked.Email,
		Roles:  choices(append(accountRoles(o), identity.RoleAdmin), roleLabel, picked.Roles),
		Teams:  choices(ids, team, picked.Teams),
		Leads:  choices(ids, team, picked.Leads),
		Errors: map[string]string{}}, nil
}

// formUser reads a user form.
func formUser(c *fiber.Ctx) identity.User {
	return identity.User{ID: strings.Clone(strings.TrimSpace(c.FormValue("id"))),
		Name: strings.Clone(strings.TrimSpace(c.FormValue("name"))), Email: strings.Clone(strings.TrimSpace(c.FormValue("email"))),
		Roles: formValues(c, "roles"), Teams: formValues(c, "teams"), Leads: formValues(c, "leads")}
}

// addUser creates a user as POST /v1/admin/users does. The admin sets a
// first password and tells the user; a password of the user's own comes
// with the next change. Refusals are shown at their field.
func (cs *Console) addUser(c *fiber.Ctx) error {
	f := formUser(c)
	ctx, cancel := cs.callCtx()
	defer cancel()
	u, err := cs.cfg.Admin.AddUser(ctx, userOf(c).Org, identity.NewUser{ID: f.ID, Email: f.Email, Name: f.Name,
		Roles: f.Roles, Teams: f.Teams, Leads: f.Leads, Password: strings.Clone(c.FormValue("password"))})
	if err == nil {
		return c.Redirect("/console/admin/users/"+u.ID, fiber.StatusSeeOther)
	}
	errs, ok := fieldError(err, userFields...)
	if !ok {
		return err
	}
	v, err := cs.users(c)
	if err != nil {
		return err
	}
	if v.Add, err = cs.userForm(c, f); err != nil {
		return err
	}
	v.Add.Prefix = "add"
	v.Add.Errors = errs
	return cs.render(c.Status(fiber.StatusUnprocessableEntity), "users", view{Title: "Users", User: userOf(c), CSRF: csrfOf(c), Data: v})
}

type userRow struct {
	ID, Name, Email, Roles, Teams, Leads, Status string
	Disabled                                     bool
}

func (cs *Console) usersPage(c *fiber.Ctx) error {
	v, err := cs.users(c)
	if err != nil {
		return err
	}
	if v.Add, err = cs.userForm(c, identity.User{}); err != nil {
		return err
	}
	v.Add.Prefix = "add"
	return cs.render(c, "users", view{Title: "Users", User: userOf(c), CSRF: csrfOf(c), Data: v})
}

func (cs *Console) users(c *fiber.Ctx) (*usersView, error) {
	u := userOf(c)
	v := &usersView{Query: strings.Clone(c.Query("q"))}
	ctx, cancel := cs.callCtx()
	defer cancel()
	us, err := cs.allUsers(ctx, u.Org)
	if err != nil {
		return nil, err
	}
	for _, x := range us {
		if v.Query == "" || containsFold(x.Name+" "+x.Email+" "+x.ID+" "+strings.Join(x.Roles, " "), v.Query) {
			v.Users = append(v.Users, userRowOf(x))
		}
	}
	return v, nil
}

func userRowOf(x *identity.User) userRow {
	status := "active"
	if x.Disabled {
		status = "disabled"
	}
	return userRow{ID: x.ID, Name: x.Name, Email: x.Email, Roles: strings.Join(x.Roles, ", "),
		Teams: strings.Join(x.Teams, ", "), Leads: strings.Join(x.Leads, ", "), Status: status, Disabled: x.Disabled}
}

type userView struct {
	User     userRow
	Sessions []sessionRow
	Edit     userForm
	// Password holds a refusal of the password form; Saved says what was
	// saved ("user", "password").
	Password, Saved string
}

type sessionRow struct {
	Device, Created, Expires, Ended string
	Live                            bool
}

func (cs *Console) userPage(c *fiber.Ctx) error {
	v, err := cs.user(c, strings.Clone(c.Params("id")), nil)
	if err != nil {
		return err
	}
	v.Saved = map[string]string{"user": "user", "password": "password"}[c.Query("saved")]
	return cs.render(c, "user", view{Title: firstNonEmpty(v.User.Name, v.User.ID), User: userOf(c), CSRF: csrfOf(c), Data: v})
}

// user is user id's page; edited, when not nil, is what the edit form
// shows instead of the user as stored (a refused change).
func (cs *Console) user(c *fiber.Ctx, id string, edited *identity.User) (*userView, error) {
	oi, err := cs.org(c)
	if err != nil {
		return nil, err
	}
	org := userOf(c).Org
	ctx, cancel := cs.callCtx()
	defer cancel()
	x, err := cs.cfg.Admin.User(ctx, org, id)
	if err != nil {
		return nil, err
	}
	sessions, err := cs.cfg.Admin.Sessions(ctx, org, id)
	if err != nil {
		return nil, err
	}
	v := &userView{User: userRowOf(x)}
	form := *x
	if edited != nil {
		form = *edited
	}
	if v.Edit, err = cs.userForm(c, form); err != nil {
		return nil, err
	}
	v.Edit.Prefix = "edit"
	now := cs.cfg.Now()
	stamp := oi.at
	for _, s := range sessions {
		r := sessionRow{Device: s.Device, Created: stamp(s.Created), Expires: stamp(s.ExpiresAt), Live: s.Live(now)}
		if !s.RevokedAt.IsZero() {
			r.Ended = stamp(s.RevokedAt) + " (" + s.RevokeCause + ")"
		}
		v.Sessions = append(v.Sessions, r)
	}
	slices.SortStableFunc(v.Sessions, func(a, b sessionRow) int {
		if a.Live != b.Live {
			if a.Live {
				return -1
			}
			return 1
		}
		return strings.Compare(b.Created, a.Created)
	})
	return v, nil
}

// userAction disables or enables a user, or ends their sessions on one
// device, through the identity service the admin API calls.
func (cs *Console) userAction(c *fiber.Ctx) error {
	org, id, action := userOf(c).Org, strings.Clone(c.Params("id")), strings.Clone(c.Params("action"))
	ctx, cancel := cs.callCtx()
	defer cancel()
	var err error
	switch action {
	case "disable":
		_, err = cs.cfg.Admin.DisableUser(ctx, org, id)
	case "enable":
		_, err = cs.cfg.Admin.EnableUser(ctx, org, id)
	case "update":
		// Name, email, roles and teams, as PATCH /v1/admin/users/:id.
		f := formUser(c)
		f.ID = id
		_, err = cs.cfg.Admin.UpdateUser(ctx, org, id, identity.UserChange{Name: &f.Name, Email: &f.Email,
			Roles: &f.Roles, Teams: &f.Teams, Leads: &f.Leads})
		if errs, ok := fieldError(err, userFields...); ok {
			v, verr := cs.user(c, id, &f)
			if verr != nil {
				return verr
			}
			v.Edit.Errors = errs
			return cs.render(c.Status(fiber.StatusUnprocessableEntity), "user", view{Title: firstNonEmpty(v.User.Name, id), User: userOf(c), CSRF: csrfOf(c), Data: v})
		}
		if err == nil {
			return c.Redirect("/console/admin/users/"+id+"?saved=user", fiber.StatusSeeOther)
		}
	case "password":
		// A new password ends every session of the user (identity).
		pw := strings.Clone(c.FormValue("password"))
		_, err = cs.cfg.Admin.UpdateUser(ctx, org, id, identity.UserChange{Password: &pw})
		if errs, ok := fieldError(err, "password"); ok {
			v, verr := cs.user(c, id, nil)
			if verr != nil {
				return verr
			}
			v.Password = firstNonEmpty(errs["password"], errs[""])
			return cs.render(c.Status(fiber.StatusUnprocessableEntity), "user", view{Title: firstNonEmpty(v.User.Name, id), User: userOf(c), CSRF: csrfOf(c), Data: v})
		}
		if err == nil {
			return c.Redirect("/console/admin/users/"+id+"?saved=password", fiber.StatusSeeOther)
		}
	case "revoke":
		device := strings.Clone(c.FormValue("device"))
		if _, err = cs.cfg.Admin.RevokeDevice(ctx, org, id, device); err == nil && cs.cfg.PushDevices != nil {
			// No pushes to a revoked phone (as DELETE /v1/admin/users/:id/devices/:device).
			if _, perr := cs.cfg.PushDevices.DeleteDevice(ctx, org, id, device); perr != nil {
				cs.log.Warn("forget push device", "org", org, "user", id, "device", device, "err", perr)
			}
		}
	default:
		return errNotFound
	}
	if err != nil {
		return err
	}
	return c.Redirect("/console/admin/users/"+id, fiber.StatusSeeOther)
}

type matrixView struct {
	Version, Raw, Error string
	Line                int
	Saved               bool
}

func (cs *Console) matrixPage(c *fiber.Ctx) error {
	ctx, cancel := cs.callCtx()
	defer cancel()
	raw, version, err := cs.cfg.Workflow.Matrix(ctx, userOf(c).Org)
	if err != nil {
		return err
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, raw, "", "  ") != nil {
		pretty.Reset()
		pretty.Write(raw)
	}
	v := &matrixView{Version: version, Raw: pretty.String(), Saved: c.Query("saved") != ""}
	return cs.render(c, "matrix", view{Title: "Responsibility matrix", User: userOf(c), CSRF: csrfOf(c), Data: v})
}

// putMatrix replaces the matrix as PUT /v1/admin/matrix does; a refusal is
// shown at the line of the document its pointer names.
func (cs *Console) putMatrix(c *fiber.Ctx) error {
	raw := strings.Clone(c.FormValue("matrix"))
	ctx, cancel := cs.callCtx()
	defer cancel()
	_, err := cs.cfg.Workflow.PutMatrix(ctx, actorOf(c), []byte(raw))
	if err == nil {
		return c.Redirect("/console/admin/matrix?saved=1", fiber.StatusSeeOther)
	}
	var e *engine.Error
	if !errors.As(err, &e) || (e.Kind != engine.KindInvalid && e.Kind != engine.KindConflict) {
		return err
	}
	_, version, verr := cs.cfg.Workflow.Matrix(ctx, userOf(c).Org)
	if verr != nil {
		return verr
	}
	v := &matrixView{Version: version, Raw: raw, Error: e.Message, Line: lineOf([]byte(raw), e.Pointer)}
	return cs.render(c.Status(fiber.StatusUnprocessableEntity), "matrix", view{Title: "Responsibility matrix",
		User: userOf(c), CSRF: csrfOf(c), Data: v})
}

// lineOf returns the line (1-based) of raw where the value at a JSON pointer
// starts, or of its deepest ancestor that exists (a missing field is
// reported at the object that lacks it); 0 when raw is not JSON.
func lineOf(raw []byte, pointer string) int {
	type frame struct {
		array   bool
		idx     int
		key     string
		wantKey bool
	}
	var stack []frame
	path := func() string {
		var b strings.Builder
		for _, f := range stack {
			b.WriteByte('/')
			if f.array {
				b.WriteString(strconv.Itoa(f.idx))
			} else {
				b.WriteString(strings.ReplaceAll(strings.ReplaceAll(f.key, "~", "~0"), "/", "~1"))
			}
		}
		return b.String()
	}
	lineAt := func(off int64) int {
		i := int(off)
		for i < len(raw) && strings.IndexByte(" \t\r\n,:", raw[i]) >= 0 {
			i++
		}
		return bytes.Count(raw[:i], []byte("\n")) + 1
	}
	done := func() {
		if n := len(stack); n > 0 {
			if stack[n-1].array {
				stack[n-1].idx++
			} else {
				stack[n-1].wantKey = true
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	best := 0
	for {
		off := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return best
		}
		d, delim := tok.(json.Delim)
		if n := len(stack); n > 0 && !stack[n-1].array && stack[n-1].wantKey {
			if delim && d == '}' {
				stack = stack[:n-1]
				done()
			} else {
				stack[n-1].key, _ = tok.(string)
				stack[n-1].wantKey = false
			}
			continue
		}
		if delim && d == ']' {
			stack = stack[:len(stack)-1]
			done()
			continue
		}
		p := path()
		if p == pointer {
			return lineAt(off)
		}
		if strings.HasPrefix(pointer, p+"/") {
			best = lineAt(off)
		}
		switch {
		case delim && d == '{':
			stack = append(stack, frame{wantKey: true})
		case delim && d == '[':
			stack = append(stack, frame{array: true})
		default:
			done()
		}
	}
}
