// Package csvimport imports customers, products and users from CSV files
// through the admin API (client.Admin): the columns of each kind
// (docs/operations.md), cells to JSON values, rows to document writes or
// user changes, and a report of every bad row with its line. It knows no
// flags; cmd/fieldsync's import command reads them.
package csvimport

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/client"
	"github.com/fieldsync/fieldsync/money"
)

// Kinds are what an import can hold: customers, products or users.
var Kinds = []string{"customers", "products", "users"}

// Run imports the CSV file in r as kind through the admin API, documents in
// batches of batch, and shows progress on progress. A header that names
// unknown columns fails the whole file before anything is imported (nil
// report); a bad row is reported with its line and skipped; a refusal of
// the whole request ends the import with the report so far and the error.
// Running the same file again changes nothing.
func Run(ctx context.Context, admin *client.Admin, kind string, r io.Reader, batch int, progress io.Writer) (*Report, error) {
	cols, ok := importColumns[kind]
	if !ok {
		return nil, fmt.Errorf("cannot import %q: customers, products or users", kind)
	}
	rep := &Report{}
	rows, err := readCSV(r, kind, cols, rep)
	if err != nil {
		return nil, err
	}
	prog := newProgress(progress, kind, rep.Rows)
	prog.add(rep.Failed)
	if kind == "users" {
		err = importUsers(ctx, admin, rows, rep, prog)
	} else {
		err = importDocuments(ctx, admin, kind, cols, rows, batch, rep, prog)
	}
	prog.finish()
	return rep, err
}

// cellKind says how a CSV cell becomes a JSON value.
type cellKind int

const (
	cellText   cellKind = iota
	cellNumber          // a decimal number
	cellAmount          // money: a decimal string, kept exact (docs/protocol.md, "Money")
	cellBool            // true/false, yes/no, 1/0
	cellList            // ;-separated
)

// column is one CSV column an import understands and where its value goes:
// path is the field in the document (or the user), nested for objects.
type column struct {
	name string
	path []string
	kind cellKind
}

func col(name string, kind cellKind, path ...string) column {
	if len(path) == 0 {
		path = []string{name}
	}
	return column{name: name, path: path, kind: kind}
}

// importColumns are the columns of each import; docs/operations.md
// documents them. "id" is required in every file.
var importColumns = map[string][]column{
	"customers": {
		col("id", cellText), col("name", cellText), col("code", cellText), col("segment", cellText), col("notes", cellText),
		col("address_line1", cellText, "address", "line1"), col("address_line2", cellText, "address", "line2"),
		col("city", cellText, "address", "city"), col("region", cellText, "address", "region"),
		col("postcode", cellText, "address", "postcode"), col("country", cellText, "address", "country"),
		col("lat", cellNumber, "location", "lat"), col("lon", cellNumber, "location", "lng"),
		col("assigned_reps", cellList),
	},
	"products": {
		col("id", cellText), col("sku", cellText), col("name", cellText), col("category", cellText), col("unit", cellText),
		col("list_price", cellAmount), col("currency", cellText), col("active", cellBool),
	},
	"users": {
		col("id", cellText), col("email", cellText), col("name", cellText), col("roles", cellList), col("teams", cellList),
		col("leads", cellList),
	},
}

// csvRow is a data row: its line in the file and its non-empty cells.
type csvRow struct {
	line  int
	cells map[string]string
}

