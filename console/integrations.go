package console

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/webhook"
)

// ServiceAccounts is the service account management the admin API calls
// (identity.Service); every method works in the organisation it is given,
// and another organisation's account is not found.
type ServiceAccounts interface {
	AddServiceAccount(ctx context.Context, org, name string, roles []string) (*identity.ServiceAccount, string, error)
	ServiceAccount(ctx context.Context, org, id string) (*identity.ServiceAccount, error)
	ServiceAccounts(ctx context.Context, org string) ([]*identity.ServiceAccount, error)
	RotateServiceAccountKey(ctx context.Context, org, id string, overlap time.Duration) (*identity.ServiceAccount, string, error)
	RevokeServiceAccount(ctx context.Context, org, id string) (*identity.ServiceAccount, error)
}

// Webhooks is the webhook subscription management the admin API calls
// (webhook.Service), with the same per-organisation rule.
type Webhooks interface {
	AddSubscription(ctx context.Context, org string, ns webhook.NewSubscription) (*webhook.Subscription, error)
	Subscription(ctx context.Context, org, id string) (*webhook.Subscription, error)
	Subscriptions(ctx context.Context, org string) ([]*webhook.Subscription, error)
	RotateSecret(ctx context.Context, org, id string, overlap time.Duration) (*webhook.Subscription, error)
	SetEnabled(ctx context.Context, org, id string, enabled bool) (*webhook.Subscription, error)
	Deliveries(ctx context.Context, org, id, status string, limit int) ([]webhook.Delivery, error)
	Redeliver(ctx context.Context, org, id, delivery string) (webhook.Delivery, error)
}

// deliveriesShown is how many deliveries a subscription's page lists.
const deliveriesShown = 100

// secretView is the page that shows a new API key or signing secret: the
// only time it is ever shown (the response is not cached: headers).
type secretView struct {
	What, Name, Value, Back, Note string
}

// choice is a checkbox of a form.
type choice struct {
	Value, Label string
	Checked      bool
}

// choices lists values as checkboxes, ticking those in picked.
func choices(values []string, label func(string) string, picked []string) []choice {
	out := make([]choice, 0, len(values))
	for _, v := range values {
		out = append(out, choice{Value: v, Label: label(v), Checked: slices.Contains(picked, v)})
	}
	return out
}

// fieldError files a refusal under the form field its pointer names (its
// first segment, when that is one of fields), or under "" for the page.
func fieldError(err error, fields ...string) (map[string]string, bool) {
	var e *engine.Error
	if !errors.As(err, &e) || (e.Kind != engine.KindInvalid && e.Kind != engine.KindConflict) {
		return nil, false
	}
	field, _, _ := strings.Cut(strings.TrimPrefix(e.Pointer, "/"), "/")
	if !slices.Contains(fields, field) {
		field = ""
	}
	return map[string]string{field: e.Message}, true
}

// overlapOf reads a rotation form's overlap, in whole hours.
func overlapOf(c *fiber.Ctx) (time.Duration, error) {
	h, err := strconv.Atoi(strings.TrimSpace(c.FormValue("overlap_hours")))
	if err != nil {
		return 0, engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/overlap_hours", "the overlap is a whole number of hours (0: the old one stops at once)")
	}
	if h < 0 {
		return -1, nil // refused by the service with its own message
	}
	return time.Duration(h) * time.Hour, nil
}

// overlapRefused is the message of a rotation refused for its overlap (the
// form's hours, or the service's bounds), shown at the overlap field.
func overlapRefused(err error) (string, bool) {
	var e *engine.Error
	if !errors.As(err, &e) || e.Kind != engine.KindInvalid {
		return "", false
	}
	return e.Message, true
}

// --- Service accounts ---

type accountsView struct {
	Accounts []accountRow
	Roles    []choice
	Name     string
	Errors   map[string]string
}

type accountRow struct {
	ID, UserID, Name, Roles, Status, Created, PrevUntil string
	Revoked                                             bool
}

func (cs *Console) accountRow(oi *orgInfo, a *identity.ServiceAccount) accountRow {
	r := accountRow{ID: a.ID, UserID: a.UserID(), Name: a.Name, Roles: strings.Join(a.Roles, ", "), Status: "active",
		Created: oi.at(a.Created), Revoked: a.Revoked()}
	if a.Revoked() {
		r.Status = "revoked " + oi.at(a.RevokedAt)
	}
	if len(a.PrevHash) > 0 && cs.cfg.Now().Before(a.PrevUntil) && !a.Revoked() {
		r.PrevUntil = oi.at(a.PrevUntil)
	}
	return r
}

