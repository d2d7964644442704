package apptest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/patience"
)

// BuildBinary compiles cmd/fieldsync once per test binary run.
var BuildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "fieldsync-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "fieldsync")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/fieldsync/fieldsync/cmd/fieldsync").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// Proc is the real fieldsync binary running as a child process.
type Proc struct {
	Cmd  *exec.Cmd
	URL  string
	Done chan struct{} // closed once the process has exited
	logs *bytes.Buffer
	mu   *sync.Mutex
}

// StartBinary runs `fieldsync serve` on data with extra flags, waits until
// it listens, and kills it when the test ends.
func StartBinary(t testing.TB, data string, extra ...string) *Proc {
	t.Helper()
	bin, err := BuildBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0", "--data", data, "--log-format", "json"}, extra...)...)
	// Flags win over the environment: a test passing --password-* keeps them.
	cmd.Env = append(os.Environ(), HashEnv()...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Proc{Cmd: cmd, Done: make(chan struct{}), logs: &bytes.Buffer{}, mu: &sync.Mutex{}}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs.WriteString(line + "\n")
			p.mu.Unlock()
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				addr <- rec.Addr
			}
		}
		cmd.Wait()
		close(p.Done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.Done
	})
	select {
	case a := <-addr:
		p.URL = "http://" + a
	case <-p.Done:
		t.Fatalf("fieldsync exited before listening:\n%s", p.Log())
	case <-time.After(patience.Of(t)):
		t.Fatalf("fieldsync did not start listening:\n%s", p.Log())
	}
	return p
}

// Log is what the process has written to stderr so far.
func (p *Proc) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// RunBinary runs the fieldsync command with args and returns its output.
func RunBinary(t testing.TB, args ...string) string {
	t.Helper()
	bin, err := BuildBinary()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		t.Fatalf("fieldsync %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}
