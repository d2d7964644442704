// Package watermelondb lets the stock synchronize() of @nozbe/watermelondb
// sync with fieldsync: it translates WatermelonDB's pull and push bodies to
// the engine's Pull and Push and back, so every rule (authorization, scopes,
// validation, field-level merge, exactly-once mutations, workflow effects,
// limits) is the engine's. docs/integrate.md is the reference for app
// developers; the mapping in short:
//
//   - timestamp: a positive integer, position<<20 | tag, where position is
//     the engine's feed position and tag (1..2^20-1) is derived from the
//     caller's read-set fingerprint. A pull rebuilds the engine checkpoint
//     from it; a tag that is not the caller's current one is a reset,
//     answered with experimentalStrategy "replacement".
//   - rows: flat, one column per top-level field of the JSON Schema;
//     objects and arrays are strings of JSON; fs_version carries the
//     document version (the base of the device's next update).
//   - pages: one pull is one engine page (bounded in count and bytes);
//     has_more tells the app to call synchronize() again.
//   - migrations: a migration that adds a synced table or a served column
//     makes the pull a re-read from the start without replacement (Pull);
//     one of the app's own tables and columns changes nothing.
//   - push: created of an existing id becomes an update, updated of an
//     unknown id a create, deleted of a missing id is ignored; refusals and
//     lost conflicts are listed in experimentalRejectedIds, with the code
//     and the server's row in rejected.
//
// It must not import HTTP or store packages.
package watermelondb

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/fieldsync/fieldsync/adapters"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// Engine is what the adapter needs from the sync engine.
type Engine = adapters.Engine

// VersionColumn is the column that carries a document's version in a row.
const VersionColumn = "fs_version"

// renamed are the fields whose names WatermelonDB reserves for its own
// columns (created_at and updated_at must be its numeric timestamps): their
// columns carry the "fs_" prefix.
var renamed = map[string]string{"created_at": "fs_created_at", "updated_at": "fs_updated_at", "last_modified": "fs_last_modified"}

// column is the column of field name.
func column(field string) string {
	if c, ok := renamed[field]; ok {
		return c
	}
	return field
}

// field is the field of column name.
func field(col string) string {
	for f, c := range renamed {
		if c == col {
			return f
		}
	}
	return col
}

// SchemaVersion is the version of the app schema the adapter serves
// (AppSchema); it moves with the protocol's schemas. An app starts its own
// schema from the served one and numbers its versions itself; when the
// server serves more (a collection, a field), the app adds them with a
// WatermelonDB migration and the migration sync delivers them (Pull).
const SchemaVersion = engine.ProtocolVersion

// tagBits is the width of the read-set tag in a timestamp; the position
// takes the rest of JavaScript's exact integers (2^53).
const (
	tagBits     = 20
	tagMask     = 1<<tagBits - 1
	maxPosition = 1<<(53-tagBits) - 1
)

// Adapter serves WatermelonDB's pull and push. It is safe for concurrent use.
type Adapter struct {
	eng    Engine
	tables map[string]*adapters.Collection
	names  []string
}

// New returns an adapter over eng for the collections of the schemas
// document (GET /v1/schemas).
func New(eng Engine, schemasDoc []byte) (*Adapter, error) {
	colls, err := adapters.Collections(schemasDoc)
	if err != nil {
		return nil, err
	}
	a := &Adapter{eng: eng, tables: map[string]*adapters.Collection{}}
	for _, c := range colls {
		for _, clash := range append([]string{VersionColumn}, slices.Collect(maps.Values(renamed))...) {
			if _, ok := c.Field(clash); ok {
				return nil, fmt.Errorf("watermelondb: collection %s has a field named %s, a column the adapter uses", c.Name, clash)
			}
		}
		a.tables[c.Name] = c
		a.names = append(a.names, c.Name)
	}
	return a, nil
}

// tag maps a read-set fingerprint to 1..2^20-1.
func tag(fingerprint string) int64 {
	sum := sha256.Sum256([]byte(fingerprint))
	return int64(binary.BigEndian.Uint64(sum[:8])%tagMask) + 1
}