// accountRoles are the roles an account may hold: every role of the
// organisation but admin (identity refuses that one).
func accountRoles(o *identity.Org) []string {
	roles := []string{identity.RoleRep, identity.RoleManager}
	for _, r := range append(slices.Clone(identity.DefaultBackOfficeRoles), o.Roles...) {
		if !slices.Contains(roles, r) && r != identity.RoleAdmin {
			roles = append(roles, r)
		}
	}
	return roles
}

func (cs *Console) accountsPage(c *fiber.Ctx) error {
	v, err := cs.accounts(c, "", nil)
	if err != nil {
		return err
	}
	return cs.render(c, "serviceaccounts", view{Title: "Service accounts", User: userOf(c), CSRF: csrfOf(c), Data: v})
}

func (cs *Console) accounts(c *fiber.Ctx, name string, picked []string) (*accountsView, error) {
	oi, err := cs.org(c)
	if err != nil {
		return nil, err
	}
	org := userOf(c).Org
	ctx, cancel := cs.callCtx()
	defer cancel()
	o, err := cs.cfg.Accounts.Org(ctx, org)
	if err != nil {
		return nil, err
	}
	as, err := cs.cfg.ServiceAccounts.ServiceAccounts(ctx, org)
	if err != nil {
		return nil, err
	}
	v := &accountsView{Name: name, Roles: choices(accountRoles(o), roleLabel, picked), Errors: map[string]string{}}
	for _, a := range as {
		v.Accounts = append(v.Accounts, cs.accountRow(oi, a))
	}
	return v, nil
}

// addAccount creates an account as POST /v1/admin/service-accounts does and
// shows its key, once.
func (cs *Console) addAccount(c *fiber.Ctx) error {
	name := strings.Clone(strings.TrimSpace(c.FormValue("name")))
	roles := formValues(c, "roles")
	ctx, cancel := cs.callCtx()
	defer cancel()
	a, key, err := cs.cfg.ServiceAccounts.AddServiceAccount(ctx, userOf(c).Org, name, roles)
	if err != nil {
		errs, ok := fieldError(err, "name", "roles")
		if !ok {
			return err
		}
		v, verr := cs.accounts(c, name, roles)
		if verr != nil {
			return verr
		}
		v.Errors = errs
		return cs.render(c.Status(fiber.StatusUnprocessableEntity), "serviceaccounts", view{Title: "Service accounts", User: userOf(c), CSRF: csrfOf(c), Data: v})
	}
	return cs.showSecret(c.Status(fiber.StatusCreated), secretView{What: "API key", Name: a.Name, Value: key,
		Back: "/console/admin/service-accounts/" + a.ID,
		Note: "The integration sends it as “Authorization: Bearer <key>” and acts as " + a.UserID() + " with the roles " + strings.Join(a.Roles, ", ") + "."})
}

type accountView struct {
	Account accountRow
	Errors  map[string]string
	Overlap string
}

func (cs *Console) accountPage(c *fiber.Ctx) error {
	return cs.renderAccount(c, nil, "24")
}

func (cs *Console) renderAccount(c *fiber.Ctx, errs map[string]string, overlap string) error {
	oi, err := cs.org(c)
	if err != nil {
		return err
	}
	ctx, cancel := cs.callCtx()
	defer cancel()
	a, err := cs.cfg.ServiceAccounts.ServiceAccount(ctx, userOf(c).Org, strings.Clone(c.Params("id")))
	if err != nil {
		return err
	}
	if errs != nil {
		c.Status(fiber.StatusUnprocessableEntity)
	}
	v := &accountView{Account: cs.accountRow(oi, a), Errors: errs, Overlap: overlap}
	return cs.render(c, "serviceaccount", view{Title: a.Name, User: userOf(c), CSRF: csrfOf(c), Data: v})
}

// accountAction rotates an account's key (showing the new one, once) or
// revokes it, as the admin API's routes do.
func (cs *Console) accountAction(c *fiber.Ctx) error {
	org, id := userOf(c).Org, strings.Clone(c.Params("id"))
	ctx, cancel := cs.callCtx()
	defer cancel()
	switch c.Params("action") {
	case "revoke":
		if _, err := cs.cfg.ServiceAccounts.RevokeServiceAccount(ctx, org, id); err != nil {
			return err
		}
		return c.Redirect("/console/admin/service-accounts/"+id, fiber.StatusSeeOther)
	case "rotate":
		overlap, err := overlapOf(c)
		var a *identity.ServiceAccount
		var key string
		if err == nil {
			a, key, err = cs.cfg.ServiceAccounts.RotateServiceAccountKey(ctx, org, id, overlap)
		}
		if err != nil {
			if msg, ok := overlapRefused(err); ok {
				return cs.renderAccount(c, map[string]string{"overlap": msg}, strings.Clone(c.FormValue("overlap_hours")))
			}
			return err
		}
		note := "The previous key stopped working now."
		if len(a.PrevHash) > 0 && !a.PrevUntil.IsZero() {
			oi, err := cs.org(c)
			if err != nil {
				return err
			}
			note = "The previous key keeps working until " + oi.at(a.PrevUntil) + ": switch the integration over before then."
		}
		return cs.showSecret(c, secretView{What: "API key", Name: a.Name, Value: key, Back: "/console/admin/service-accounts/" + a.ID, Note: note})
	}
	return errNotFound
}

