// Package push owns fieldsync's push notifications: which committed changes
// notify whom (triggers), what a notification says (messages), the durable
// outbox they wait in, and the tailer and dispatcher that fill and drain it.
//
// It must not import Firebase, a database driver or Fiber: the outbox is
// reached through the Store interface declared here (implemented by the
// sqlite and mongodb packages, both proven by push/pushtest), devices are
// reached through Sender (push/fcm implements it with the Firebase Admin
// SDK; LogSender is the embedded default).
//
// Crash safety comes from where notifications are derived: the tailer reads
// the organisation's committed change feed from a durable cursor, inserts
// notifications under deterministic ids (insert-if-absent) and only then
// advances the cursor. The committed document is the notification's cause,
// so nothing is lost if a process dies between the two, and nothing is
// duplicated when the same changes are read again. See docs/push.md.
package push

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/fieldsync/fieldsync/identity"
)

// Categories a user can mute (PUT /v1/me/notifications).
const (
	CategoryFollowUp    = "follow_up"    // a follow-up the user is informed of was done or blocked
	CategoryVisitReview = "visit_review" // a manager reviewed the user's visit log
	CategoryVisitPlan   = "visit_plan"   // a manager planned a visit for the user
	CategoryOrderStatus = "order_status" // the user's order changed status
)

// Categories lists every category, in a stable order.
var Categories = []string{CategoryFollowUp, CategoryVisitReview, CategoryVisitPlan, CategoryOrderStatus}

// Triggers: what happened, as the app sees it in the data part ("type").
const (
	TriggerFollowUpDone    = "follow_up_done"
	TriggerFollowUpBlocked = "follow_up_blocked"
	TriggerVisitReviewed   = "visit_reviewed"
	TriggerVisitAssigned   = "visit_assigned"
	TriggerOrderStatus     = "order_status"
)

// Outbox states of a notification.
const (
	StatusPending = "pending" // waiting for its due time or a dispatcher
	StatusSent    = "sent"    // every device answered (or the user has none)
	StatusDead    = "dead"    // gave up: attempts exhausted or a permanent error
)

// Notification is one outbox row: one user told about one change.
type Notification struct {
	ID         string // deterministic: see NotificationID
	Org        string
	User       string // the recipient
	Trigger    string
	Category   string
	Collection string
	DocID      string
	Seq        int64 // feed position of the change that caused it
	Urgent     bool  // not delayed by quiet hours; Android priority high
	Title      string
	Body       string
	Created    time.Time
	Due        time.Time // not sent before

	Status     string
	Attempts   int
	LastError  string
	Delivered  []string // device ids already done with (delivered, or token removed)
	LeaseOwner string
	LeaseUntil time.Time
	SentAt     time.Time
}

