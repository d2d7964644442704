package app_test

// The system tests' fixture is internal/apptest (shared with the command
// tests of cmd/fieldsync). The names below are the ones the tests used when
// they lived in cmd/fieldsync; keeping them keeps the moved tests as they were.

import (
	"io"
	"os/exec"
	"testing"

	"github.com/fieldsync/fieldsync/app"
	"github.com/fieldsync/fieldsync/client"
	"github.com/fieldsync/fieldsync/internal/apptest"
	"github.com/fieldsync/fieldsync/jwtauth"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// TestMain checks every response the API tests receive against the OpenAPI
// description (internal/apptest), and stops the shared FerretDB.
func TestMain(m *testing.M) { apptest.Main(m) }

// serveConfig is the configuration a test server starts with.
type serveConfig = app.Config

// testServer is a full fieldsync server (real SQLite file, real HTTP on a
// loopback port) running inside the test process, or the address and keys
// of the real binary's (binaryWorld).
type testServer struct {
	URL  string
	Data string
	Keys *jwtauth.Keys
	// Eng is the server's engine: the server's own (trusted) writes, for
	// fixtures no device may create.
	Eng *engine.Engine
	// Store is the server's store: the retention tests run its compaction
	// with a clock of their own.
	Store engine.Store
	in    *app.Instance // the running server, for tests that look inside
	srv   *apptest.Server
}

func wrap(s *apptest.Server) *testServer {
	return &testServer{URL: s.URL, Data: s.Data, Keys: s.Keys, Eng: s.Eng, Store: s.Store, in: s.In, srv: s}
}

// startServer starts a server on data (a fresh temp dir when ""), with cfg
// adjusted by tweak, and stops it when the test ends.
func startServer(t testing.TB, data string, tweak func(*serveConfig)) *testServer {
	t.Helper()
	return wrap(apptest.Start(t, data, tweak))
}

// startServerLog starts a server that writes JSON logs to w.
func startServerLog(t testing.TB, w io.Writer) *testServer {
	t.Helper()
	return wrap(apptest.StartLog(t, w))
}

func startServerWith(t testing.TB, data string, tweak func(*serveConfig), logw io.Writer) *testServer {
	t.Helper()
	return wrap(apptest.StartWith(t, data, tweak, logw))
}

func (ts *testServer) token(t testing.TB, org, user string, roles ...string) string {
	t.Helper()
	return apptest.Mint(t, ts.Keys, org, user, roles...)
}

func (ts *testServer) customer(t testing.TB, org, id string, reps ...string) {
	t.Helper()
	createCustomer(t, ts.URL, ts.token(t, org, "u-admin", "admin"), id, reps...)
}

func (ts *testServer) stop() { ts.srv.Stop() }

type (
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
	do             = apptest.Do
	doRaw          = apptest.DoRaw
	decodeInto     = apptest.DecodeInto
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

func adminAdd(t *testing.T, ts *testServer, org string, body map[string]any) userBody {
	t.Helper()
	return apptest.AdminAdd(t, ts.URL, ts.token(t, org, "operator", "admin"), body)
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
