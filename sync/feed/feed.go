// Package feed holds the parts of the change feed that every store adapter
// shares: where a document sits in each scope's feed, how a write moves it,
// and how per-scope lists merge into one page. It knows nothing of any
// database; adapters store Pos however suits them (its JSON form is "s"/"r").
package feed

import (
	"slices"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// Pos is where a document sits in one scope's feed.
type Pos struct {
	Seq     int64 `json:"s"`
	Revoked bool  `json:"r,omitempty"`
}

// Move returns the feed positions after a write at seq: every scope the
// document is in moves to seq, every scope it just left becomes an eviction
// at seq, and scopes it left earlier keep their eviction where it is.
func Move(old map[string]Pos, scopes []string, seq int64) map[string]Pos {
	feed := make(map[string]Pos, len(scopes)+len(old))
	for scope, f := range old {
		switch {
		case slices.Contains(scopes, scope):
		case f.Revoked:
			feed[scope] = f
		default:
			feed[scope] = Pos{Seq: seq, Revoked: true}
		}
	}
	for _, scope := range scopes {
		feed[scope] = Pos{Seq: seq}
	}
	return feed
}

// MergePage merges per-scope lists (each sorted by seq) into one page: seq
// order, one change per document (a visible copy beats an eviction of the
// same change, a later change replaces an earlier one), at most limit changes and stopping
// after the change that crosses maxBytes, and never past horizon (when >= 0).
func MergePage(lists [][]engine.Change, limit, maxBytes int, horizon int64) ([]engine.Change, bool) {
	if len(lists) == 1 {
		l := lists[0]
		n, bytes := 0, 0
		for n < len(l) && n < limit && (maxBytes <= 0 || bytes <= maxBytes) && (horizon < 0 || l[n].Seq <= horizon) {
			bytes += len(l[n].Body)
			n++
		}
		return l[:n], n < len(l) || horizon >= 0
	}
	type key struct{ coll, id string }
	pos := make([]int, len(lists))
	var page []engine.Change
	seen := map[key]int{}
	bytes := 0
	for {
		best := -1
		for i, l := range lists {
			if pos[i] < len(l) && (best < 0 || l[pos[i]].Seq < lists[best][pos[best]].Seq) {
				best = i
			}
		}
		if best < 0 {
			return page, horizon >= 0
		}
		c := lists[best][pos[best]]
		if horizon >= 0 && c.Seq > horizon {
			return page, true
		}
		k := key{c.Collection, c.ID}
		j, dup := seen[k]
		if dup && page[j].Seq == c.Seq {
			if page[j].Evicted && !c.Evicted {
				bytes += len(c.Body)
				page[j] = c
			}
			pos[best]++
			continue
		}
		if len(page) >= limit || (maxBytes > 0 && bytes > maxBytes) {
			return page, true
		}
		if dup {
			// A later change of a document already on the page (evicted
			// from one scope, then changed under another): it supersedes
			// the earlier one, so the page holds the document once.
			bytes -= len(page[j].Body)
			page = slices.Delete(page, j, j+1)
			for i := j; i < len(page); i++ {
				seen[key{page[i].Collection, page[i].ID}] = i
			}
		}
		seen[k] = len(page)
		page = append(page, c)
		bytes += len(c.Body)
		pos[best]++
	}
}
