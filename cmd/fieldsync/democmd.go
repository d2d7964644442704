package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/fieldsync/fieldsync/app"
	"github.com/fieldsync/fieldsync/demo"
)

const demoUsage = `usage: fieldsync demo [--data DIR] [--org demo] [--seed N] [--days 30] [--customers 300]

Loads a demo organisation into the embedded store in DIR (stop the server
first: SQLite is locked while it runs; or use "fieldsync serve --demo"):
an admin, two managers leading a team each, eight reps, one user per
back-office and accountable role of the default matrix, customers around
Stuttgart and Munich, motors,
switchgear, cables and pumps with price lists, and the last --days days of
visit plans, visit logs, notes, orders and follow-ups, written through the
sync engine and the workflow as the phones and the back office would.
Every demo user's password is "` + demo.Password + `" (demo only).
Running it again changes nothing and says so. docs/operations.md has more.
`

// demoCmd runs "fieldsync demo".
func demoCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, demoUsage)
		fs.PrintDefaults()
	}
	var o demo.Options
	fs.StringVar(&o.Data, "data", "./data", "data directory: SQLite database and signing keys (env FIELDSYNC_DATA)")
	registerDemoFlags(fs, &o, "")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError(fmt.Sprintf("demo takes no arguments, got %q", fs.Args()))
	}
	if err := o.Check(); err != nil {
		return usageError(err.Error())
	}
	res, err := demo.Load(ctx, o, stderr, false)
	if err != nil {
		return err
	}
	res.Print(stdout, app.LocalURL(env("ADDR", "127.0.0.1:8080")), "fieldsync serve --data "+o.Data)
	return nil
}

// registerDemoFlags declares the demo's shape flags (prefix "demo-" for
// serve).
func registerDemoFlags(fs *flag.FlagSet, o *demo.Options, prefix string) {
	fs.StringVar(&o.Org, prefix+"org", "demo", "organisation id of the demo")
	fs.Func(prefix+"seed", "random seed: the same seed gives the same demo (default 1)", func(s string) error {
		n, err := strconv.ParseUint(s, 10, 64)
		o.Seed = n
		return err
	})
	o.Seed = 1
	fs.IntVar(&o.Days, prefix+"days", 30, "days of visits, orders and follow-ups before today, 1 to 92")
	fs.IntVar(&o.Customers, prefix+"customers", 300, "customers, 8 to 5000")
}

// demoServeFlags are serve's --demo and --demo-org.
type demoServeFlags struct {
	on  bool
	org string
}

func (d *demoServeFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&d.on, "demo", false,
		"first load the demo organisation into the embedded store, unless it is there already (fieldsync demo; env FIELDSYNC_DEMO)")
	fs.StringVar(&d.org, "demo-org", "demo", "organisation id of --demo (env FIELDSYNC_DEMO_ORG)")
}

// load runs before serve opens the store (SQLite admits one process, and
// the demo closes its own store when done). A demo organisation that
// exists is kept as it is, whatever flags made it.
func (d demoServeFlags) load(ctx context.Context, c serveConfig, stdout, stderr io.Writer) error {
	if !d.on {
		return nil
	}
	if c.MongoURI != "" {
		return usageError("--demo loads the embedded store; it cannot be used with --mongodb-uri")
	}
	o := demo.Options{Data: c.Data, Org: d.org, Seed: 1, Days: 30, Customers: 300}
	if err := o.Check(); err != nil {
		return usageError(strings.Replace(err.Error(), "--org", "--demo-org", 1))
	}
	res, err := demo.Load(ctx, o, stderr, true)
	if err != nil {
		return err
	}
	res.Print(stdout, app.LocalURL(c.Addr), "")
	return nil
}
