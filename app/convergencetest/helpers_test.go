// Package convergencetest holds the proof of the sync guarantees under
// faults (convergence_test.go) on both stores. It is a package of its own so
// that `go test ./...` runs it beside the other system tests (app,
// app/consoletest): each test binary has its own 10-minute budget, and two
// `go test ./...` at once on 2 cores must both pass (docs/operations.md,
// "Tests").
package convergencetest

import (
	"testing"

	"github.com/fieldsync/fieldsync/app"
	"github.com/fieldsync/fieldsync/internal/apptest"
)

// TestMain checks every response the tests receive against the OpenAPI
// description, and stops the shared FerretDB.
func TestMain(m *testing.M) { apptest.Main(m) }

// The fixture's names as the tests used them in package app_test.
type (
	serveConfig = app.Config
	testServer  = apptest.Server
	pullReply   = apptest.PullReply
)

var (
	startServer        = apptest.Start
	do                 = apptest.Do
	ensureReps         = apptest.EnsureReps
	sharedFerret       = apptest.Ferret
	freshMongoDatabase = apptest.FreshMongoDatabase
)
