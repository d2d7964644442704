package mongodb

import (
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/webhook"
	"github.com/fieldsync/fieldsync/webhook/webhooktest"
)

// TestWebhookContract runs the webhook store contract on FerretDB.
func TestWebhookContract(t *testing.T) {
	t.Parallel()
	webhooktest.Run(t, func(t *testing.T) webhook.Store {
		s := openT(t, freshDB(), Options{Timeout: time.Minute})
		t.Cleanup(func() { s.Close() })
		return s
	})
}