// Timestamp is the WatermelonDB timestamp of feed position seq for a read
// set.
func Timestamp(seq int64, fingerprint string) (int64, error) {
	if seq < 0 || seq > maxPosition {
		return 0, engine.Errorf(engine.KindInternal, engine.CodeInternal, "", "feed position %d does not fit a WatermelonDB timestamp", seq)
	}
	return seq<<tagBits | tag(fingerprint), nil
}

// PullQuery is a decoded WatermelonDB pull.
type PullQuery struct {
	LastPulledAt int64 // 0: the first pull
	// SchemaVersion is the app's schema version (0: not sent). It is the
	// app's own numbering, which moves with the app's local tables and
	// columns as well as with what the server serves, so it is not compared
	// with SchemaVersion; a migration must come from a lower version.
	SchemaVersion int
	// Migration is WatermelonDB's migration syncing info as the app sent
	// it (JSON, nil: none): see Pull.
	Migration json.RawMessage
	Limit     int // 0: the engine's page size
}

// Migration is WatermelonDB's migration syncing info: since the app last
// pulled, its schema moved from version From to the pull's schema version,
// adding Tables and Columns.
type Migration struct {
	From    int            `json:"from"`
	Tables  []string       `json:"tables"`
	Columns []AddedColumns `json:"columns"`
}

// AddedColumns are the columns a migration added to an existing table.
type AddedColumns struct {
	Table   string   `json:"table"`
	Columns []string `json:"columns"`
}

// parseMigration decodes and checks q's migration (nil: none).
func parseMigration(q PullQuery) (*Migration, error) {
	if len(q.Migration) == 0 || bytes.Equal(q.Migration, []byte("null")) {
		return nil, nil
	}
	bad := func(ptr, format string, args ...any) error {
		return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/migration"+ptr, format, args...)
	}
	var m Migration
	if err := json.Unmarshal(q.Migration, &m); err != nil {
		return nil, bad("", "migration must be null or WatermelonDB's {from, tables, columns}: %v", err)
	}
	if m.From < 1 {
		return nil, bad("/from", "migration.from must be the schema version the app migrated from (1 or more)")
	}
	if q.SchemaVersion <= m.From {
		return nil, engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/schema_version",
			"a migration from version %d needs the app's schema_version, which is higher", m.From)
	}
	for i, c := range m.Columns {
		if c.Table == "" {
			return nil, bad("/columns/"+itoa(i)+"/table", "every entry of migration.columns names its table")
		}
	}
	return &m, nil
}

