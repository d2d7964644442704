package server

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/webhook"
)

// Webhooks is the webhook management of the admin API (package webhook).
// Every method works in the caller's organisation.
type Webhooks interface {
	AddSubscription(ctx context.Context, org string, ns webhook.NewSubscription) (*webhook.Subscription, error)
	Subscription(ctx context.Context, org, id string) (*webhook.Subscription, error)
	Subscriptions(ctx context.Context, org string) ([]*webhook.Subscription, error)
	UpdateSubscription(ctx context.Context, org, id string, url *string, events, roles, activities *[]string) (*webhook.Subscription, error)
	RotateSecret(ctx context.Context, org, id string, overlap time.Duration) (*webhook.Subscription, error)
	SetEnabled(ctx context.Context, org, id string, enabled bool) (*webhook.Subscription, error)
	Deliveries(ctx context.Context, org, id, status string, limit int) ([]webhook.Delivery, error)
	Redeliver(ctx context.Context, org, id, delivery string) (webhook.Delivery, error)
}

func (s *Server) webhookRoutes(r fiber.Router) {
	r.Get("/webhooks", s.listWebhooks)
	r.Post("/webhooks", s.addWebhook)
	r.Get("/webhooks/:id", s.getWebhook)
	r.Patch("/webhooks/:id", s.patchWebhook)
	r.Post("/webhooks/:id/rotate-secret", s.rotateWebhookSecret)
	r.Post("/webhooks/:id/enable", s.enableWebhook(true))
	r.Post("/webhooks/:id/disable", s.enableWebhook(false))
	r.Get("/webhooks/:id/deliveries", s.listDeliveries)
	r.Post("/webhooks/:id/deliveries/:delivery/redeliver", s.redeliver)
}

// webhookJSON is a subscription as the admin API shows it: the secret only
// in the reply that made it.
type webhookJSON struct {
	ID              string     `json:"id"`
	URL             string     `json:"url"`
	Events          []string   `json:"events"`
	Roles           []string   `json:"roles"`
	Activities      []string   `json:"activities"`
	Disabled        bool       `json:"disabled"`
	DisabledReason  string     `json:"disabled_reason,omitempty"`
	Failures        int        `json:"consecutive_failures"`
	PrevSecretUntil *time.Time `json:"previous_secret_valid_until,omitempty"`
	Version         int64      `json:"version"`
	Created         time.Time  `json:"created"`
	Updated         time.Time  `json:"updated"`
	Secret          string     `json:"secret,omitempty"`
}

func toWebhookJSON(w *webhook.Subscription, withSecret bool) webhookJSON {
	out := webhookJSON{ID: w.ID, URL: w.URL, Events: nonNil(w.Events), Roles: nonNil(w.Roles), Activities: nonNil(w.Activities),
		Disabled: w.Disabled, DisabledReason: w.DisabledReason, Failures: w.Failures, Version: w.Version,
		Created: w.Created.UTC(), Updated: w.Updated.UTC()}
	if w.PrevSecret != "" {
		t := w.PrevUntil.UTC()
		out.PrevSecretUntil = &t
	}
	if withSecret {
		out.Secret = w.Secret
	}
	return out
}

type deliveryJSON struct {
	ID        string          `json:"id"` // the webhook-id header
	Event     string          `json:"event"`
	Status    string          `json:"status"`
	Attempts  int             `json:"attempts"`
	LastError string          `json:"last_error,omitempty"`
	Created   time.Time       `json:"created"`
	Due       time.Time       `json:"next_attempt"`
	SentAt    *time.Time      `json:"sent_at,omitempty"`
	Body      json.RawMessage `json:"body"`
}

func toDeliveryJSON(d webhook.Delivery) deliveryJSON {
	out := deliveryJSON{ID: d.ID, Event: d.Event, Status: d.Status, Attempts: d.Attempts, LastError: d.LastError,
		Created: d.Created.UTC(), Due: d.Due.UTC(), Body: d.Body}
	if !d.SentAt.IsZero() {
		t := d.SentAt.UTC()
		out.SentAt = &t
	}
	return out
}

type webhookRequest struct {
	URL        *string   `json:"url"`
	Events     *[]string `json:"events"`
	Roles      *[]string `json:"roles"`
	Activities *[]string `json:"activities"`
}

