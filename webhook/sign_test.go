package webhook_test

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/webhook"
)

// The example of the Standard Webhooks specification's reference
// libraries: a signature computed elsewhere verifies here.
func TestSignReferenceVector(t *testing.T) {
	t.Parallel()
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	body := []byte(`{"test": 2432232314}`)
	at := time.Unix(1614265330, 0)
	sig, err := webhook.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", at, body, secret)
	if err != nil {
		t.Fatal(err)
	}
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; sig != want {
		t.Fatalf("Sign = %s, want %s", sig, want)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	oldSecret, _ := webhook.NewSecret(nil)
	newSecret, _ := webhook.NewSecret(nil)
	other, _ := webhook.NewSecret(nil)
	now := time.Date(2026, 12, 4, 7, 0, 0, 0, time.UTC)
	body := []byte(`{"type":"follow_up.created","data":{"follow_up_id":"fu-1"}}`)
	headers := func(at time.Time, secrets ...string) http.Header {
		sig, err := webhook.Sign("wh-1", at, body, secrets...)
		if err != nil {
			t.Fatal(err)
		}
		h := http.Header{}
		h.Set(webhook.HeaderID, "wh-1")
		h.Set(webhook.HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
		h.Set(webhook.HeaderSignature, sig)
		return h
	}
	// During a rotation both secrets sign: either verifies.
	h := headers(now, newSecret, oldSecret)
	if n := len(strings.Fields(h.Get(webhook.HeaderSignature))); n != 2 {
		t.Fatalf("%d signatures during the overlap, want 2", n)
	}
	for _, s := range []string{newSecret, oldSecret} {
		if err := webhook.Verify(h, body, s, now.Add(time.Minute), 0); err != nil {
			t.Errorf("verify with either secret during the overlap: %v", err)
		}
	}
	cases := []struct {
		name   string
		h      http.Header
		body   []byte
		secret string
		want   error
	}{
		{"tampered body", headers(now, newSecret), []byte(strings.Replace(string(body), "fu-1", "fu-2", 1)), newSecret, webhook.ErrSignature},
		{"old timestamp", headers(now.Add(-6*time.Minute), newSecret), body, newSecret, webhook.ErrTimestamp},
		{"future timestamp", headers(now.Add(6*time.Minute), newSecret), body, newSecret, webhook.ErrTimestamp},
		{"wrong secret", headers(now, newSecret), body, other, webhook.ErrSignature},
		{"rotated out", headers(now, newSecret), body, oldSecret, webhook.ErrSignature},
		{"missing headers", http.Header{}, body, newSecret, webhook.ErrMissingHeaders},
	}
	for _, c := range cases {
		if err := webhook.Verify(c.h, c.body, c.secret, now, 0); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if err := webhook.Verify(headers(now, newSecret), body, newSecret, now, 0); err != nil {
		t.Errorf("a good delivery: %v", err)
	}
}