// NotificationID is the deterministic id of a notification: the same
// change seen again (after a crash, by a second tailer) gives the same id,
// so the outbox insert is idempotent. state names the state that triggered
// it (a status and when it was set, a review time), so a later transition of
// the same document is a new notification.
func NotificationID(org, collection, docID, trigger, state, user string) string {
	h := sha256.New()
	for _, p := range []string{org, collection, docID, trigger, state, user} {
		h.Write([]byte(p))
		h.Write([]byte{0x1f})
	}
	return "n-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// Platforms of a device.
const (
	PlatformAndroid = "android"
	PlatformIOS     = "ios"
	PlatformWeb     = "web"
)

// Device is one app installation that can receive pushes.
type Device struct {
	Org        string
	User       string
	ID         string // the device id the app signs in with
	Token      string // FCM registration token
	Platform   string
	AppVersion string
	Updated    time.Time
}

// Prefs are a user's notification preferences.
type Prefs struct {
	Muted []string // categories the user does not want pushed
}

// QuietHours delay non-urgent notifications of an organisation: from Start
// to End (minutes after local midnight, in the organisation's time zone;
// End < Start spans midnight). Equal Start and End means none.
type QuietHours struct {
	Start int
	End   int
}

// Enabled reports whether the organisation has quiet hours.
func (q QuietHours) Enabled() bool { return q.Start != q.End }

// Store is what push needs from a database. Implementations must be safe
// for several server instances on one database (see pushtest).
type Store interface {
	// PutDevice registers or refreshes a device of (d.Org, d.User). A token
	// is one installation: registering it removes it from any other device
	// record, of any user.
	PutDevice(ctx context.Context, d Device) error
	Devices(ctx context.Context, org, user string) ([]Device, error)
	// UserDevices returns the devices of every listed user, in one read
	// (the dispatcher's batch).
	UserDevices(ctx context.Context, users []UserRef) ([]Device, error)
	// DeleteDevice removes a device; false when (org, user, id) has none.
	DeleteDevice(ctx context.Context, org, user, id string) (bool, error)
	// DeleteToken removes the device only while it still holds token, so a
	// refresh that raced with an FCM "unregistered" answer is kept.
	DeleteToken(ctx context.Context, org, user, id, token string) (bool, error)

	PutPrefs(ctx context.Context, org, user string, p Prefs) error
	Prefs(ctx context.Context, org, user string) (Prefs, error) // zero Prefs when none
	PutQuietHours(ctx context.Context, org string, q QuietHours) error
	QuietHours(ctx context.Context, org string) (QuietHours, error) // zero when none

	// Orgs lists every organisation (the tailer visits each).
	Orgs(ctx context.Context) ([]string, error)
	// TailCursor reads org's durable cursor (0 when none) without taking
	// the lease: an idle organisation costs the tailer reads only.
	TailCursor(ctx context.Context, org string) (int64, error)
	// TailCursors reads every organisation's cursor in one read (an
	// organisation without one is absent: 0).
	TailCursors(ctx context.Context) (map[string]int64, error)
	// AcquireTail takes or renews the tailing lease of org for owner until
	// until, when it is free, expired at now or already owner's, and returns
	// the durable cursor; ok is false when another owner holds it.
	AcquireTail(ctx context.Context, org, owner string, now, until time.Time) (cursor int64, ok bool, err error)
	// AdvanceTail moves the cursor of org forward to cursor (never back) and
	// extends owner's lease; ok is false when owner no longer holds it.
	AdvanceTail(ctx context.Context, org, owner string, cursor int64, until time.Time) (ok bool, err error)

	// Enqueue inserts the notifications whose ids are not in the outbox yet
	// and leaves the others untouched, returning how many it inserted.
	Enqueue(ctx context.Context, ns []Notification) (int, error)
	// Claim leases up to limit pending notifications due at now, whose lease
	// is free or expired, to owner until until. While a lease holds no other
	// Claim returns the notification, from any instance.
	Claim(ctx context.Context, owner string, now, until time.Time, limit int) ([]Notification, error)
	// Complete writes the dispatch state (Status, Attempts, LastError,
	// Delivered, Due, SentAt) of the notifications owner still holds, and
	// frees their leases, in one write; it returns how many it wrote (a
	// notification whose lease owner lost is left alone).
	Complete(ctx context.Context, owner string, ns []Notification) (int, error)
	// Prune deletes sent and dead notifications due before before (and,
	// where the store keeps them, their claim records), returning how many
	// notifications it deleted.
	Prune(ctx context.Context, before time.Time) (int, error)
	// Notification reads one outbox row (KindNotFound when none).
	Notification(ctx context.Context, id string) (Notification, error)
	// OutboxDepth counts the notifications waiting to be sent (pending,
	// whether due or not) and those given up on (dead, until pruned), for
	// the operator's gauges.
	OutboxDepth(ctx context.Context) (pending, dead int, err error)
}

// UserRef names a user of an organisation.
type UserRef struct{ Org, User string }

// Directory is what push needs from the identity directory: the users
// holding a role, and the organisation's time zone. The sqlite and mongodb
// stores implement it as identity.Store.
type Directory interface {
	Org(ctx context.Context, id string) (*identity.Org, error)
	Users(ctx context.Context, org string, f identity.UserFilter) ([]*identity.User, error)
}
