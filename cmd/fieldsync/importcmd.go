package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/fieldsync/fieldsync/csvimport"
)

const importUsage = `usage: fieldsync import customers|products|users FILE.csv [--batch N]
                        [--server URL] [--token T | --data DIR --org ORG] [--json]

The first line of FILE names the columns, in any order; docs/operations.md
lists them. Empty cells leave a field as it is. Bad rows are reported with
their line and skipped; good rows are imported; running the same file again
changes nothing. Exit status: 0 every row imported, 1 some row failed (or the
server refused the import), 2 usage.
`

// importCmd runs "fieldsync import KIND FILE".
func importCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, importUsage)
		fs.PrintDefaults()
	}
	c := clientFlags(fs, stdout)
	batch := fs.Int("batch", 500, "documents per request, at most the server's --max-mutations")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		fs.Usage()
		return usageError("import needs what to import (customers, products or users) and a CSV file")
	}
	kind, file := pos[0], pos[1]
	if !slices.Contains(csvimport.Kinds, kind) {
		return usageError(fmt.Sprintf("cannot import %q: customers, products or users", kind))
	}
	if *batch < 1 {
		return usageError("--batch must be at least 1")
	}
	if err := c.authenticate(); err != nil {
		return err
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	rep, err := csvimport.Run(ctx, c.Admin, kind, f, *batch, stderr)
	if rep == nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if perr := rep.Print(stdout, c.json); perr != nil && err == nil {
		err = perr
	}
	if kind == "users" && rep.Created > 0 {
		fmt.Fprintf(stderr, "note: %d new user(s) have no password and cannot sign in until one is set "+
			"(fieldsync user update ID --password-stdin)\n", rep.Created)
	}
	if err != nil {
		return err
	}
	if rep.Failed > 0 {
		return fmt.Errorf("%d of %d rows failed", rep.Failed, rep.Rows)
	}
	return nil
}
