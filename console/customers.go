package console

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// The admin's customer pages: a searchable list, and a customer's reps,
// set by the assignment rule the admin API uses (Config.Assign).

// customersPageSize is the customers one list page shows.
const customersPageSize = 50

type customersView struct {
	Query, Next string
	Customers   []customerRow
}

type customerRow struct {
	ID, Name, Code, Reps string
}

// customerDoc is what the pages read of a customer.
type customerDoc struct {
	Name  string   `json:"name"`
	Code  string   `json:"code"`
	Reps  []string `json:"assigned_reps"`
	Notes string   `json:"notes"`
}

func (cs *Console) customersPage(c *fiber.Ctx) error {
	u := userOf(c)
	v := &customersView{Query: strings.Clone(c.Query("q"))}
	ctx, cancel := cs.callCtx()
	defer cancel()
	list, err := cs.cfg.Workflow.AllCustomers(ctx, actorOf(c), v.Query, strings.Clone(c.Query("after")), customersPageSize)
	if err != nil {
		return err
	}
	users, err := cs.allUsers(ctx, u.Org)
	if err != nil {
		return err
	}
	names := userNames(users)
	v.Next = list.Next
	for _, lc := range list.Customers {
		var d customerDoc
		json.Unmarshal(lc.Doc, &d)
		v.Customers = append(v.Customers, customerRow{ID: lc.ID, Name: firstNonEmpty(d.Name, lc.ID), Code: d.Code,
			Reps: strings.Join(namesOf(d.Reps, names), ", ")})
	}
	return cs.render(c, "customers", view{Title: "Customers", User: u, CSRF: csrfOf(c), Data: v})
}

type customerView struct {
	ID, Name, Code string
	Reps           []repChoice
	Error          string
	Saved          bool
}

type repChoice struct {
	ID, Name, Teams string
	Assigned        bool
}

func (cs *Console) customerPage(c *fiber.Ctx) error {
	v, err := cs.customer(c, nil)
	if err != nil {
		return err
	}
	v.Saved = c.Query("saved") != ""
	return cs.render(c, "customer", view{Title: v.Name, User: userOf(c), CSRF: csrfOf(c), Data: v})
}

// customer reads the customer of the path as the admin sees it, with every
// active rep to choose from; chosen overrides the stored reps (a refused
// form shows what was sent). Another organisation's id is the missing page.
func (cs *Console) customer(c *fiber.Ctx, chosen []string) (*customerView, error) {
	u := userOf(c)
	id := strings.Clone(c.Params("id"))
	ctx, cancel := cs.callCtx()
	defer cancel()
	got, err := cs.cfg.Workflow.Customers(ctx, actorOf(c), []string{id})
	if err != nil {
		return nil, err
	}
	raw, ok := got[id]
	if !ok {
		return nil, errNotFound
	}
	var d customerDoc
	json.Unmarshal(raw, &d)
	if chosen == nil {
		chosen = d.Reps
	}
	reps, err := cs.cfg.Accounts.ListUsers(ctx, u.Org, identity.UserFilter{Role: identity.RoleRep, Limit: 1000})
	if err != nil {
		return nil, err
	}
	v := &customerView{ID: id, Name: firstNonEmpty(d.Name, id), Code: d.Code}
	for _, r := range reps {
		if r.Disabled && !slices.Contains(chosen, r.ID) {
			continue
		}
		v.Reps = append(v.Reps, repChoice{ID: r.ID, Name: firstNonEmpty(r.Name, r.ID), Teams: strings.Join(r.Teams, ", "),
			Assigned: slices.Contains(chosen, r.ID)})
	}
	return v, nil
}

// assign sets the customer's reps to those ticked; a refusal (a rep
// disabled meanwhile) is shown on the page and changes nothing.
func (cs *Console) assign(c *fiber.Ctx) error {
	id := strings.Clone(c.Params("id"))
	reps := formValues(c, "rep")
	ctx, cancel := cs.callCtx()
	defer cancel()
	_, _, err := cs.cfg.Assign.Assign(ctx, actorOf(c), "console", id, reps, "/reps")
	if err == nil {
		return c.Redirect("/console/admin/customers/"+id+"?saved=1", fiber.StatusSeeOther)
	}
	var e *engine.Error
	if !errors.As(err, &e) || e.Kind != engine.KindInvalid {
		return err
	}
	v, verr := cs.customer(c, reps)
	if verr != nil {
		return verr
	}
	v.Error = e.Message
	return cs.render(c.Status(fiber.StatusUnprocessableEntity), "customer", view{Title: v.Name, User: userOf(c), CSRF: csrfOf(c), Data: v})
}

// userNames maps user ids to names.
func userNames(users []*identity.User) map[string]string {
	m := make(map[string]string, len(users))
	for _, u := range users {
		m[u.ID] = firstNonEmpty(u.Name, u.ID)
	}
	return m
}

func namesOf(ids []string, names map[string]string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = firstNonEmpty(names[id], id)
	}
	return out
}
