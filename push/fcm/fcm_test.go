package fcm_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"google.golang.org/api/option"

	"github.com/fieldsync/fieldsync/internal/fakefcm"
	"github.com/fieldsync/fieldsync/push"
	"github.com/fieldsync/fieldsync/push/fcm"
)

var now = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

// newSender is the real Admin SDK pointed at the fake: the endpoint option
// redirects the messaging API, and a static token source stands in for a
// service account so nothing reaches Google.
func newSender(t *testing.T, fake *fakefcm.Server) *fcm.Sender {
	t.Helper()
	s, err := fcm.New(context.Background(), fcm.Config{ProjectID: "fieldsync-test", Now: func() time.Time { return now },
		Options: []option.ClientOption{option.WithEndpoint(fake.URL()),
			option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "fake-access-token"}))}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func message(token, platform string, high bool) push.Message {
	n := push.Notification{ID: "n-1", Trigger: push.TriggerFollowUpDone, Category: push.CategoryFollowUp,
		Collection: "follow_ups", DocID: "fu-o1-credit_check", Urgent: high, Title: "Follow-up done", Body: "credit_check for order o1 is done."}
	return push.NewMessage(n, push.Device{Token: token, Platform: platform}, time.Hour)
}

// TestMessageBody: the exact JSON the SDK sends for an urgent Android/iOS
// notification and a normal web one.
func TestMessageBody(t *testing.T) {
	t.Parallel()
	fake := fakefcm.Start()
	defer fake.Close()
	s := newSender(t, fake)
	res, err := s.Send(context.Background(), []push.Message{message("tok-a", push.PlatformAndroid, true),
		message("tok-w", push.PlatformWeb, false)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Outcome != push.OK || res[1].Outcome != push.OK {
		t.Fatalf("results = %+v", res)
	}
	reqs := fake.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests", len(reqs))
	}
	byToken := map[string]fakefcm.Request{}
	for _, r := range reqs {
		byToken[r.Token] = r
		if r.Project != "fieldsync-test" || r.Auth != "Bearer fake-access-token" {
			t.Errorf("project %q auth %q", r.Project, r.Auth)
		}
	}
	exp := now.Add(time.Hour).Unix()
	want := map[string]string{
		"tok-a": `{"token":"tok-a",
			"data":{"category":"follow_up","collection":"follow_ups","id":"fu-o1-credit_check","notification_id":"n-1","pull":"1","type":"follow_up_done"},
			"notification":{"title":"Follow-up done","body":"credit_check for order o1 is done."},
			"android":{"collapse_key":"follow_ups:fu-o1-credit_check","priority":"high","ttl":"3600s"},
			"apns":{"headers":{"apns-collapse-id":"follow_ups:fu-o1-credit_check","apns-expiration":"` + itoa(exp) + `","apns-priority":"10","apns-push-type":"alert"},
				"payload":{"aps":{"content-available":1}}}}`,
		"tok-w": `{"token":"tok-w",
			"data":{"category":"follow_up","collection":"follow_ups","id":"fu-o1-credit_check","notification_id":"n-1","pull":"1","type":"follow_up_done"},
			"notification":{"title":"Follow-up done","body":"credit_check for order o1 is done."},
			"android":{"collapse_key":"follow_ups:fu-o1-credit_check","priority":"normal","ttl":"3600s"},
			"apns":{"headers":{"apns-collapse-id":"follow_ups:fu-o1-credit_check","apns-expiration":"` + itoa(exp) + `","apns-priority":"5","apns-push-type":"alert"},
				"payload":{"aps":{"content-available":1}}},
			"webpush":{"headers":{"TTL":"3600","Urgency":"normal"}}}`,
	}
	for tok, w := range want {
		if got, want := canon(t, byToken[tok].Message), canon(t, []byte(w)); got != want {
			t.Errorf("message to %s:\n got %s\nwant %s", tok, got, want)
		}
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func canon(t *testing.T, raw []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// TestClassify: FCM's error answers become the outcomes the dispatcher acts on.
func TestClassify(t *testing.T) {
	t.Parallel()
	fake := fakefcm.Start()
	defer fake.Close()
	s := newSender(t, fake)
	fake.Script("unreg", fakefcm.Unregistered)
	fake.Script("bad", fakefcm.InvalidArgument)
	fake.Script("quota", fakefcm.QuotaExceeded(30))
	// Longer than the SDK's own two-minute retry cap, so the SDK hands the
	// 503 back at once instead of sleeping and retrying itself.
	fake.Script("down", fakefcm.Unavailable(600))
	fake.Script("teapot", fakefcm.Answer{Status: 403})
	toks := []string{"ok", "unreg", "bad", "quota", "down", "teapot"}
	var msgs []push.Message
	for _, tok := range toks {
		msgs = append(msgs, message(tok, push.PlatformIOS, false))
	}
	res, err := s.Send(context.Background(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		out push.Outcome
		ra  time.Duration
		err string
	}{
		{push.OK, 0, ""},
		{push.InvalidToken, 0, "404"},
		{push.InvalidToken, 0, "400"},
		{push.Retryable, 30 * time.Second, "429"},
		{push.Retryable, 600 * time.Second, "503"},
		{push.Permanent, 0, "403"},
	}
	for i, w := range want {
		if res[i].Outcome != w.out || res[i].RetryAfter != w.ra || !strings.HasPrefix(res[i].Err, w.err) {
			t.Errorf("%s: got %v retry-after %v err %q; want %v %v %q", toks[i], res[i].Outcome, res[i].RetryAfter, res[i].Err, w.out, w.ra, w.err)
		}
	}
	if n := len(fake.Requests()); n != len(toks) {
		t.Errorf("%d requests, want one per message (no SDK-internal retries)", n)
	}
}

// TestServiceAccountCredentials: with a service-account key file (as
// --fcm-credentials gives) the SDK signs a JWT, exchanges it at the key's
// token endpoint (the fake's) and sends with the access token it got.
func TestServiceAccountCredentials(t *testing.T) {
	t.Parallel()
	fake := fakefcm.Start()
	defer fake.Close()
	key := filepath.Join(t.TempDir(), "sa.json")
	if err := fake.ServiceAccount(key, "fieldsync-sa"); err != nil {
		t.Fatal(err)
	}
	s, err := fcm.New(context.Background(), fcm.Config{CredentialsFile: key,
		Options: []option.ClientOption{option.WithEndpoint(fake.URL())}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Send(context.Background(), []push.Message{message("tok-sa", push.PlatformAndroid, true)})
	if err != nil || res[0].Outcome != push.OK {
		t.Fatalf("Send = %+v, %v", res, err)
	}
	reqs := fake.Requests()
	if fake.Tokens() != 1 || len(reqs) != 1 || reqs[0].Auth != "Bearer fake-access-token-1" || reqs[0].Project != "fieldsync-sa" {
		t.Fatalf("tokens issued %d, requests %+v", fake.Tokens(), reqs)
	}
}

// TestBadCredentials: an unreadable key file stops the start, not the
// first send.
func TestBadCredentials(t *testing.T) {
	t.Parallel()
	bad := filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(bad, []byte(`{"type": "service_account"`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{bad, filepath.Join(t.TempDir(), "missing.json")} {
		if _, err := fcm.New(context.Background(), fcm.Config{CredentialsFile: file, ProjectID: "p"}); err == nil {
			t.Errorf("New with %s succeeded", file)
		}
	}
}
