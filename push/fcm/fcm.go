// Package fcm sends push messages through Firebase Cloud Messaging with the
// Firebase Admin SDK (firebase.google.com/go/v4). It implements push.Sender
// and is the only package that imports Firebase; it knows nothing of the
// outbox, HTTP routes or databases.
package fcm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"
	"google.golang.org/api/option"

	"github.com/fieldsync/fieldsync/push"
)

var _ push.Sender = (*Sender)(nil)

// Config selects the Firebase project and credentials.
type Config struct {
	// CredentialsFile is a service-account JSON key file. Empty: the
	// standard Google application default credentials
	// (GOOGLE_APPLICATION_CREDENTIALS, or the platform's metadata server).
	CredentialsFile string
	// ProjectID overrides the project named by the credentials.
	ProjectID string
	// Options are extra client options (tests point the SDK at a fake
	// with option.WithEndpoint and option.WithTokenSource).
	Options []option.ClientOption
	// Now is the clock of the APNs expiration header (default time.Now).
	Now func() time.Time
}

// Sender is an FCM push.Sender.
type Sender struct {
	client *messaging.Client
	now    func() time.Time
}

// New builds a sender from cfg. It does not contact Firebase.
func New(ctx context.Context, cfg Config) (*Sender, error) {
	var opts []option.ClientOption
	if cfg.CredentialsFile != "" {
		opts = append(opts, option.WithCredentialsFile(cfg.CredentialsFile))
	}
	opts = append(opts, cfg.Options...)
	var conf *firebase.Config
	if cfg.ProjectID != "" {
		conf = &firebase.Config{ProjectID: cfg.ProjectID}
	}
	app, err := firebase.NewApp(ctx, conf, opts...)
	if err != nil {
		return nil, fmt.Errorf("fcm: %w", err)
	}
	client, err := app.Messaging(ctx)
	if err != nil {
		return nil, fmt.Errorf("fcm: %w", err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Sender{client: client, now: cfg.Now}, nil
}

// maxBatch is SendEach's limit.
const maxBatch = 500

// Send implements push.Sender with SendEach (one HTTP/2 request per message,
// run concurrently by the SDK), at most 500 messages per call.
func (s *Sender) Send(ctx context.Context, msgs []push.Message) ([]push.Result, error) {
	out := make([]push.Result, 0, len(msgs))
	for start := 0; start < len(msgs); start += maxBatch {
		chunk := msgs[start:min(start+maxBatch, len(msgs))]
		fm := make([]*messaging.Message, len(chunk))
		for i, m := range chunk {
			fm[i] = s.Message(m)
		}
		br, err := s.client.SendEach(ctx, fm)
		if err != nil {
			return nil, fmt.Errorf("fcm: send: %w", err)
		}
		for _, r := range br.Responses {
			out = append(out, classify(r))
		}
	}
	return out, nil
}

// Message is the FCM form of m: the data part, the visible notification,
// Android priority, TTL and collapse key, APNs headers for priority,
// collapsing, expiry and background wake-up (content-available), and
// Webpush TTL and urgency for browsers.
func (s *Sender) Message(m push.Message) *messaging.Message {
	ttl := m.TTL
	androidPriority, apnsPriority, urgency := "normal", "5", "normal"
	if m.High {
		androidPriority, apnsPriority, urgency = "high", "10", "high"
	}
	fm := &messaging.Message{
		Token:        m.Token,
		Data:         m.Data,
		Notification: &messaging.Notification{Title: m.Title, Body: m.Body},
		Android: &messaging.AndroidConfig{
			CollapseKey: m.CollapseKey,
			Priority:    androidPriority,
			TTL:         &ttl,
		},
		APNS: &messaging.APNSConfig{
			Headers: map[string]string{
				"apns-priority":    apnsPriority,
				"apns-push-type":   "alert",
				"apns-collapse-id": collapseID(m.CollapseKey),
				"apns-expiration":  strconv.FormatInt(s.now().Add(ttl).Unix(), 10),
			},
			Payload: &messaging.APNSPayload{Aps: &messaging.Aps{ContentAvailable: m.ContentAvailable}},
		},
	}
	if m.Platform == push.PlatformWeb {
		fm.Webpush = &messaging.WebpushConfig{Headers: map[string]string{
			"TTL": strconv.Itoa(int(ttl / time.Second)), "Urgency": urgency,
		}}
	}
	return fm
}

// collapseID fits a collapse key into APNs' 64-byte apns-collapse-id.
func collapseID(key string) string {
	if len(key) <= 64 {
		return key
	}
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:16])
}

// classify turns the SDK's answer for one message into a push.Result.
func classify(r *messaging.SendResponse) push.Result {
	if r.Success {
		return push.Result{Outcome: push.OK}
	}
	err := r.Error
	res := push.Result{Err: errString(err)}
	resp := errorutils.HTTPResponse(err)
	switch {
	case messaging.IsUnregistered(err), messaging.IsInvalidArgument(err), messaging.IsSenderIDMismatch(err):
		// INVALID_ARGUMENT: the messages are built here and valid, so what
		// FCM rejects is the token.
		res.Outcome = push.InvalidToken
	case messaging.IsQuotaExceeded(err), messaging.IsUnavailable(err), messaging.IsInternal(err),
		resp == nil, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		res.Outcome = push.Retryable
		res.RetryAfter = retryAfter(resp)
	default:
		res.Outcome = push.Permanent
	}
	return res
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	var s string
	if resp := errorutils.HTTPResponse(err); resp != nil {
		s = strconv.Itoa(resp.StatusCode) + " "
	}
	return s + err.Error()
}

// retryAfter reads Retry-After (seconds or an HTTP date) of an FCM answer.
func retryAfter(resp *http.Response) time.Duration {
	if resp == nil {
		return 0
	}
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}
