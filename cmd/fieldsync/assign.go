package main

import (
	"context"
	"flag"
	"fmt"
	"io"
)

const assignUsage = `usage: fieldsync assign --customer ID --reps u-1,u-2 [--server URL] [--token T | --data DIR --org ORG] [--json]

Sets the reps a customer is assigned to (--reps "" unassigns everyone). The
customer's history (visit plans and logs, notes, orders, follow-ups) moves
with it: the new reps' next pull brings it, the old reps' next pull removes
it. Every rep must be an enabled user of the organisation holding the role
rep. Repeating an assignment changes nothing.
`

// assignCmd runs "fieldsync assign".
func assignCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("assign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, assignUsage)
		fs.PrintDefaults()
	}
	c := clientFlags(fs, stdout)
	customer := fs.String("customer", "", "customer id (required)")
	reps := fs.String("reps", "", "user ids of the reps, comma-separated (required; \"\" unassigns everyone)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if err := none(pos); err != nil {
		return err
	}
	if *customer == "" || !setFlags(fs)["reps"] {
		return usageError("assign needs --customer and --reps")
	}
	if err := c.authenticate(); err != nil {
		return err
	}
	out, err := c.Assign(ctx, *customer, list(*reps))
	if err != nil {
		return err
	}
	return c.print(out, func(w io.Writer) {
		state := "assigned"
		if !out.Changed {
			state = "unchanged"
		}
		fmt.Fprintf(w, "CUSTOMER\tREPS\tVERSION\n%s\t%s\t%d (%s)\n", out.ID, dash(out.Reps), out.Version, state)
	})
}

// clientFlags declares the flags every admin API client takes: where the
// server is and how to authenticate.
func clientFlags(fs *flag.FlagSet, stdout io.Writer) *apiClient {
	c := &apiClient{stdout: stdout}
	fs.StringVar(&c.server, "server", "http://127.0.0.1:8080", "the fieldsync server (env FIELDSYNC_SERVER)")
	fs.StringVar(&c.token, "token", "", "an admin access token (default: env FIELDSYNC_TOKEN)")
	fs.StringVar(&c.data, "data", "", "mint a 5-minute admin token with the signing key in this data directory")
	fs.StringVar(&c.org, "org", "", "the organisation of the token --data mints")
	fs.BoolVar(&c.json, "json", false, "print JSON for scripts")
	return c
}
