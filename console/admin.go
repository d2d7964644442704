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
}

type userRow struct {
	ID, Name, Email, Roles, Teams, Leads, Status string
	Disabled                                     bool
}

func (cs *Console) usersPage(c *fiber.Ctx) error {
	u := userOf(c)
	v := &usersView{Query: strings.Clone(c.Query("q"))}
	ctx, cancel := cs.callCtx()
	defer cancel()
	us, err := cs.allUsers(ctx, u.Org)
	if err != nil {
		return err
	}
	for _, x := range us {
		if v.Query == "" || containsFold(x.Name+" "+x.Email+" "+x.ID+" "+strings.Join(x.Roles, " "), v.Query) {
			v.Users = append(v.Users, userRowOf(x))
		}
	}
	return cs.render(c, "users", view{Title: "Users", User: u, CSRF: csrfOf(c), Data: v})
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
}

type sessionRow struct {
	Device, Created, Expires, Ended string
	Live                            bool
}

func (cs *Console) userPage(c *fiber.Ctx) error {
	oi, err := cs.org(c)
	if err != nil {
		return err
	}
	org, id := userOf(c).Org, strings.Clone(c.Params("id"))
	ctx, cancel := cs.callCtx()
	defer cancel()
	x, err := cs.cfg.Admin.User(ctx, org, id)
	if err != nil {
		return err
	}
	sessions, err := cs.cfg.Admin.Sessions(ctx, org, id)
	if err != nil {
		return err
	}
	v := &userView{User: userRowOf(x)}
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
	return cs.render(c, "user", view{Title: x.Name, User: userOf(c), CSRF: csrfOf(c), Data: v})
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
