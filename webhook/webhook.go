// Package webhook owns fieldsync's outgoing webhooks (docs/integrations.md):
// an organisation's subscriptions, the events derived from its committed
// change feed, the durable delivery records they become, and the tailer and
// dispatcher that fill and drain them, signed the Standard Webhooks way
// (sign.go).
//
// It follows the design of the push outbox (package push, docs/push.md):
// the tailer reads the committed change feed from a durable cursor, inserts
// one delivery per (subscription, event) under a deterministic id
// (insert-if-absent) and only then advances the cursor, so a crash between
// the two repeats idempotent inserts and loses nothing; no transaction spans
// the document store and the delivery store. The dispatcher claims due
// deliveries under a lease, so two instances never send one delivery at the
// same time, and retries with exponential backoff and jitter.
//
// It imports no database driver and no HTTP framework: storage is reached
// through Store (implemented by the sqlite and mongodb packages, both
// proven by webhook/webhooktest).
package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Event types (the catalogue of docs/integrations.md).
const (
	EventFollowUpCreated   = "follow_up.created"
	EventFollowUpClaimed   = "follow_up.claimed"
	EventFollowUpDone      = "follow_up.done"
	EventFollowUpBlocked   = "follow_up.blocked"
	EventFollowUpEscalated = "follow_up.escalated"
	EventOrderStatus       = "order.status_changed"
	EventVisitFlagged      = "visit.flagged"
	// EventDeviceRegistered comes from the push device registry, not the
	// change feed (see Registration).
	EventDeviceRegistered = "device.registered"
)

// EventTypes lists every event type a subscription may name.
var EventTypes = []string{EventFollowUpCreated, EventFollowUpClaimed, EventFollowUpDone, EventFollowUpBlocked,
	EventFollowUpEscalated, EventOrderStatus, EventVisitFlagged, EventDeviceRegistered}

// Delivery states.
const (
	StatusPending = "pending" // waiting for its due time or a dispatcher
	StatusSent    = "sent"    // the endpoint answered 2xx
	StatusDead    = "dead"    // given up (attempts exhausted, subscription gone or disabled); an admin may redeliver
)

// Subscription is one endpoint of an organisation and what it wants.
// Secret signs deliveries; it is stored as given (an HMAC key must be
// readable to sign) and shown only when made. During a rotation the
// previous secret signs too, until PrevUntil.
type Subscription struct {
	Org        string
	ID         string
	URL        string
	Events     []string // event types
	Roles      []string // follow-up events only for these responsible roles (none: all)
	Activities []string // follow-up events only for these activities (none: all)
	Secret     string
	PrevSecret string
	PrevUntil  time.Time

	Disabled       bool
	DisabledReason string // why the dispatcher (or an admin) disabled it
	Failures       int    // consecutive failed attempts
	FailingSince   time.Time

	Version int64 // bumped by every write; stores compare it
	Created time.Time
	Updated time.Time
}

// Secrets are the secrets that sign a delivery at now: the current one and,
// during a rotation's overlap, the previous one.
func (s *Subscription) Secrets(now time.Time) []string {
	if s.PrevSecret != "" && now.Before(s.PrevUntil) {
		return []string{s.Secret, s.PrevSecret}
	}
	return []string{s.Secret}
}

// Delivery is one event sent to one subscription: its body is fixed when it
// is enqueued, so every attempt sends the same bytes under the same
// webhook-id.
type Delivery struct {
	ID    string // deterministic: DeliveryID; it is the webhook-id
	Org   string
	Sub   string
	Event string // event type
	Seq   int64  // feed position of the change that caused it
	Body  []byte
	// Created is when the tailer enqueued it; Due when it may be tried next.
	Created time.Time
	Due     time.Time

	Status     string
	Attempts   int
	LastError  string // "" or what the last attempt got (status, or transport error)
	LeaseOwner string
	LeaseUntil time.Time
	SentAt     time.Time
}

// DeliveryID is the deterministic id of the delivery of event (named by its
// type, document and the state that triggered it) to a subscription: the
// same change read again gives the same id, so the insert is idempotent.
func DeliveryID(org, sub, event, collection, docID, state string) string {
	h := sha256.New()
	for _, p := range []string{org, sub, event, collection, docID, state} {
		h.Write([]byte(p))
		h.Write([]byte{0x1f})
	}
	return "wh_" + hex.EncodeToString(h.Sum(nil)[:16])
}

// Registration is a device registered with the push registry whose
// device.registered event the tailer has not taken yet. Devices are not
// documents of the change feed: the device record itself carries its
// registration from the write that creates it (one record, one write, so no
// transaction spans two stores) until the tailer has enqueued its
// deliveries and takes it (TakeRegistrations). A refresh of a device that
// exists (a new token, the app started again) is no registration; a device
// deleted and registered again is a new one.
type Registration struct {
	Org, User, Device, Platform string
	At                          time.Time // when the record was created; with the ids, what makes it distinct
}

// Store is what webhooks need from a database. Implementations must be
// safe for several server instances on one database (see webhooktest).
type Store interface {
	// PutSubscription creates s (s.Version 0) or replaces it if its stored
	// Version is s.Version, then sets s.Version to the new version; a taken
	// id or a changed subscription is CodeVersionMismatch, a missing one not
	// found.
	PutSubscription(ctx context.Context, s *Subscription) error
	// Subscription reads one subscription of org (not found otherwise).
	Subscription(ctx context.Context, org, id string) (*Subscription, error)
	// Subscriptions lists org's subscriptions in id order; org "" lists
	// every organisation's (the tailer's read).
	Subscriptions(ctx context.Context, org string) ([]*Subscription, error)

	// WebhookCursor reads org's durable feed cursor (0 when none).
	WebhookCursor(ctx context.Context, org string) (int64, error)
	// AdvanceWebhookCursor moves org's cursor forward to cursor, never back.
	AdvanceWebhookCursor(ctx context.Context, org string, cursor int64) error

	// EnqueueDeliveries inserts the deliveries whose ids are not stored yet
	// and leaves the others untouched, returning how many it inserted.
	EnqueueDeliveries(ctx context.Context, ds []Delivery) (int, error)
	// ClaimDeliveries leases up to limit pending deliveries due at now whose
	// lease is free or expired to owner until until. While a lease holds no
	// other claim returns the delivery, from any instance.
	ClaimDeliveries(ctx context.Context, owner string, now, until time.Time, limit int) ([]Delivery, error)
	// CompleteDelivery writes the dispatch state (Status, Attempts,
	// LastError, Due, SentAt) of a delivery owner still holds and frees its
	// lease; false when owner lost it.
	CompleteDelivery(ctx context.Context, owner string, d Delivery) (bool, error)
	// Delivery reads one delivery of org (not found otherwise).
	Delivery(ctx context.Context, org, id string) (Delivery, error)
	// Deliveries lists org's deliveries of one subscription, newest first,
	// at most limit; status "" is any.
	Deliveries(ctx context.Context, org, sub, status string, limit int) ([]Delivery, error)
	// Redeliver makes a sent or dead delivery of org pending again, due at
	// now, with its attempts reset; not found when org has no such delivery.
	Redeliver(ctx context.Context, org, id string, now time.Time) error

	// PendingRegistrations returns up to limit of org's device
	// registrations not taken yet, oldest first (see Registration).
	PendingRegistrations(ctx context.Context, org string, limit int) ([]Registration, error)
	// TakeRegistrations clears the registrations from the device records
	// that still carry them: a device deleted, or deleted and registered
	// again, since they were read is left as it is now.
	TakeRegistrations(ctx context.Context, rs []Registration) error
}
