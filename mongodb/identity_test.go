package mongodb

import (
	"testing"

	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/identity/identitytest"
)

func TestIdentity(t *testing.T) {
	identitytest.Run(t, func(t *testing.T) identity.Store {
		s := openT(t, freshDB(), Options{})
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	})
}
