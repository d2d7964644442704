package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/fieldsync/fieldsync/client"
)

// The service-account commands (docs/integrations.md), clients of the admin
// API like the other admin commands (admin.go).
func init() {
	adminCommands["service-account add"] = serviceAccountAdd
	adminCommands["service-account list"] = serviceAccountList
	adminCommands["service-account rotate"] = serviceAccountRotate
	adminCommands["service-account revoke"] = serviceAccountRevoke
}

func serviceAccountsTable(w io.Writer, as []client.ServiceAccount) {
	fmt.Fprintln(w, "ID\tNAME\tROLES\tREVOKED")
	for _, a := range as {
		fmt.Fprintf(w, "%s\t%s\t%s\t%v\n", a.ID, a.Name, dash(a.Roles), a.Revoked)
	}
}

// printKey shows a new key once, on stdout (it is the command's output), and
// says so on stderr.
func printKey(c *apiClient, a client.ServiceAccount, stderr io.Writer) error {
	if err := c.print(a, func(w io.Writer) { serviceAccountsTable(w, []client.ServiceAccount{a}) }); err != nil {
		return err
	}
	if !c.json {
		fmt.Fprintf(c.stdout, "key: %s\n", a.Key)
	}
	fmt.Fprintln(stderr, "the key is shown this once: store it in the integration's secret store")
	return nil
}

func serviceAccountAdd(fs *flag.FlagSet) func(context.Context, *apiClient, []string, io.Reader, io.Writer) error {
	name := fs.String("name", "", "display name (required)")
	roles := fs.String("role", "", "roles, comma-separated (required; not admin)")
	return func(ctx context.Context, c *apiClient, pos []string, _ io.Reader, stderr io.Writer) error {
		if err := none(pos); err != nil {
			return err
		}
		if *name == "" || *roles == "" {
			return usageError("service-account add needs --name and --role")
		}
		a, err := c.AddServiceAccount(ctx, *name, list(*roles))
		if err != nil {
			return err
		}
		return printKey(c, a, stderr)
	}
}

func serviceAccountList(fs *flag.FlagSet) func(context.Context, *apiClient, []string, io.Reader, io.Writer) error {
	return func(ctx context.Context, c *apiClient, pos []string, _ io.Reader, _ io.Writer) error {
		if err := none(pos); err != nil {
			return err
		}
		as, err := c.ServiceAccounts(ctx)
		if err != nil {
			return err
		}
		out := struct {
			ServiceAccounts []client.ServiceAccount `json:"service_accounts"`
		}{as}
		return c.print(out, func(w io.Writer) { serviceAccountsTable(w, out.ServiceAccounts) })
	}
}

func serviceAccountRotate(fs *flag.FlagSet) func(context.Context, *apiClient, []string, io.Reader, io.Writer) error {
	overlap := fs.Duration("overlap", 24*time.Hour, "how long the current key keeps working (0: stops at once)")
	return func(ctx context.Context, c *apiClient, pos []string, _ io.Reader, stderr io.Writer) error {
		id, err := one(pos, "service account id")
		if err != nil {
			return err
		}
		a, err := c.RotateServiceAccount(ctx, id, *overlap)
		if err != nil {
			return err
		}
		return printKey(c, a, stderr)
	}
}

func serviceAccountRevoke(fs *flag.FlagSet) func(context.Context, *apiClient, []string, io.Reader, io.Writer) error {
	return func(ctx context.Context, c *apiClient, pos []string, _ io.Reader, _ io.Writer) error {
		id, err := one(pos, "service account id")
		if err != nil {
			return err
		}
		a, err := c.RevokeServiceAccount(ctx, id)
		if err != nil {
			return err
		}
		return c.print(a, func(w io.Writer) { serviceAccountsTable(w, []client.ServiceAccount{a}) })
	}
}
