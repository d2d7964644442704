package storemetrics

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// lister is a store with the optional ScopeRefs (the MongoDB store's).
type lister struct{ engine.Store }

func (lister) ScopeRefs(context.Context, string, string) ([]engine.DocRef, error) {
	return []engine.DocRef{{Collection: "customer_notes", ID: "n-1"}}, nil
}

// TestWrapKeepsScopeLister: the engine asks its store for ScopeRefs (a
// restamp must list a customer's history past a gap); wrapped for metrics,
// a store that offers it still does, and one that does not still does not.
func TestWrapKeepsScopeLister(t *testing.T) {
	t.Parallel()
	w := Wrap(lister{}, prometheus.NewRegistry())
	l, ok := w.(engine.ScopeLister)
	if !ok {
		t.Fatal("the wrapper hid ScopeRefs")
	}
	if refs, err := l.ScopeRefs(context.Background(), "o", "cust:c"); err != nil || len(refs) != 1 {
		t.Fatalf("ScopeRefs through the wrapper: %v, %v", refs, err)
	}
	if _, ok := Wrap(struct{ engine.Store }{}, prometheus.NewRegistry()).(engine.ScopeLister); ok {
		t.Fatal("the wrapper claims ScopeRefs for a store without it")
	}
}
