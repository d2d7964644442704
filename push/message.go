package push

import (
	"context"
	"log/slog"
	"strings"
	"time"
)

// Message is what one device is sent. It never carries the document: the
// data part tells the app what changed and to pull.
type Message struct {
	Token    string
	Platform string
	// Data: type (the trigger), collection, id, pull ("1"), category and
	// notification_id (the outbox id, for the app to deduplicate). Keys
	// avoid FCM's reserved ones ("from", "google.*", "gcm*").
	Data  map[string]string
	Title string
	Body  string
	// High priority (Android "high", APNs 10) for urgent notifications;
	// normal otherwise.
	High bool
	// CollapseKey is per document: a newer notification about the same
	// document replaces an undelivered older one on the device.
	CollapseKey string
	TTL         time.Duration
	// ContentAvailable asks iOS to wake the app for a background sync.
	ContentAvailable bool
}

// DefaultTTL is how long FCM keeps a message for an offline device.
const DefaultTTL = 24 * time.Hour

// NewMessage builds the message of n for device d.
func NewMessage(n Notification, d Device, ttl time.Duration) Message {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return Message{
		Token:    d.Token,
		Platform: d.Platform,
		Data: map[string]string{
			"type":            n.Trigger,
			"category":        n.Category,
			"collection":      n.Collection,
			"id":              n.DocID,
			"pull":            "1",
			"notification_id": n.ID,
		},
		Title:            n.Title,
		Body:             n.Body,
		High:             n.Urgent,
		CollapseKey:      n.Collection + ":" + n.DocID,
		TTL:              ttl,
		ContentAvailable: true,
	}
}

// templates hold the title and body of each trigger; {name} is replaced by
// the value of name.
var templates = map[string][2]string{
	TriggerFollowUpDone:    {"Follow-up done", "{activity} for order {order_id} is done."},
	TriggerFollowUpBlocked: {"Follow-up blocked", "{activity} for order {order_id} is blocked: {reason}"},
	TriggerVisitReviewed:   {"Visit reviewed", "Your visit was reviewed: {status}."},
	TriggerVisitAssigned:   {"New visit planned", "A visit was planned for you{start}."},
	TriggerOrderStatus:     {"Order update", "Your order {order} is now {status}."},
}

// render fills the templates of trigger with vars; a missing value renders
// as "" and leftover spacing is trimmed.
func render(trigger string, vars map[string]string) (title, body string) {
	t := templates[trigger]
	fill := func(s string) string {
		for k, v := range vars {
			s = strings.ReplaceAll(s, "{"+k+"}", v)
		}
		for {
			i := strings.IndexByte(s, '{')
			j := strings.IndexByte(s, '}')
			if i < 0 || j < i {
				break
			}
			s = s[:i] + s[j+1:]
		}
		return strings.Join(strings.Fields(s), " ")
	}
	return clip(fill(t[0]), maxTitle), clip(fill(t[1]), maxBody)
}

// Bounds of a rendered title and body, in characters. Values come from
// documents (a blocked reason can be long); FCM refuses a message over 4 KB
// with INVALID_ARGUMENT, which would be taken for a bad token.
const (
	maxTitle = 80
	maxBody  = 240
)

// clip shortens s to at most n characters, ending it with an ellipsis.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// Per-message outcomes of a send.
type Outcome int

const (
	OK           Outcome = iota // accepted by the push service
	InvalidToken                // the token is dead (unregistered, malformed): remove the device
	Retryable                   // try again later (RetryAfter when the service said)
	Permanent                   // will never succeed as it is
)

func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case InvalidToken:
		return "invalid_token"
	case Retryable:
		return "retryable"
	}
	return "permanent"
}

// Result is the answer for one message of a batch.
type Result struct {
	Outcome    Outcome
	RetryAfter time.Duration // what the service asked for (429, 503); 0 when it did not
	Err        string        // the service's error, for the outbox's last error
}

// Sender delivers messages to devices. Send returns one result per message,
// in order; an error means the whole batch failed and is retried.
type Sender interface {
	Send(ctx context.Context, msgs []Message) ([]Result, error)
}

// LogSender is the embedded default: it logs what it would send and
// reports every message delivered, so a server without Firebase runs and
// its outbox drains.
type LogSender struct{ Log *slog.Logger }

// Send implements Sender.
func (l LogSender) Send(ctx context.Context, msgs []Message) ([]Result, error) {
	log := l.Log
	if log == nil {
		log = slog.Default()
	}
	out := make([]Result, len(msgs))
	for _, m := range msgs {
		log.Info("push (log sender)", "platform", m.Platform, "type", m.Data["type"], "collection", m.Data["collection"],
			"id", m.Data["id"], "notification", m.Data["notification_id"], "title", m.Title)
	}
	return out, nil
}
