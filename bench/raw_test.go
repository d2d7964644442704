package bench_test

import (
	"database/sql"
	"encoding/json"
	"path/filepath"
	"strconv"
	"testing"

	_ "github.com/mattn/go-sqlite3"
)

// pullDocs is the size of the first pull BenchmarkServerFirstPull measures.
const pullDocs = 50_000

// BenchmarkRawSQLite is the floor the server's figures compare with, in the
// same run (here and for the in-process benchmarks of app/): the notes of
// BenchmarkServerPush written straight through the driver with the store's
// pragmas (WAL, synchronous=FULL), 100 rows per transaction, one row per note
// (the server writes the document and its feed rows); then read back in
// pages of 100 and of 1,000 by an indexed range, as a first pull reads them,
// 50,000 rows per iteration.
func BenchmarkRawSQLite(b *testing.B) {
	dsn := "file:" + filepath.Join(b.TempDir(), "raw.db") + "?_journal_mode=WAL&_synchronous=FULL&_busy_timeout=5000"
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE notes (owner TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, body BLOB NOT NULL,
		PRIMARY KEY (owner, seq)) WITHOUT ROWID`); err != nil {
		b.Fatal(err)
	}
	// The server's notes, decoded once: the loop measures SQLite only.
	var batch struct {
		Mutations []struct {
			Doc json.RawMessage `json:"doc"`
		} `json:"mutations"`
	}
	if err := json.Unmarshal(pushBody("raw", 0, 100, 100), &batch); err != nil {
		b.Fatal(err)
	}
	seq := 0
	// write appends n notes, 100 to a transaction.
	write := func(b *testing.B, n int) {
		for range n / 100 {
			tx, err := db.Begin()
			if err != nil {
				b.Fatal(err)
			}
			st, err := tx.Prepare(`INSERT INTO notes(owner, seq, id, body) VALUES ('rep-1', ?, ?, ?)`)
			if err != nil {
				b.Fatal(err)
			}
			for _, m := range batch.Mutations {
				seq++
				if _, err := st.Exec(seq, "n-raw-"+strconv.Itoa(seq), []byte(m.Doc)); err != nil {
					b.Fatal(err)
				}
			}
			st.Close()
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("write", func(b *testing.B) {
		for b.Loop() {
			write(b, pushNotes)
		}
		b.ReportMetric(float64(b.N*pushNotes)/b.Elapsed().Seconds(), "rows/s")
	})
	for _, page := range []int{100, 1000} {
		b.Run("read/page="+strconv.Itoa(page), func(b *testing.B) {
			if seq < pullDocs {
				write(b, pullDocs-seq)
			}
			b.ResetTimer()
			n := 0
			for b.Loop() {
				for after := 0; after < pullDocs; {
					rows, err := db.Query(`SELECT seq, id, body FROM notes WHERE owner = 'rep-1' AND seq > ? ORDER BY seq LIMIT ?`, after, page)
					if err != nil {
						b.Fatal(err)
					}
					for rows.Next() {
						var id string
						var body []byte
						if err := rows.Scan(&after, &id, &body); err != nil {
							b.Fatal(err)
						}
						n++
					}
					if err := rows.Close(); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