func (cs *Console) showSecret(c *fiber.Ctx, v secretView) error {
	return cs.render(c, "secret", view{Title: "New " + v.What, User: userOf(c), CSRF: csrfOf(c), Data: v})
}

// --- Webhook subscriptions ---

type webhooksView struct {
	Subscriptions []subscriptionRow
	Events        []choice
	Roles         []choice
	Activities    []choice
	URL           string
	Errors        map[string]string
}

type subscriptionRow struct {
	ID, URL, Events, Roles, Activities, Status, Reason, PrevUntil, Created string
	Failures                                                               int
	Disabled                                                               bool
}

func (cs *Console) subscriptionRow(oi *orgInfo, s *webhook.Subscription) subscriptionRow {
	r := subscriptionRow{ID: s.ID, URL: s.URL, Events: strings.Join(s.Events, ", "), Roles: strings.Join(s.Roles, ", "),
		Activities: strings.Join(s.Activities, ", "), Status: "enabled", Reason: s.DisabledReason, Failures: s.Failures,
		Created: oi.at(s.Created), Disabled: s.Disabled}
	if s.Disabled {
		r.Status = "disabled"
	}
	if s.PrevSecret != "" && cs.cfg.Now().Before(s.PrevUntil) {
		r.PrevUntil = oi.at(s.PrevUntil)
	}
	return r
}

func (cs *Console) webhooksPage(c *fiber.Ctx) error {
	v, err := cs.webhooks(c, webhook.NewSubscription{})
	if err != nil {
		return err
	}
	return cs.render(c, "webhooks", view{Title: "Webhooks", User: userOf(c), CSRF: csrfOf(c), Data: v})
}