// Resent returns the synced tables whose records a migration sync sends
// again: the tables it added and those it added a served column to. Names
// the server does not serve (the app's local tables and columns) are left
// out: they are the app's own, and nothing of the server's is missing
// from them.
func (a *Adapter) Resent(m *Migration) []string {
	var out []string
	for _, t := range m.Tables {
		if a.tables[t] != nil && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	for _, ac := range m.Columns {
		c := a.tables[ac.Table]
		if c == nil || slices.Contains(out, ac.Table) {
			continue
		}
		for _, col := range ac.Columns {
			f, ok := c.Field(field(col))
			if col == VersionColumn || ok && column(f.Name) == col {
				out = append(out, ac.Table)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// TableChanges is the changes of one table in WatermelonDB's form.
type TableChanges struct {
	Created []json.RawMessage `json:"created"`
	Updated []json.RawMessage `json:"updated"`
	Deleted []string          `json:"deleted"`
}

// PullReply is the answer to a pull.
type PullReply struct {
	Changes   map[string]*TableChanges `json:"changes"`
	Timestamp int64                    `json:"timestamp"`
	// Strategy is "replacement" on the first page after a reset: the device
	// keeps only the records this and the following pages deliver.
	Strategy string `json:"experimentalStrategy,omitempty"`
	// HasMore says the feed has more pages: call synchronize() again.
	HasMore bool `json:"has_more"`
}

// Pull answers WatermelonDB's pullChanges.
//
// A migration sync (a pull with a migration that names a synced table, or a
// column the server serves on one, see Resent) is a re-read from the start:
// its pages carry every record in scope again, the migrated tables'
// records with their new columns among them, and the device keeps what it
// holds (no replacement), so its local records and unpushed changes
// survive. The whole feed is re-read, not only the migrated tables:
// WatermelonDB sends the migration with the first pull only and continues
// with ordinary pulls from the timestamp it was given, and the only
// position from which ordinary pulls complete the migrated tables is the
// start. A migration that names only the app's own tables and columns is
// an ordinary pull.
func (a *Adapter) Pull(ctx context.Context, actor engine.Actor, q PullQuery) (*PullReply, error) {
	mig, err := parseMigration(q)
	if err != nil {
		return nil, err
	}
	resend := mig != nil && len(a.Resent(mig)) > 0
	checkpoint, reset := "", false
	if q.LastPulledAt != 0 {
		if q.LastPulledAt < 0 || q.LastPulledAt > 1<<53-1 {
			return nil, engine.Errorf(engine.KindInvalid, engine.CodeBadCheckpoint, "/last_pulled_at", "last_pulled_at is not a timestamp this server issued")
		}
		acc, err := a.eng.Access(ctx, actor)
		if err != nil {
			return nil, err
		}
		seq, t := q.LastPulledAt>>tagBits, q.LastPulledAt&tagMask
		if t == tag(acc.Fingerprint) {
			checkpoint = a.eng.CheckpointAt(actor, seq, acc.Fingerprint)
		} else {
			// The read set changed since the device's last pull (or the
			// number was never ours): start over and replace.
			reset = true
		}
	}
	if resend {
		checkpoint = "" // a migration sync: re-read, keeping what the device holds
	}
	res, err := a.eng.Pull(ctx, actor, engine.PullRequest{Checkpoint: checkpoint, Limit: q.Limit})
	if err != nil {
		return nil, err
	}
	seq, fp, err := a.eng.Position(actor, res.Checkpoint)
	if err != nil {
		return nil, err
	}
	ts, err := Timestamp(seq, fp)
	if err != nil {
		return nil, err
	}
	out := &PullReply{Changes: map[string]*TableChanges{}, Timestamp: ts, HasMore: res.HasMore}
	if reset || res.Reset {
		out.Strategy = "replacement"
	}
	for _, name := range a.names {
		out.Changes[name] = &TableChanges{Created: []json.RawMessage{}, Updated: []json.RawMessage{}, Deleted: []string{}}
	}
	for _, ch := range res.Changes {
		tc := out.Changes[ch.Collection]
		if tc == nil {
			continue // a collection the schemas do not describe is never synced
		}
		if ch.Op() != engine.ChangePut {
			tc.Deleted = append(tc.Deleted, ch.ID)
			continue
		}
		row, err := a.Row(ch.Collection, ch.ID, ch.Version, ch.Body)
		if err != nil {
			return nil, err
		}
		// Always "updated": the server cannot know what a device holds
		// (resets, evictions, other devices), so the app passes
		// sendCreatedAsUpdated: true and WatermelonDB creates what it lacks.
		tc.Updated = append(tc.Updated, row)
	}
	return out, nil
}

// Row renders a document as a flat WatermelonDB row.
func (a *Adapter) Row(collection, id string, version int64, body json.RawMessage) (json.RawMessage, error) {
	c := a.tables[collection]
	if c == nil {
		return nil, fmt.Errorf("watermelondb: unknown collection %s", collection)
	}
	doc := map[string]json.RawMessage{}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("watermelondb: %s/%s: stored body: %w", collection, id, err)
	}
	row := make(map[string]json.RawMessage, len(doc)+2)
	row["id"], _ = json.Marshal(id)
	row[VersionColumn] = strconv.AppendInt(nil, version, 10)
	for k, v := range doc {
		f, ok := c.Field(k)
		if !ok {
			continue // fields outside the schema are not synced to flat rows
		}
		if f.Kind == adapters.KindJSON && !bytes.Equal(v, []byte("null")) {
			v, _ = json.Marshal(string(v))
		}
		row[column(k)] = v
	}
	return json.Marshal(row)
}

// tableOrder returns the tables of a push in adapters.PushOrder, then any
// others sorted.
func tableOrder[V any](m map[string]V) []string {
	var out []string
	for _, t := range adapters.PushOrder {
		if _, ok := m[t]; ok {
			out = append(out, t)
		}
	}
	var rest []string
	for t := range m {
		if !slices.Contains(adapters.PushOrder, t) {
			rest = append(rest, t)
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

func itoa(i int) string { return strconv.Itoa(i) }
