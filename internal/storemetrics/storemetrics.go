// Package storemetrics times the sync engine's calls to its store, for the
// operator: fieldsync_store_call_duration_seconds{call} and
// fieldsync_store_call_errors_total{call}. A slow or failing store shows
// there before it shows as slow or failing requests.
package storemetrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// Wrap returns s with every call timed into reg.
func Wrap(s engine.Store, reg prometheus.Registerer) engine.Store {
	m := &store{Store: s,
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "fieldsync_store_call_duration_seconds", Help: "The sync engine's store calls by call (push, pull, get).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"call"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldsync_store_call_errors_total", Help: "The sync engine's store calls that failed, by call.",
		}, []string{"call"}),
	}
	reg.MustRegister(m.latency, m.errors)
	// The engine asks its store for optional capabilities; the wrapper
	// keeps the ones it knows of.
	if l, ok := s.(engine.ScopeLister); ok {
		return &listerStore{store: m, lister: l}
	}
	return m
}

// listerStore is the wrapper of a store that lists scopes.
type listerStore struct {
	*store
	lister engine.ScopeLister
}

func (m *listerStore) ScopeRefs(ctx context.Context, org, scope string) (_ []engine.DocRef, err error) {
	defer func(start time.Time) { m.observe("scope_refs", start, err) }(time.Now())
	return m.lister.ScopeRefs(ctx, org, scope)
}

type store struct {
	engine.Store
	latency *prometheus.HistogramVec
	errors  *prometheus.CounterVec
}

func (m *store) observe(call string, start time.Time, err error) {
	m.latency.WithLabelValues(call).Observe(time.Since(start).Seconds())
	// A refusal the store decided (a conflict, a missing document) is an
	// answer, not a failure of the store.
	if k := engine.ErrorKind(err); err != nil && (k == engine.KindInternal || k == engine.KindUnavailable) {
		m.errors.WithLabelValues(call).Inc()
	}
}

func (m *store) Push(ctx context.Context, b engine.PushBatch, decide engine.Decide) (_ []engine.Outcome, err error) {
	defer func(start time.Time) { m.observe("push", start, err) }(time.Now())
	return m.Store.Push(ctx, b, decide)
}

func (m *store) Pull(ctx context.Context, q engine.PullQuery) (_ engine.PullPage, err error) {
	defer func(start time.Time) { m.observe("pull", start, err) }(time.Now())
	return m.Store.Pull(ctx, q)
}

func (m *store) Get(ctx context.Context, org string, refs []engine.DocRef) (_ map[engine.DocRef]*engine.Document, err error) {
	defer func(start time.Time) { m.observe("get", start, err) }(time.Now())
	return m.Store.Get(ctx, org, refs)
}
