package main

import (
	"bytes"
	"fmt"
	"github.com/fieldsync/fieldsync/internal/apptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// tourStep is one group of commands of the README's tour and the output the
// README prints below it ("" when it prints none: the step must be silent).
type tourStep struct {
	commands []string
	want     []string
}

// readTour returns the steps of the shell block after the README's tour
// marker. In a paragraph, comment lines before the first command explain;
// comment lines right below commands are those commands' output.
func readTour(t *testing.T) []tourStep {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "<!-- tour:")
	if i < 0 {
		t.Fatal("README.md has no tour marker")
	}
	s = s[i:]
	start := strings.Index(s, "```sh\n")
	end := strings.Index(s[start+6:], "```")
	if start < 0 || end < 0 {
		t.Fatal("no shell block after the tour marker")
	}
	var steps []tourStep
	var cur *tourStep
	for _, line := range strings.Split(s[start+6:start+6+end], "\n") {
		switch {
		case strings.TrimSpace(line) == "":
			cur = nil
		case strings.HasPrefix(line, "#"):
			if cur != nil {
				cur.want = append(cur.want, strings.TrimPrefix(strings.TrimPrefix(line, "#"), " "))
			}
		default:
			if cur == nil || len(cur.want) > 0 {
				steps = append(steps, tourStep{})
				cur = &steps[len(steps)-1]
			}
			cur.commands = append(cur.commands, line)
		}
	}
	return steps
}

// pattern turns printed output into a regexp: continuation lines (indented
// in the README to fit its width) join the line above, "..." is anything.
func pattern(want []string) *regexp.Regexp {
	var joined []string
	for _, l := range want {
		if strings.HasPrefix(l, " ") && len(joined) > 0 {
			joined[len(joined)-1] += strings.TrimSpace(l)
			continue
		}
		joined = append(joined, strings.TrimRight(l, " "))
	}
	parts := strings.Split(strings.Join(joined, "\n"), "...")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(`^(?s:` + strings.Join(parts, ".*?") + `)$`)
}

// TestReadmeTour runs the README's own-organisation tour, as printed, with
// bash against the real binary serving a fresh data directory, and checks
// each command's output against the output the README shows.
func TestReadmeTour(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("the tour needs curl, which this machine lacks")
	}
	steps := readTour(t)
	if len(steps) < 5 {
		t.Fatalf("the tour has %d steps", len(steps))
	}
	bin, err := apptest.BuildBinary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := apptest.StartBinary(t, filepath.Join(dir, "data"))
	hostPort := strings.TrimPrefix(p.URL, "http://")
	var script strings.Builder
	script.WriteString("set -eo pipefail\n")
	for i, st := range steps {
		fmt.Fprintf(&script, "echo '@@step %d'\n", i)
		for _, c := range st.commands {
			script.WriteString(strings.ReplaceAll(c, "localhost:8080", hostPort) + "\n")
		}
	}
	script.WriteString("echo '@@end'\n")
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"), "FIELDSYNC_SERVER="+p.URL)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	out := stdout.String()
	if err != nil || !strings.HasSuffix(out, "@@end\n") {
		t.Fatalf("the tour failed: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	for i, st := range steps {
		from := strings.Index(out, fmt.Sprintf("@@step %d\n", i))
		rest := out[from+len(fmt.Sprintf("@@step %d\n", i)):]
		got := strings.TrimRight(rest[:strings.Index(rest, "@@")], "\n")
		var lines []string
		for _, l := range strings.Split(got, "\n") {
			lines = append(lines, strings.TrimRight(l, " "))
		}
		got = strings.Join(lines, "\n")
		if len(st.want) == 0 {
			if got != "" {
				t.Errorf("step %q printed %q; the README shows no output", st.commands[0], got)
			}
			continue
		}
		if re := pattern(st.want); !re.MatchString(got) {
			t.Errorf("step %q printed\n%s\nthe README shows\n%s", st.commands[0], got, strings.Join(st.want, "\n"))
		}
	}
}
