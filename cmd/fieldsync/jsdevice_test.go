package main

// Devices that run the real JavaScript libraries (adapters/js) under Node,
// driven one JSON command a line, and a fault proxy that loses replies.

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// jsDir is the Node project of the adapter tests.
var jsDir, _ = filepath.Abs("../../adapters/js")

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
	case <-time.After(2 * time.Minute):
		d.t.Fatalf("%s: no reply to %s within 2 minutes", d.name, b)
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
