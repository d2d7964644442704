package app_test

// The system tests' fixture is internal/apptest, shared with the other
// system test packages (app/accesstest, app/consoletest,
// app/convergencetest) and the command tests of cmd/fieldsync. The names
// below are the ones the tests used when they lived in cmd/fieldsync;
// keeping them keeps the moved tests as they were.

import (
	"os/exec"
	"testing"

	"github.com/fieldsync/fieldsync/app"
	"github.com/fieldsync/fieldsync/client"
	"github.com/fieldsync/fieldsync/internal/apptest"
)

// TestMain checks every response the API tests receive against the OpenAPI
// description (internal/apptest), and stops the shared FerretDB.
func TestMain(m *testing.M) { apptest.Main(m) }

// serveConfig is the configuration a test server starts with.
type serveConfig = app.Config

// testServer is a full fieldsync server (real SQLite file, real HTTP on a
// loopback port) running inside the test process, or the address and keys
// of the real binary's (binaryWorld).
type testServer = apptest.Server

type (
	// The world of a scenario: its store, users, pushes and devices.
	accStore  = apptest.Backend
	accWorld  = apptest.World
	accUser   = apptest.User
	accChange = apptest.Change

	pushReply  = apptest.PushReply
	pullReply  = apptest.PullReply
	errorReply = apptest.ErrorReply
	syncBuffer = apptest.SyncBuffer
	grantBody  = apptest.GrantBody
	meBody     = apptest.MeBody
	// userBody is a user as the admin API shows it.
	userBody = client.User
)

var (
	startServer      = apptest.Start
	startServerLog   = apptest.StartLog
	startServerWith  = apptest.StartWith
	onSQLite         = apptest.OnSQLite
	onMongoDB        = apptest.OnMongoDB
	withoutWorkflows = apptest.WithoutWorkflows
	newAccWorld      = apptest.NewWorld
	newAccOutcomes   = apptest.NewOutcomes
	mCreate          = apptest.Create
	mUpdate          = apptest.Update
	mDelete          = apptest.Delete
	accDoc           = apptest.Doc
	must             = apptest.Must

	do             = apptest.Do
	doRaw          = apptest.DoRaw
	mustJSON       = apptest.MustJSON
	pullAll        = apptest.PullAll
	createCustomer = apptest.CreateCustomer
	ensureReps     = apptest.EnsureReps
	note           = apptest.Note
	push           = apptest.Push
	fastSignIn     = apptest.FastSignIn
	runBinary      = apptest.RunBinary
	waitFor        = apptest.WaitFor
	uploadVia      = apptest.Upload
	sha            = apptest.SHA256
	quiet          = apptest.Quiet
	benchPush      = apptest.BenchPush
	tryPush        = apptest.TryPush
	// The shared FerretDB of this test binary, and a database per test.
	sharedFerret       = apptest.Ferret
	freshMongoDatabase = apptest.FreshMongoDatabase
)

const testPassword = apptest.Password

// accIDs lists the keys of a map, sorted, for messages.
func accIDs[V any](m map[string]V) []string { return apptest.SortedKeys(m) }

func adminAdd(t *testing.T, ts *testServer, org string, body map[string]any) userBody {
	t.Helper()
	return apptest.AdminAdd(t, ts.URL, ts.Token(t, org, "operator", "admin"), body)
}

func login(t *testing.T, ts *testServer, email, password, device string) (int, grantBody, errorReply) {
	t.Helper()
	return apptest.Login(t, ts.URL, email, password, device)
}

func refresh(t *testing.T, ts *testServer, tok string) (int, grantBody, errorReply) {
	t.Helper()
	return apptest.Refresh(t, ts.URL, tok)
}

// proc is the real fieldsync binary running as a child process.
type proc struct {
	*apptest.Proc
	cmd  *exec.Cmd
	done chan struct{}
}

func startBinary(t testing.TB, data string, extra ...string) *proc {
	t.Helper()
	p := apptest.StartBinary(t, data, extra...)
	return &proc{Proc: p, cmd: p.Cmd, done: p.Done}
}

func (p *proc) log() string { return p.Log() }
