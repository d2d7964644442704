package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

// envName finds the environment variable a flag's usage names, as in
// "listen address (env FIELDSYNC_ADDR)": the usage text is the one list of
// which flags have a variable, so -h and the parser cannot disagree.
var envName = regexp.MustCompile(`\benv (FIELDSYNC_[A-Z0-9_]+)`)

// parseFlags parses args, then gives every flag the command line left
// alone the value of its environment variable. A value the flag would
// refuse is a usage error naming the variable, exactly like the flag; a
// mistake on the command line is a usage error too (exit status 2).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	return applyEnv(fs)
}

// parseInterleaved parses flags that may come before, between or after the
// positional arguments, and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	if err := fs.Parse(args); err != nil {
		return nil, flagError(err)
	}
	var pos []string
	for fs.NArg() > 0 {
		pos = append(pos, fs.Arg(0))
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return nil, flagError(err)
		}
	}
	return pos, applyEnv(fs)
}

func flagError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return flag.ErrHelp
	}
	return usageError(err.Error())
}

func applyEnv(fs *flag.FlagSet) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		m := envName.FindStringSubmatch(f.Usage)
		if m == nil || set[f.Name] || err != nil {
			return
		}
		v, ok := os.LookupEnv(m[1])
		if !ok {
			return
		}
		if e := f.Value.Set(strings.TrimSpace(v)); e != nil {
			err = usageError(fmt.Sprintf("invalid value %q for %s (--%s): %v", v, m[1], f.Name, e))
		}
	})
	return err
}

// describe makes fs's -h print what the command does before its flags.
func describe(fs *flag.FlagSet, w io.Writer, text string) {
	fs.Usage = func() {
		fmt.Fprint(w, text)
		fs.PrintDefaults()
	}
}

// serveGroups orders serve's flags for -h; every flag belongs to one group
// (TestServeHelpGroupsEveryFlag).
var serveGroups = []struct {
	name  string
	flags []string
}{
	{"network and logging", []string{"addr", "shutdown-timeout", "log-format", "log-level", "cors-origins"}},
	{"storage", []string{"data", "sqlite-synchronous", "mongodb-uri", "mongodb-database", "mongodb-timeout", "retention-history", "retention-sessions", "retention-interval", "retention-wait"}},
	{"identity and sign-in", []string{"access-ttl", "session-ttl", "login-account-limit", "login-address-limit", "login-window",
		"password-memory", "password-time", "password-threads"}},
	{"push notifications", []string{"fcm-credentials", "fcm-project", "fcm-endpoint", "push-off", "push-poll", "push-batch",
		"push-lease", "push-max-attempts", "push-max-age", "push-retention"}},
	{"webhooks", []string{"webhooks-allow-loopback", "webhooks-off", "webhooks-poll", "webhooks-max-attempts", "webhooks-backoff",
		"webhooks-max-backoff", "webhooks-timeout", "webhooks-lease", "webhooks-disable-after", "webhooks-failing-for", "webhooks-max-age"}},
	{"live stream", []string{"stream-poll", "stream-heartbeat", "stream-recheck", "stream-max-per-user", "stream-max"}},
	{"limits", []string{"max-body", "max-mutations", "max-doc", "page-size", "max-page-size", "page-bytes", "rate-limit"}},
	{"workflow and visits", []string{"workflows", "escalation-interval", "clock-tolerance", "visit-radius", "visit-max-accuracy"}},
	{"attachments", []string{"attachments-dir", "attachments-s3-bucket", "attachments-s3-prefix", "attachments-s3-endpoint",
		"attachments-s3-region", "attachment-max-file", "attachment-max-per-doc", "attachment-max-doc-bytes", "attachment-max-org-bytes",
		"attachment-chunk", "attachment-types", "attachment-retention", "attachment-abandoned", "attachment-sweep-interval"}},
	{"web console", []string{"console-secure-cookie", "console-session-ttl", "console-poll", "console-tiles", "console-tile-attribution"}},
	{"demo", []string{"demo", "demo-org"}},
}

const serveUsage = `usage: fieldsync serve [flags]

Runs the sync server: the HTTP API (docs/protocol.md) on --addr, backed by
the embedded SQLite store in --data, or by MongoDB with --mongodb-uri. Every
flag can also be given as the environment variable its description names;
a flag on the command line wins. docs/operations.md explains them.
`

// serveHelp prints serve's usage with its flags in groups.
func serveHelp(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprint(w, serveUsage)
	grouped := map[string]bool{}
	for _, g := range serveGroups {
		fmt.Fprintf(w, "\n%s:\n", g.name)
		for _, name := range g.flags {
			if f := fs.Lookup(name); f != nil {
				printFlag(w, f)
				grouped[name] = true
			}
		}
	}
	header := false
	fs.VisitAll(func(f *flag.Flag) {
		if grouped[f.Name] {
			return
		}
		if !header {
			fmt.Fprint(w, "\nother:\n")
			header = true
		}
		printFlag(w, f)
	})
}

// printFlag writes one flag the way flag.PrintDefaults does.
func printFlag(w io.Writer, f *flag.Flag) {
	typ, usage := flag.UnquoteUsage(f)
	line := "  --" + f.Name
	if typ != "" {
		line += " " + typ
	}
	fmt.Fprintf(w, "%s\n    \t%s", line, strings.ReplaceAll(usage, "\n", "\n    \t"))
	if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" {
		fmt.Fprintf(w, " (default %s)", f.DefValue)
	}
	fmt.Fprintln(w)
}
