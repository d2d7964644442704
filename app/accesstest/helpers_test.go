// Package accesstest holds the access-control system tests: the
// authorization matrix (every role against every collection, endpoint and
// organisation), every cell of the write-rule table with its oracle, and
// reassignment while devices are offline, on SQLite and on MongoDB
// (FerretDB). They are a package of their own so that `go test ./...` runs
// them beside the other system tests (app, app/consoletest,
// app/convergencetest) instead of after them: each test binary has its own
// 10-minute budget, and two `go test ./...` at once on 2 cores must both
// pass (docs/operations.md, "Tests").
package accesstest

import (
	"testing"

	"github.com/fieldsync/fieldsync/client"
	"github.com/fieldsync/fieldsync/internal/apptest"
)

// TestMain checks every response the tests receive against the OpenAPI
// description, and stops the shared FerretDB.
func TestMain(m *testing.M) { apptest.Main(m) }

// The fixture's names as the tests used them in package app_test.
type (
	accStore   = apptest.Backend
	accWorld   = apptest.World
	accUser    = apptest.User
	accChange  = apptest.Change
	accOutcome = apptest.Recorded
	accDevice  = apptest.Device
	errorReply = apptest.ErrorReply
	meBody     = apptest.MeBody
	userBody   = client.User // a user as the admin API shows it
)

var (
	onSQLite         = apptest.OnSQLite
	onMongoDB        = apptest.OnMongoDB
	withoutWorkflows = apptest.WithoutWorkflows
	newAccWorld      = apptest.NewWorld
	newAccOutcomes   = apptest.NewOutcomes
	mCreate          = apptest.Create
	mUpdate          = apptest.Update
	mDelete          = apptest.Delete
	accDoc           = apptest.Doc
	accTextField     = apptest.TextField
	must             = apptest.Must
	do               = apptest.Do
	doRaw            = apptest.DoRaw
	mustJSON         = apptest.MustJSON
	push             = apptest.Push
)

const testPassword = apptest.Password

// accIDs lists the keys of a map, sorted, for messages.
func accIDs[V any](m map[string]V) []string { return apptest.SortedKeys(m) }
