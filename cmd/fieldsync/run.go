package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/debug"
	"strings"

	"github.com/fieldsync/fieldsync/client"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `usage: fieldsync <command> [flags]

commands:
  serve     run the sync server (SQLite in --data unless --mongodb-uri is given)
  org       show or set the organisation: name, time zone, back-office roles
  user      add, list, update, disable, enable users; list their sessions
  team      add, list, rename teams
  device    revoke a user's device
  service-account  add, list, rotate, revoke the API keys of integrations (docs/integrations.md)
  assign    assign a customer to reps (its history moves with it)
  import    import customers, products or users from a CSV file
  demo      load a demo organisation (every role, a month of activity) to try fieldsync
  token     print a signed access token for a user (for operators and tests)
  backup    copy the embedded store and its keys while the server runs
  restore   put a backup back into a data directory (server stopped)
  health    exit 0 when the server at --url answers 200 (the container health check)
  version   print the version

Run "fieldsync <command> -h" for the flags of a command.
`

// run is the whole program; main only hands it the process's arguments and
// streams, so tests can run any command in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runWith(ctx, args, os.Stdin, stdout, stderr)
}

// runWith is run reading standard input from stdin (passwords), for tests.
func runWith(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stdout, stderr)
	case "token":
		err = token(ctx, args[1:], stdout, stderr)
	case "health":
		err = health(args[1:], stderr)
	case "org", "user", "team", "device", "service-account":
		err = adminCLI(ctx, args, stdin, stdout, stderr)
	case "assign":
		err = assignCmd(ctx, args[1:], stdout, stderr)
	case "import":
		err = importCmd(ctx, args[1:], stdout, stderr)
	case "demo":
		err = demoCmd(ctx, args[1:], stdout, stderr)
	case "backup":
		err = backupCmd(ctx, args[1:], stdout, stderr)
	case "restore":
		err = restoreCmd(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "fieldsync", versionString())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "fieldsync: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err == flag.ErrHelp {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "fieldsync:", message(err))
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

// message is how a command's error reads on stderr: a refusal of the
// server shows its code, message and field as the API documents them,
// wherever it is wrapped.
func message(err error) string {
	var re *client.RequestError
	if !errors.As(err, &re) {
		return err.Error()
	}
	s := re.Body.Code + ": " + re.Body.Message
	if re.Body.Code == "" {
		s = fmt.Sprintf("the server answered %d %s", re.Status, http.StatusText(re.Status))
	}
	if re.Body.Pointer != "" {
		s += " (at " + re.Body.Pointer + ")"
	}
	return strings.Replace(err.Error(), re.Error(), s, 1)
}

// usageError is a mistake in the command line.
type usageError string

func (e usageError) Error() string { return string(e) }

func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
	}
	return v + " protocol 1"
}

// env returns the FIELDSYNC_<NAME> environment variable or def: flags
// override the environment, which overrides the defaults.
func env(name, def string) string {
	if v, ok := os.LookupEnv("FIELDSYNC_" + name); ok {
		return v
	}
	return def
}
