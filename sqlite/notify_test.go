package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/push/pushtest"
)

func TestPushContract(t *testing.T) {
	t.Parallel()
	pushtest.Run(t, func(t *testing.T) pushtest.Harness {
		s := openT(t, filepath.Join(t.TempDir(), "push.db"), Options{Synchronous: "OFF"})
		t.Cleanup(func() { s.Close() })
		return pushtest.Harness{Store: s, AddOrg: func(t *testing.T, id string) {
			if err := s.PutOrg(context.Background(), &identity.Org{ID: id, Name: id, TimeZone: "UTC", Created: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}}
	})
}
