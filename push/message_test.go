package push

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestRender: templates are filled, unknown placeholders vanish, and a long
// value cannot make the message too big for FCM.
func TestRender(t *testing.T) {
	t.Parallel()
	title, body := render(TriggerFollowUpBlocked, map[string]string{"activity": "credit_release", "order_id": "o-7",
		"reason": "limit exceeded"})
	if title != "Follow-up blocked" || body != "credit_release for order o-7 is blocked: limit exceeded" {
		t.Fatalf("render = %q, %q", title, body)
	}
	if _, body := render(TriggerVisitAssigned, nil); body != "A visit was planned for you." {
		t.Fatalf("render without values = %q", body)
	}
	_, body = render(TriggerFollowUpBlocked, map[string]string{"activity": "a", "order_id": "o",
		"reason": strings.Repeat("ü", 5000)})
	if n := utf8.RuneCountInString(body); n != maxBody || !strings.HasSuffix(body, "…") {
		t.Fatalf("long body: %d characters", n)
	}
}
