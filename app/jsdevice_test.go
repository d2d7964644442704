package app_test

// Devices that run the real JavaScript libraries (adapters/js) under Node,
// driven one JSON command a line, and a fault proxy that loses replies.

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/patience"
	"github.com/fieldsync/fieldsync/jwtauth"
)

// jsDir is the Node project of the adapter tests.
var jsDir, _ = filepath.Abs("../adapters/js")

// needNode fails (in CI) or skips (elsewhere) when node or the pinned
// packages are missing: .ci/run installs both.
func needNode(t testing.TB) {
	t.Helper()
	_, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(jsDir, "node_modules", "@nozbe", "watermelondb"))
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("node and the packages of adapters/js are required in CI: %v", err)
		}
		t.Skipf("needs node and `npm ci` in adapters/js (as .ci/run does): %v", err)
	}
}

// jsDevice is one Node process holding one device's local database.
type jsDevice struct {
	t    testing.TB
	name string
	in   io.WriteCloser
	out  chan string
	cmd  *exec.Cmd
}

// startJSDevice runs script (relative to adapters/js) with args.
func startJSDevice(t testing.TB, name, script string, args ...string) *jsDevice {
	t.Helper()
	cmd := exec.Command("node", append([]string{filepath.Join(jsDir, script)}, args...)...)
	cmd.Dir = jsDir
	cmd.Stderr = &prefixWriter{t: t, prefix: name + ": "}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &jsDevice{t: t, name: name, in: in, out: make(chan string, 16), cmd: cmd}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 256<<20)
		for sc.Scan() {
			d.out <- sc.Text()
		}
		close(d.out)
	}()
	t.Cleanup(func() {
		in.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	return d
}

// prefixWriter sends a device's stderr to the test log.
type prefixWriter struct {
	t      testing.TB
	prefix string
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.t.Log(w.prefix + l)
	}
	return len(p), nil
}

// call sends one command and decodes the reply into out. A reply with an
// "error" is returned as an error.
func (d *jsDevice) call(cmd map[string]any, out any) error {
	d.t.Helper()
	b, _ := json.Marshal(cmd)
	if _, err := d.in.Write(append(b, '\n')); err != nil {
		d.t.Fatalf("%s: write command: %v", d.name, err)
	}
	select {
	case line, ok := <-d.out:
		if !ok {
			d.t.Fatalf("%s: the device exited", d.name)
		}
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		if out != nil {
			if err := json.Unmarshal([]byte(line), out); err != nil {
				d.t.Fatalf("%s: reply %q: %v", d.name, line, err)
			}
		}
		return nil
	case <-time.After(max(2*time.Minute, patience.Of(d.t))):
		d.t.Fatalf("%s: no reply to %s within its patience", d.name, b)
	}
	return nil
}

// must calls and fails the test on an error reply.
func (d *jsDevice) must(cmd map[string]any, out any) {
	d.t.Helper()
	if err := d.call(cmd, out); err != nil {
		d.t.Fatalf("%s: %v: %v", d.name, cmd, err)
	}
}

// faultProxy forwards to a server and can lose the replies of the next
// requests that match: the server handles them, the device sees a failure.
type faultProxy struct {
	URL  string
	lose atomic.Int32 // replies still to lose
	// match says which requests may lose their reply (nil: all).
	match func(*http.Request) bool
	lost  atomic.Int32
	// offline refuses every request and ends the open ones (SetOffline).
	offline atomic.Bool
	srv     *httptest.Server
}

// SetOffline takes the device off the network (open streams end) or back.
func (fp *faultProxy) SetOffline(off bool) {
	fp.offline.Store(off)
	if off {
		fp.srv.CloseClientConnections()
	}
}

func newFaultProxy(t testing.TB, target string) *faultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	fp := &faultProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1 // streams pass through at once
	rp.ModifyResponse = func(r *http.Response) error {
		if fp.match != nil && !fp.match(r.Request) {
			return nil
		}
		for {
			n := fp.lose.Load()
			if n <= 0 {
				return nil
			}
			if fp.lose.CompareAndSwap(n, n-1) {
				io.Copy(io.Discard, r.Body) // the server finished the request
				r.Body.Close()
				fp.lost.Add(1)
				return errors.New("reply lost")
			}
		}
	}
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		// Like a dropped connection: no status the app could trust.
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
		w.WriteHeader(http.StatusBadGateway)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fp.offline.Load() {
			rp.ErrorHandler(w, r, errors.New("offline"))
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	fp.URL, fp.srv = srv.URL, srv
	return fp
}

// Shared by the WatermelonDB and RxDB scenarios.

// newAdapterWorld is the workflow world (rep-1 with c-1 and c-2, the back
// office, products) plus rep-2 with c-3.
func newAdapterWorld(t *testing.T, store accStore) *wfWorld {
	t.Helper()
	var w *wfWorld
	if store == nil {
		w = newWFWorldOn(t, binaryWorld(t))
	} else {
		w = newWFWorld(t, store)
	}
	w.AddUser("acme", accUser{ID: "rep-2", Roles: []string{"rep"}})
	w.docs("customers", map[string]any{"c-3": map[string]any{"name": "Brandt Elektro", "assigned_reps": []string{"rep-2"}}})
	return w
}

// onBinary, given to newAdapterWorld, runs the world on the real fieldsync
// binary (a child process on a SQLite data directory) instead of in the
// test process.
var onBinary accStore

// binaryWorld is an accWorld on the real binary; tokens are minted with the
// keys the binary created in its data directory.
func binaryWorld(t *testing.T) *accWorld {
	t.Helper()
	data := t.TempDir()
	p := startBinary(t, data)
	keys, err := jwtauth.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	return &accWorld{T: t, Server: &testServer{URL: p.URL, Data: data, Keys: keys}}
}

// wantOfflineWorkLanded checks the server after the offline phase: both
// phones' edits of c-1 survived and rep-1 has exactly its two notes.
func wantOfflineWorkLanded(t *testing.T, w *wfWorld, tok string) {
	t.Helper()
	c1, _ := w.get("customers", "c-1")
	if c1["segment"] != "OEM" || c1["notes"] != "Gate code 4711" {
		t.Fatalf("c-1 after both phones' edits: %v", c1)
	}
	notes := 0
	for k := range w.Visible(tok) {
		if strings.HasPrefix(k, "customer_notes/") {
			notes++
		}
	}
	if notes != 2 {
		t.Fatalf("rep-1 has %d notes on the server, want 2 (each once)", notes)
	}
}

// wantSameAsServer fails unless a device's records ("collection/id" to
// fields) are exactly the server's view of its user's scope.
func wantSameAsServer(t *testing.T, device string, got, want map[string]map[string]any) {
	t.Helper()
	if len(want) < 5 {
		t.Fatalf("%s: the server shows its user only %d records: the comparison would prove little", device, len(want))
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if !reflect.DeepEqual(got[k], want[k]) {
			t.Errorf("%s: %s\n got  %v\n want %v", device, k, got[k], want[k])
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: holds %s, which the server does not show its user", device, k)
		}
	}
}