// readCSV reads the header and the data rows. Rows that cannot be parsed are
// reported and left out; a header that names unknown columns fails the
// whole file, before anything is imported.
func readCSV(r io.Reader, kind string, cols []column, rep *Report) ([]csvRow, error) {
	cr := csv.NewReader(bufio.NewReader(r))
	cr.FieldsPerRecord = -1 // counted here, to say which count is wrong
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("the file is empty: its first line names the columns")
	}
	if err != nil {
		return nil, err
	}
	names := make([]string, len(header))
	for i, h := range header {
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff") // spreadsheets' byte order mark
		}
		names[i] = strings.ToLower(strings.TrimSpace(h))
		if !slices.ContainsFunc(cols, func(c column) bool { return c.name == names[i] }) {
			return nil, fmt.Errorf("line 1: unknown column %q; %s take %s", names[i], kind, columnNames(cols))
		}
		if slices.Contains(names[:i], names[i]) {
			return nil, fmt.Errorf("line 1: column %q appears twice", names[i])
		}
	}
	if !slices.Contains(names, "id") {
		return nil, fmt.Errorf("line 1: the header has no id column; %s take %s", kind, columnNames(cols))
	}
	var rows []csvRow
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			rep.Rows++
			rep.fail(RowError{Line: pe.StartLine, Field: "row", Code: "malformed_csv", Message: pe.Err.Error()})
			continue
		}
		if err != nil {
			return nil, err
		}
		line, _ := cr.FieldPos(0)
		cells := map[string]string{}
		for i, v := range rec {
			if v = strings.TrimSpace(v); v != "" && i < len(names) {
				cells[names[i]] = v
			}
		}
		if len(cells) == 0 && len(rec) <= len(names) {
			continue // a row of empty cells, as spreadsheets leave at the end
		}
		rep.Rows++
		if len(rec) != len(names) {
			rep.fail(RowError{Line: line, Field: "row", Code: "column_count",
				Message: fmt.Sprintf("%d columns, the header has %d", len(rec), len(names))})
			continue
		}
		if cells["id"] == "" {
			rep.fail(RowError{Line: line, Field: "id", Code: "missing_value", Message: "every row needs an id"})
			continue
		}
		rows = append(rows, csvRow{line: line, cells: cells})
	}
}

func columnNames(cols []column) string {
	var names []string
	for _, c := range cols {
		names = append(names, c.name)
	}
	return strings.Join(names, ", ")
}

// value converts a cell; the error names the column.
func (c column) value(cell string) (any, *RowError) {
	switch c.kind {
	case cellNumber:
		f, err := strconv.ParseFloat(cell, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, &RowError{Field: c.name, Code: "invalid_number", Message: fmt.Sprintf("%q is not a number", cell)}
		}
		return f, nil
	case cellAmount:
		if _, err := money.Parse(cell); err != nil {
			return nil, &RowError{Field: c.name, Code: "invalid_amount", Message: err.Error()}
		}
		return cell, nil
	case cellBool:
		switch strings.ToLower(cell) {
		case "true", "yes", "y", "1":
			return true, nil
		case "false", "no", "n", "0":
			return false, nil
		}
		return nil, &RowError{Field: c.name, Code: "invalid_boolean", Message: fmt.Sprintf("%q is not true or false", cell)}
	case cellList:
		return splitList(cell, ";"), nil
	}
	return cell, nil
}