// webhooks is the list with the form to subscribe, filled with form: the
// filters offered are the roles and activities of the matrix in force.
func (cs *Console) webhooks(c *fiber.Ctx, form webhook.NewSubscription) (*webhooksView, error) {
	oi, err := cs.org(c)
	if err != nil {
		return nil, err
	}
	ctx, cancel := cs.callCtx()
	defer cancel()
	subs, err := cs.cfg.Webhooks.Subscriptions(ctx, userOf(c).Org)
	if err != nil {
		return nil, err
	}
	var roles, activities []string
	for a, r := range oi.activityRole {
		activities = append(activities, a)
		if !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	slices.Sort(roles)
	slices.Sort(activities)
	v := &webhooksView{URL: form.URL, Errors: map[string]string{},
		Events:     choices(webhook.EventTypes, func(e string) string { return e }, form.Events),
		Roles:      choices(roles, roleLabel, form.Roles),
		Activities: choices(activities, func(a string) string { return firstNonEmpty(oi.activityName[a], a) }, form.Activities)}
	for _, s := range subs {
		v.Subscriptions = append(v.Subscriptions, cs.subscriptionRow(oi, s))
	}
	return v, nil
}

// addWebhook subscribes as POST /v1/admin/webhooks does and shows the
// signing secret, once.
func (cs *Console) addWebhook(c *fiber.Ctx) error {
	ns := webhook.NewSubscription{URL: strings.Clone(strings.TrimSpace(c.FormValue("url"))), Events: formValues(c, "events"),
		Roles: formValues(c, "roles"), Activities: formValues(c, "activities")}
	ctx, cancel := cs.callCtx()
	defer cancel()
	s, err := cs.cfg.Webhooks.AddSubscription(ctx, userOf(c).Org, ns)
	if err != nil {
		errs, ok := fieldError(err, "url", "events", "roles", "activities")
		if !ok {
			return err
		}
		v, verr := cs.webhooks(c, ns)
		if verr != nil {
			return verr
		}
		v.Errors = errs
		return cs.render(c.Status(fiber.StatusUnprocessableEntity), "webhooks", view{Title: "Webhooks", User: userOf(c), CSRF: csrfOf(c), Data: v})
	}
	return cs.showSecret(c.Status(fiber.StatusCreated), secretView{What: "signing secret", Name: s.URL, Value: s.Secret,
		Back: "/console/admin/webhooks/" + s.ID, Note: "The endpoint verifies every delivery's webhook-signature with it (docs/integrations.md)."})
}

type webhookView struct {
	Sub        subscriptionRow
	Status     string // the deliveries' filter
	Filters    []navItem
	Deliveries []deliveryRow
	Errors     map[string]string
	Overlap    string
	Redone     string // the delivery just sent again
}

type deliveryRow struct {
	ID, Event, Status, LastError, Created, Next, Sent string
	Attempts                                          int
	Redeliver                                         bool
}

func (cs *Console) webhookPage(c *fiber.Ctx) error {
	return cs.renderWebhook(c, nil, "24")
}

func (cs *Console) renderWebhook(c *fiber.Ctx, errs map[string]string, overlap string) error {
	oi, err := cs.org(c)
	if err != nil {
		return err
	}
	org, id, status := userOf(c).Org, strings.Clone(c.Params("id")), strings.Clone(c.Query("status"))
	ctx, cancel := cs.callCtx()
	defer cancel()
	s, err := cs.cfg.Webhooks.Subscription(ctx, org, id)
	if err != nil {
		return err
	}
	ds, err := cs.cfg.Webhooks.Deliveries(ctx, org, id, status, deliveriesShown)
	if err != nil {
		return err
	}
	v := &webhookView{Sub: cs.subscriptionRow(oi, s), Status: status, Errors: errs, Overlap: overlap, Redone: strings.Clone(c.Query("redelivered"))}
	for _, f := range []struct{ label, status string }{{"All", ""}, {"Pending", webhook.StatusPending}, {"Sent", webhook.StatusSent}, {"Dead", webhook.StatusDead}} {
		href := "/console/admin/webhooks/" + id
		if f.status != "" {
			href += "?status=" + f.status
		}
		v.Filters = append(v.Filters, navItem{Label: f.label, Href: href, Current: f.status == status})
	}
	for _, d := range ds {
		r := deliveryRow{ID: d.ID, Event: d.Event, Status: d.Status, LastError: d.LastError, Created: oi.at(d.Created), Attempts: d.Attempts,
			Redeliver: d.Status != webhook.StatusPending}
		if d.Status == webhook.StatusPending {
			r.Next = oi.at(d.Due)
		}
		if !d.SentAt.IsZero() {
			r.Sent = oi.at(d.SentAt)
		}
		v.Deliveries = append(v.Deliveries, r)
	}
	if errs != nil {
		c.Status(fiber.StatusUnprocessableEntity)
	}
	return cs.render(c, "webhook", view{Title: "Webhook " + s.URL, User: userOf(c), CSRF: csrfOf(c), Data: v})
}

// webhookAction enables, disables or rotates the secret of a subscription,
// as the admin API's routes do.
func (cs *Console) webhookAction(c *fiber.Ctx) error {
	org, id := userOf(c).Org, strings.Clone(c.Params("id"))
	ctx, cancel := cs.callCtx()
	defer cancel()
	switch action := c.Params("action"); action {
	case "enable", "disable":
		if _, err := cs.cfg.Webhooks.SetEnabled(ctx, org, id, action == "enable"); err != nil {
			return err
		}
		return c.Redirect("/console/admin/webhooks/"+id, fiber.StatusSeeOther)
	case "rotate-secret":
		overlap, err := overlapOf(c)
		var s *webhook.Subscription
		if err == nil {
			s, err = cs.cfg.Webhooks.RotateSecret(ctx, org, id, overlap)
		}
		if err != nil {
			if msg, ok := overlapRefused(err); ok {
				return cs.renderWebhook(c, map[string]string{"overlap": msg}, strings.Clone(c.FormValue("overlap_hours")))
			}
			return err
		}
		note := "The previous secret stopped signing now."
		if s.PrevSecret != "" {
			oi, err := cs.org(c)
			if err != nil {
				return err
			}
			note = "Deliveries carry a signature with each secret until " + oi.at(s.PrevUntil) + ": give the endpoint the new one before then."
		}
		return cs.showSecret(c, secretView{What: "signing secret", Name: s.URL, Value: s.Secret, Back: "/console/admin/webhooks/" + s.ID, Note: note})
	}
	return errNotFound
}

// redeliver sends a delivery again now, under its webhook-id, as POST
// /v1/admin/webhooks/:id/deliveries/:delivery/redeliver does.
func (cs *Console) redeliver(c *fiber.Ctx) error {
	id, delivery := strings.Clone(c.Params("id")), strings.Clone(c.Params("delivery"))
	ctx, cancel := cs.callCtx()
	defer cancel()
	if _, err := cs.cfg.Webhooks.Redeliver(ctx, userOf(c).Org, id, delivery); err != nil {
		return err
	}
	return c.Redirect("/console/admin/webhooks/"+id+"?redelivered="+delivery, fiber.StatusSeeOther)
}

// formValues are the values of a repeated form field (checkboxes), copied
// out of Fiber's buffers.
func formValues(c *fiber.Ctx, name string) []string {
	out := []string{}
	for _, v := range c.Request().PostArgs().PeekMulti(name) {
		out = append(out, string(v))
	}
	return out
}
