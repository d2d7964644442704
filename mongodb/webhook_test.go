package mongodb

import (
	"testing"

	"github.com/fieldsync/fieldsync/internal/patience"
	"github.com/fieldsync/fieldsync/webhook"
	"github.com/fieldsync/fieldsync/webhook/webhooktest"
)

// TestWebhookContract runs the webhook store contract on FerretDB.
func TestWebhookContract(t *testing.T) {
	t.Parallel()
	webhooktest.Run(t, func(t *testing.T) webhook.Store {
		s := openT(t, freshDB(), Options{Timeout: patience.Of(t)})
		t.Cleanup(func() { s.Close() })
		return s
	})
}
