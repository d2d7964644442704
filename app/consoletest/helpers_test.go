// Package consoletest holds the web console's system tests: the console
// served by a real server, driven by a real headless Chromium. They are a
// package of their own so that `go test ./...` runs them beside the other
// system tests (app, app/convergencetest) instead of after them: each test
// binary has its own 10-minute budget, and two `go test ./...` at once on
// 2 cores must both pass (docs/operations.md, "Tests").
package consoletest

import (
	"testing"

	"github.com/fieldsync/fieldsync/app"
	"github.com/fieldsync/fieldsync/client"
	"github.com/fieldsync/fieldsync/internal/apptest"
)

// TestMain checks every response the tests receive against the OpenAPI
// description, and stops the shared browser.
func TestMain(m *testing.M) {
	apptest.Main(m,
		stopBrowser,       // console_browser_test.go
		removeConsoleDemo, // console_browser_test.go
	)
}

// The fixture's names as the tests used them in package app_test.
type (
	serveConfig = app.Config
	testServer  = apptest.Server
	pushReply   = apptest.PushReply
	pullReply   = apptest.PullReply
	errorReply  = apptest.ErrorReply
	whReply     = apptest.WebhookReply
	saReply     = client.ServiceAccount
)

var (
	do        = apptest.Do
	doRaw     = apptest.DoRaw
	mustJSON  = apptest.MustJSON
	push      = apptest.Push
	pullAll   = apptest.PullAll
	waitFor   = apptest.WaitFor
	uploadVia = apptest.Upload
	quiet     = apptest.Quiet
	benchPush = apptest.BenchPush
)

func login(t *testing.T, ts *testServer, email, password, device string) (int, apptest.GrantBody, errorReply) {
	t.Helper()
	return apptest.Login(t, ts.URL, email, password, device)
}
