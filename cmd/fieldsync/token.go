package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/jwtauth"
)

// token prints an access token signed with the data directory's key.
func token(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", env("DATA", "./data"), "data directory holding the signing key (env FIELDSYNC_DATA)")
	org := fs.String("org", "", "organisation id (required)")
	user := fs.String("user", "", "user id (required)")
	role := fs.String("role", "rep", "role, or several separated by commas")
	ttl := fs.Duration("ttl", 24*time.Hour, "lifetime of the token")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *org == "" || *user == "" {
		return usageError("token needs --org and --user")
	}
	keys, err := jwtauth.LoadOrCreate(*data)
	if err != nil {
		return err
	}
	var roles []string
	for _, r := range strings.Split(*role, ",") {
		if r = strings.TrimSpace(r); r != "" {
			roles = append(roles, r)
		}
	}
	tok, err := keys.Mint(*org, *user, roles, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
