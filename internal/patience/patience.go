// Package patience says how long one operation of a test may take on a
// machine that other test binaries share: a request, a store command, a
// sync, a wait for a background runner. It imports only the standard
// library, so every package's tests can use it (internal/apptest, whose
// system tests use it most, imports the whole app).
package patience

import (
	"testing"
	"time"
)

// Of is how long one operation of t may take before the test calls it
// stuck: a third of what is left before the test binary's -timeout, between
// 30 s (the server's own budget of a request) and 5 minutes; 5 minutes
// without a deadline.
//
// Fixed budgets tuned on an idle machine fail on a busy one: with two
// `go test ./...` on 2 shared cores, FerretDB (MongoDB answered from an
// in-process SQLite) took over a minute for one command of a 500-mutation
// push. A budget taken from the deadline lets a slow machine be slow, while
// an operation that hangs still fails the test with its own message before
// the binary's timeout kills it.
func Of(t testing.TB) time.Duration {
	const least, most = 30 * time.Second, 5 * time.Minute
	dl, ok := t.(interface{ Deadline() (time.Time, bool) })
	if !ok {
		return most // a benchmark: no deadline to share
	}
	deadline, ok := dl.Deadline()
	if !ok {
		return most
	}
	return min(max(time.Until(deadline)/3, least), most)
}
