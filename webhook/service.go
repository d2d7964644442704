package webhook

import (
	"context"
	"crypto/rand"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// More codes of webhook subscriptions.
const (
	CodeUnknownEventType = "unknown_event_type"
)

// DefaultSecretOverlap is how long a rotated secret keeps signing when the
// admin does not say; MaxSecretOverlap bounds it.
const (
	DefaultSecretOverlap = 24 * time.Hour
	MaxSecretOverlap     = 7 * 24 * time.Hour
)

// Service is the admin side of webhooks: subscriptions of an organisation
// and their deliveries. Every method works in the caller's organisation; a
// record of another one is not found, exactly like a missing one.
type Service struct {
	store         Store
	allowLoopback bool
	now           func() time.Time
	rand          io.Reader
}

// NewService returns the service; allowLoopback is --webhooks-allow-loopback.
func NewService(store Store, allowLoopback bool, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, allowLoopback: allowLoopback, now: now, rand: rand.Reader}
}

// NewSubscription is what an admin gives to subscribe.
type NewSubscription struct {
	URL        string
	Events     []string
	Roles      []string
	Activities []string
}

func (s *Service) check(ns NewSubscription) error {
	if err := CheckURL(ns.URL, s.allowLoopback); err != nil {
		return err
	}
	if len(ns.Events) == 0 {
		return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/events", "events must name at least one event type")
	}
	for i, e := range ns.Events {
		if !slices.Contains(EventTypes, e) {
			return engine.Errorf(engine.KindInvalid, CodeUnknownEventType, "/events/"+strconv.Itoa(i), "unknown event type %q", e)
		}
	}
	for _, f := range []struct {
		name string
		l    []string
	}{{"roles", ns.Roles}, {"activities", ns.Activities}} {
		if len(f.l) > 50 {
			return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/"+f.name, "at most 50 %s", f.name)
		}
		for i, v := range f.l {
			if v == "" || len(v) > 64 {
				return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/"+f.name+"/"+strconv.Itoa(i), "1 to 64 characters")
			}
		}
	}
	return nil
}

// AddSubscription creates a subscription; its Secret is shown this once.
func (s *Service) AddSubscription(ctx context.Context, org string, ns NewSubscription) (*Subscription, error) {
	if err := s.check(ns); err != nil {
		return nil, err
	}
	now := s.now()
	id, err := ulid.New(ulid.Timestamp(now), s.rand)
	if err != nil {
		return nil, err
	}
	secret, err := NewSecret(s.rand)
	if err != nil {
		return nil, err
	}
	sub := &Subscription{Org: org, ID: "whs_" + id.String(), URL: ns.URL, Events: slices.Compact(slices.Sorted(slices.Values(ns.Events))),
		Roles: ns.Roles, Activities: ns.Activities, Secret: secret, Created: now, Updated: now}
	if err := s.store.PutSubscription(ctx, sub); err != nil {
		return nil, err
	}
	return sub, nil
}

// Subscription returns one of org's subscriptions.
func (s *Service) Subscription(ctx context.Context, org, id string) (*Subscription, error) {
	sub, err := s.store.Subscription(ctx, org, id)
	if engine.ErrorKind(err) == engine.KindNotFound {
		return nil, engine.Errorf(engine.KindNotFound, engine.CodeNotFound, "", "no webhook subscription %q", id)
	}
	return sub, err
}

// Subscriptions lists org's subscriptions.
func (s *Service) Subscriptions(ctx context.Context, org string) ([]*Subscription, error) {
	if org == "" {
		return nil, nil
	}
	return s.store.Subscriptions(ctx, org)
}

// UpdateSubscription replaces what a subscription wants (nil: unchanged).
func (s *Service) UpdateSubscription(ctx context.Context, org, id string, url *string, events, roles, activities *[]string) (*Subscription, error) {
	return s.update(ctx, org, id, func(sub *Subscription) error {
		ns := NewSubscription{URL: sub.URL, Events: sub.Events, Roles: sub.Roles, Activities: sub.Activities}
		if url != nil {
			ns.URL = *url
		}
		if events != nil {
			ns.Events = *events
		}
		if roles != nil {
			ns.Roles = *roles
		}
		if activities != nil {
			ns.Activities = *activities
		}
		if err := s.check(ns); err != nil {
			return err
		}
		sub.URL, sub.Events, sub.Roles, sub.Activities = ns.URL, ns.Events, ns.Roles, ns.Activities
		return nil
	})
}

// RotateSecret gives the subscription a new secret (returned in Secret,
// shown once); deliveries are signed with both until overlap has passed.
func (s *Service) RotateSecret(ctx context.Context, org, id string, overlap time.Duration) (*Subscription, error) {
	if overlap < 0 || overlap > MaxSecretOverlap {
		return nil, engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/overlap_seconds",
			"the overlap must be 0 to %d seconds", int(MaxSecretOverlap/time.Second))
	}
	secret, err := NewSecret(s.rand)
	if err != nil {
		return nil, err
	}
	return s.update(ctx, org, id, func(sub *Subscription) error {
		sub.PrevSecret, sub.PrevUntil, sub.Secret = sub.Secret, s.now().Add(overlap), secret
		if overlap == 0 {
			sub.PrevSecret, sub.PrevUntil = "", time.Time{}
		}
		return nil
	})
}

// SetEnabled enables or disables a subscription; enabling clears the
// failure count and the reason it was disabled.
func (s *Service) SetEnabled(ctx context.Context, org, id string, enabled bool) (*Subscription, error) {
	return s.update(ctx, org, id, func(sub *Subscription) error {
		sub.Disabled = !enabled
		if enabled {
			sub.DisabledReason, sub.Failures, sub.FailingSince = "", 0, time.Time{}
		} else {
			sub.DisabledReason = "disabled by an admin"
		}
		return nil
	})
}

func (s *Service) update(ctx context.Context, org, id string, change func(*Subscription) error) (*Subscription, error) {
	for attempt := 0; ; attempt++ {
		sub, err := s.Subscription(ctx, org, id)
		if err != nil {
			return nil, err
		}
		if err := change(sub); err != nil {
			return nil, err
		}
		sub.Updated = s.now()
		err = s.store.PutSubscription(ctx, sub)
		if engine.ErrorCode(err) == identity.CodeVersionMismatch && attempt < 4 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return sub, nil
	}
}

// Deliveries lists a subscription's deliveries, newest first.
func (s *Service) Deliveries(ctx context.Context, org, id, status string, limit int) ([]Delivery, error) {
	if _, err := s.Subscription(ctx, org, id); err != nil {
		return nil, err
	}
	switch status {
	case "", StatusPending, StatusSent, StatusDead:
	default:
		return nil, engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/status", "status is pending, sent or dead")
	}
	return s.store.Deliveries(ctx, org, id, status, limit)
}

// Redeliver sends a delivery of the subscription again, now, with fresh
// attempts; its webhook-id stays, so a subscriber that processed it
// already recognises it.
func (s *Service) Redeliver(ctx context.Context, org, id, delivery string) (Delivery, error) {
	d, err := s.store.Delivery(ctx, org, delivery)
	if engine.ErrorKind(err) == engine.KindNotFound || err == nil && d.Sub != id {
		return Delivery{}, engine.Errorf(engine.KindNotFound, engine.CodeNotFound, "", "no delivery %q", delivery)
	}
	if err != nil {
		return Delivery{}, err
	}
	if err := s.store.Redeliver(ctx, org, delivery, s.now()); err != nil {
		return Delivery{}, err
	}
	return s.store.Delivery(ctx, org, delivery)
}