// splitList splits a sep-separated cell, dropping blanks.
func splitList(s, sep string) []string {
	out := []string{}
	for _, x := range strings.Split(s, sep) {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// document turns a row into the fields of a document write.
func document(cols []column, row csvRow) (map[string]any, *RowError) {
	fields := map[string]any{}
	for _, c := range cols {
		cell, ok := row.cells[c.name]
		if !ok || c.name == "id" {
			continue
		}
		v, rerr := c.value(cell)
		if rerr != nil {
			return nil, rerr
		}
		m := fields
		for _, k := range c.path[:len(c.path)-1] {
			sub, ok := m[k].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[k] = sub
			}
			m = sub
		}
		m[c.path[len(c.path)-1]] = v
	}
	if loc, ok := fields["location"].(map[string]any); ok && len(loc) == 1 {
		missing := "lat"
		if _, ok := loc["lat"]; ok {
			missing = "lon"
		}
		return nil, &RowError{Field: missing, Code: "missing_value", Message: "lat and lon go together"}
	}
	return fields, nil
}

// fieldOf names the column a JSON pointer of a server error points into
// ("row" when it names none).
func fieldOf(cols []column, ptr string) string {
	if ptr == "" {
		return "row"
	}
	parts := strings.Split(strings.TrimPrefix(ptr, "/"), "/")
	for _, c := range cols {
		if len(parts) >= len(c.path) && slices.Equal(parts[:len(c.path)], c.path) {
			return c.name
		}
	}
	for _, c := range cols {
		if len(parts) < len(c.path) && slices.Equal(c.path[:len(parts)], parts) {
			return c.name
		}
	}
	return parts[0]
}

// importDocuments writes the rows in batches through the admin API.
func importDocuments(ctx context.Context, c *client.Admin, coll string, cols []column, rows []csvRow, batch int,
	rep *Report, prog *progress) error {
	var docs []client.DocumentEntry
	var lines []int
	flush := func() error {
		if len(docs) == 0 {
			return nil
		}
		results, err := c.WriteDocuments(ctx, coll, docs)
		if err != nil {
			return fmt.Errorf("lines %d-%d: %w", lines[0], lines[len(lines)-1], err)
		}
		if len(results) != len(docs) {
			return fmt.Errorf("lines %d-%d: the server answered %d results for %d documents", lines[0], lines[len(lines)-1],
				len(results), len(docs))
		}
		for i, r := range results {
			switch {
			case r.Status == "rejected" && r.Error != nil:
				rep.fail(RowError{Line: lines[i], Field: fieldOf(cols, strings.TrimPrefix(r.Error.Pointer, "/fields")),
					Code: r.Error.Code, Message: r.Error.Message})
			case r.Change == "created":
				rep.Created++
			case r.Change == "unchanged":
				rep.Unchanged++
			case r.Change == "updated":
				rep.Updated++
			default:
				return fmt.Errorf("line %d: the server answered %q", lines[i], r.Status)
			}
		}
		prog.add(len(docs))
		docs, lines = docs[:0], lines[:0]
		return nil
	}
	for _, row := range rows {
		fields, rerr := document(cols, row)
		if rerr != nil {
			rerr.Line = row.line
			rep.fail(*rerr)
			prog.add(1)
			continue
		}
		docs = append(docs, client.DocumentEntry{ID: row.cells["id"], Fields: fields})
		lines = append(lines, row.line)
		if len(docs) == batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// importUsers creates the users of the rows that do not exist and updates
// those that differ, one request each (the admin API has no batch of
// users). Users are created without a password.
func importUsers(ctx context.Context, c *client.Admin, rows []csvRow, rep *Report, prog *progress) error {
	us, err := c.Users(ctx, client.UserFilter{})
	if err != nil {
		return err
	}
	existing := map[string]client.User{}
	for _, u := range us {
		existing[u.ID] = u
	}
	cols := importColumns["users"]
	for _, row := range rows {
		id := row.cells["id"]
		cur, ok := existing[id]
		var u client.User
		var err error
		switch ch := userChanges(cur, row); {
		case ok && ch == (client.UserChange{}):
			rep.Unchanged++
		case ok:
			if u, err = c.UpdateUser(ctx, id, ch); err == nil {
				rep.Updated++
			}
		default:
			nu := client.NewUser{ID: id, Email: row.cells["email"], Name: row.cells["name"], Roles: splitList(row.cells["roles"], ";"),
				Teams: splitList(row.cells["teams"], ";"), Leads: splitList(row.cells["leads"], ";")}
			if u, err = c.AddUser(ctx, nu); err == nil {
				rep.Created++
			}
		}
		var re *client.RequestError
		switch {
		case err == nil:
			if u.ID != "" {
				existing[u.ID] = u
			}
		case errors.As(err, &re) && (re.Status == 400 || re.Status == 404 || re.Status == 409):
			rep.fail(RowError{Line: row.line, Field: fieldOf(cols, re.Body.Pointer), Code: re.Body.Code, Message: re.Body.Message})
		default:
			return fmt.Errorf("line %d: %w", row.line, err)
		}
		prog.add(1)
	}
	return nil
}

// userChanges returns the admin API's PATCH body for what the row changes
// in cur (empty when nothing).
func userChanges(cur client.User, row csvRow) client.UserChange {
	var ch client.UserChange
	if e, ok := row.cells["email"]; ok && strings.ToLower(e) != cur.Email {
		ch.Email = &e
	}
	if n, ok := row.cells["name"]; ok && n != cur.Name {
		ch.Name = &n
	}
	list := func(col string, have []string) *[]string {
		cell, ok := row.cells[col]
		if want := splitList(cell, ";"); ok && !sameSet(want, have) {
			return &want
		}
		return nil
	}
	ch.Roles, ch.Teams, ch.Leads = list("roles", cur.Roles), list("teams", cur.Teams), list("leads", cur.Leads)
	return ch
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// RowError is one bad row of an import.
type RowError struct {
	Line    int    `json:"line"`
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Report counts the rows of an import and keeps the bad ones.
type Report struct {
	Rows      int `json:"rows"`
	Created   int `json:"created"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
	Failed    int `json:"failed"`
	// NotImported are rows never answered: the server refused a whole
	// batch and the import stopped.
	NotImported int        `json:"not_imported,omitempty"`
	Errors      []RowError `json:"errors"`
}

func (r *Report) fail(e RowError) {
	r.Failed++
	r.Errors = append(r.Errors, e)
}

// Print writes the bad rows in line order, then the counts.
func (r *Report) Print(w io.Writer, asJSON bool) error {
	slices.SortStableFunc(r.Errors, func(a, b RowError) int { return a.Line - b.Line })
	r.NotImported = r.Rows - r.Created - r.Updated - r.Unchanged - r.Failed
	if asJSON {
		if r.Errors == nil {
			r.Errors = []RowError{}
		}
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	bw := bufio.NewWriter(w)
	for _, e := range r.Errors {
		fmt.Fprintf(bw, "line %d: %s: %s: %s\n", e.Line, e.Field, e.Code, e.Message)
	}
	fmt.Fprintf(bw, "%d rows: %d created, %d updated, %d unchanged, %d failed", r.Rows, r.Created, r.Updated, r.Unchanged, r.Failed)
	if r.NotImported > 0 {
		fmt.Fprintf(bw, ", %d not imported", r.NotImported)
	}
	fmt.Fprintln(bw)
	return bw.Flush()
}

// progress shows how many rows an import has done: a bar redrawn in place
// when w is a terminal, otherwise a line every progressEvery rows.
type progress struct {
	w           io.Writer
	tty         bool
	label       string
	total, done int
	shown       int // done when last shown
	drawn       time.Time
}

const progressEvery = 500

func newProgress(w io.Writer, label string, total int) *progress {
	p := &progress{w: w, label: label, total: total, shown: -1}
	if f, ok := w.(*os.File); ok {
		st, err := f.Stat()
		p.tty = err == nil && st.Mode()&os.ModeCharDevice != 0
	}
	return p
}

func (p *progress) add(n int) {
	p.done += n
	if n == 0 || p.total == 0 {
		return
	}
	if p.tty {
		if p.done == p.total || time.Since(p.drawn) >= 100*time.Millisecond {
			const width = 30
			full := width * p.done / p.total
			fmt.Fprintf(p.w, "\r%s [%s%s] %d/%d rows", p.label, strings.Repeat("#", full), strings.Repeat(".", width-full),
				p.done, p.total)
			p.drawn, p.shown = time.Now(), p.done
		}
		return
	}
	if p.done == p.total || p.done/progressEvery > max(p.shown, 0)/progressEvery {
		fmt.Fprintf(p.w, "%s: %d/%d rows\n", p.label, p.done, p.total)
		p.shown = p.done
	}
}

// finish ends the bar's line.
func (p *progress) finish() {
	if p.tty && p.shown >= 0 {
		fmt.Fprintln(p.w)
	}
}