func (s *Server) listWebhooks(c *fiber.Ctx) error {
	ctx, cancel := s.callCtx()
	defer cancel()
	ws, err := s.cfg.Webhooks.Subscriptions(ctx, actorOf(c).Org)
	if err != nil {
		return err
	}
	out := struct {
		Webhooks []webhookJSON `json:"webhooks"`
	}{Webhooks: []webhookJSON{}}
	for _, w := range ws {
		out.Webhooks = append(out.Webhooks, toWebhookJSON(w, false))
	}
	return c.JSON(out)
}

func (s *Server) addWebhook(c *fiber.Ctx) error {
	var req webhookRequest
	if err := decodeStrict(c.Body(), &req); err != nil {
		return err
	}
	ns := webhook.NewSubscription{}
	if req.URL != nil {
		ns.URL = *req.URL
	}
	for _, f := range []struct {
		dst *[]string
		src *[]string
	}{{&ns.Events, req.Events}, {&ns.Roles, req.Roles}, {&ns.Activities, req.Activities}} {
		if f.src != nil {
			*f.dst = *f.src
		}
	}
	ctx, cancel := s.callCtx()
	defer cancel()
	w, err := s.cfg.Webhooks.AddSubscription(ctx, actorOf(c).Org, ns)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusCreated).JSON(toWebhookJSON(w, true))
}

func (s *Server) getWebhook(c *fiber.Ctx) error {
	ctx, cancel := s.callCtx()
	defer cancel()
	w, err := s.cfg.Webhooks.Subscription(ctx, actorOf(c).Org, param(c, "id"))
	if err != nil {
		return err
	}
	return c.JSON(toWebhookJSON(w, false))
}

func (s *Server) patchWebhook(c *fiber.Ctx) error {
	var req webhookRequest
	if err := decodeStrict(c.Body(), &req); err != nil {
		return err
	}
	ctx, cancel := s.callCtx()
	defer cancel()
	w, err := s.cfg.Webhooks.UpdateSubscription(ctx, actorOf(c).Org, param(c, "id"), req.URL, req.Events, req.Roles, req.Activities)
	if err != nil {
		return err
	}
	return c.JSON(toWebhookJSON(w, false))
}

func (s *Server) rotateWebhookSecret(c *fiber.Ctx) error {
	req := struct {
		OverlapSeconds *int64 `json:"overlap_seconds"`
	}{}
	if len(c.Body()) > 0 {
		if err := decodeStrict(c.Body(), &req); err != nil {
			return err
		}
	}
	overlap := webhook.DefaultSecretOverlap
	if req.OverlapSeconds != nil {
		overlap = time.Duration(*req.OverlapSeconds) * time.Second
		if *req.OverlapSeconds < 0 || overlap > webhook.MaxSecretOverlap {
			overlap = -1 // refused by the service with its pointer
		}
	}
	ctx, cancel := s.callCtx()
	defer cancel()
	w, err := s.cfg.Webhooks.RotateSecret(ctx, actorOf(c).Org, param(c, "id"), overlap)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(toWebhookJSON(w, true))
}

func (s *Server) enableWebhook(enabled bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ctx, cancel := s.callCtx()
		defer cancel()
		w, err := s.cfg.Webhooks.SetEnabled(ctx, actorOf(c).Org, param(c, "id"), enabled)
		if err != nil {
			return err
		}
		return c.JSON(toWebhookJSON(w, false))
	}
}

func (s *Server) listDeliveries(c *fiber.Ctx) error {
	limit := 100
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return engine.Errorf(engine.KindInvalid, engine.CodeLimitOutOfRange, "/limit", "limit must be 1 to 1000")
		}
		limit = n
	}
	ctx, cancel := s.callCtx()
	defer cancel()
	ds, err := s.cfg.Webhooks.Deliveries(ctx, actorOf(c).Org, param(c, "id"), strings.Clone(c.Query("status")), limit)
	if err != nil {
		return err
	}
	out := struct {
		Deliveries []deliveryJSON `json:"deliveries"`
	}{Deliveries: []deliveryJSON{}}
	for _, d := range ds {
		out.Deliveries = append(out.Deliveries, toDeliveryJSON(d))
	}
	return c.JSON(out)
}

func (s *Server) redeliver(c *fiber.Ctx) error {
	ctx, cancel := s.callCtx()
	defer cancel()
	d, err := s.cfg.Webhooks.Redeliver(ctx, actorOf(c).Org, param(c, "id"), param(c, "delivery"))
	if err != nil {
		return err
	}
	return c.JSON(toDeliveryJSON(d))
}
