package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/client"
	"github.com/fieldsync/fieldsync/jwtauth"
	"github.com/fieldsync/fieldsync/sqlite"
	"github.com/fieldsync/fieldsync/sync/engine"
)

const tokenUsage = `usage: fieldsync token --org ORG --user ID [--role r[,r]] [--ttl 24h] [--data DIR]
                       [--server URL] [--any-user]

Prints an access token for a user, signed with the key in the data directory:
for operators and scripts (people sign in with POST /v1/auth/login). The user
must exist in the organisation, be enabled and hold every role asked for. The
embedded store of --data is read when no server holds it; while one runs, the
server at --server is asked. --any-user skips the check and mints a token for
an organisation or user the store does not know (a load test), on purpose.
`

// token prints an access token signed with the data directory's key.
func token(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	describe(fs, stderr, tokenUsage)
	data := fs.String("data", "./data", "data directory holding the signing key (env FIELDSYNC_DATA)")
	org := fs.String("org", "", "organisation id (required)")
	user := fs.String("user", "", "user id (required)")
	role := fs.String("role", "rep", "role, or several separated by commas")
	ttl := fs.Duration("ttl", 24*time.Hour, "lifetime of the token")
	server := fs.String("server", "http://127.0.0.1:8080", "the server to ask while one holds the data directory (env FIELDSYNC_SERVER)")
	anyUser := fs.Bool("any-user", false, "mint without checking that the organisation and user exist")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *org == "" || *user == "" {
		return usageError("token needs --org and --user")
	}
	var roles []string
	for _, r := range strings.Split(*role, ",") {
		if r = strings.TrimSpace(r); r != "" {
			roles = append(roles, r)
		}
	}
	if !*anyUser {
		if err := checkTokenUser(ctx, *data, *server, *org, *user, roles); err != nil {
			return err
		}
	}
	keys, err := jwtauth.LoadOrCreate(*data)
	if err != nil {
		return err
	}
	tok, err := keys.Mint(*org, *user, roles, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

// tokenUser is what the check needs of a user, from the store or the
// admin API.
type tokenUser struct {
	Roles    []string
	Disabled bool
}

// checkTokenUser refuses a token for a user that does not exist, is
// disabled or lacks a role asked for: a typo in --org or --user would
// otherwise mint a token every request of which answers "not found".
func checkTokenUser(ctx context.Context, data, server, org, id string, roles []string) error {
	u, err := storeUser(ctx, data, org, id)
	if engine.ErrorKind(err) == engine.KindUnavailable {
		// A server holds the data directory, or the data directory holds
		// only keys (the server runs on MongoDB): ask the server.
		u, err = serverUser(ctx, data, server, org, id)
	}
	if engine.ErrorKind(err) == engine.KindNotFound {
		return fmt.Errorf("organisation %q has no user %q: add it with `fieldsync user add`, or pass --any-user to mint anyway", org, id)
	}
	if err != nil {
		return err
	}
	if u.Disabled {
		return fmt.Errorf("user %q of %q is disabled", id, org)
	}
	for _, r := range roles {
		if !slices.Contains(u.Roles, r) {
			return fmt.Errorf("user %q of %q does not hold role %q (it holds %s): change it with `fieldsync user update`, or pass --any-user",
				id, org, r, strings.Join(u.Roles, ", "))
		}
	}
	return nil
}

func storeUser(ctx context.Context, data, org, id string) (*tokenUser, error) {
	path := filepath.Join(data, "fieldsync.db")
	if _, err := os.Stat(path); err != nil {
		return nil, engine.Errorf(engine.KindUnavailable, engine.CodeUnavailable, "", "no embedded store in %s", data)
	}
	st, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	u, err := st.User(ctx, org, id)
	if err != nil {
		return nil, err
	}
	return &tokenUser{Roles: u.Roles, Disabled: u.Disabled}, nil
}

func serverUser(ctx context.Context, data, server, org, id string) (*tokenUser, error) {
	c := &apiClient{server: server, data: data, org: org, stdout: io.Discard}
	if err := c.authenticate(); err != nil {
		return nil, err
	}
	u, err := c.User(ctx, id)
	var re *client.RequestError
	if errors.As(err, &re) && re.Status == 404 {
		return nil, engine.Errorf(engine.KindNotFound, engine.CodeNotFound, "", "no such user")
	}
	if err != nil {
		return nil, fmt.Errorf("the data directory is in use and the server at --server %s could not say whether the user exists: %w", server, err)
	}
	return &tokenUser{Roles: u.Roles, Disabled: u.Disabled}, nil
}
