package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/fieldsync/fieldsync/sqlite"
	"github.com/fieldsync/fieldsync/webhook"
	"github.com/fieldsync/fieldsync/webhook/webhooktest"
)

func TestWebhookStore(t *testing.T) {
	t.Parallel()
	webhooktest.Run(t, func(t *testing.T) webhook.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "fieldsync.db"), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
