package mongodb

import "fmt"

// The stored forms of the store's collections.

// recentMut is a mutation applied to a document, kept on the document so that
// the write that applies it also records it.
type recentMut struct {
	Key     string `bson:"k"`
	Outcome string `bson:"o"` // engine.Outcome as JSON
}

// keepRecent bounds docRec.Recent. It only has to outlive the moment between
// a document write and the insert into mutations that follows it.
const keepRecent = 16

// docRec is a document as stored. Fields and feed are JSON strings: nobody
// queries inside them, and their keys (field names, scope keys) never have
// to be valid BSON field names.
type docRec struct {
	ID           string      `bson:"_id"`
	Org          string      `bson:"org"`
	Coll         string      `bson:"coll"`
	DocID        string      `bson:"id"`
	Owner        string      `bson:"owner"`
	Version      int64       `bson:"version"`
	Seq          int64       `bson:"seq"`
	Deleted      bool        `bson:"deleted"`
	Body         *string     `bson:"body"` // nil for a tombstone; a string keeps the JSON bytes exact
	Fields       string      `bson:"fields"`
	Feed         string      `bson:"feed"`
	UpdatedAt    int64       `bson:"updated_at"` // unix milliseconds
	UpdatedBy    string      `bson:"updated_by"`
	OriginDevice string      `bson:"origin_device"`
	OriginMID    string      `bson:"origin_mid"`
	Recent       []recentMut `bson:"recent"`
}

// feedRec is one scope's latest change of a document. The change's body is
// denormalised into it: a pull is then one ordered read per scope with no
// join, and a row always shows the content of the change at its seq, never
// a newer state that is not committed yet.
type feedRec struct {
	ID      string  `bson:"_id"`
	Org     string  `bson:"org"`
	Scope   string  `bson:"scope"`
	Seq     int64   `bson:"seq"`
	Coll    string  `bson:"coll"`
	DocID   string  `bson:"id"`
	Revoked bool    `bson:"revoked"`
	Version int64   `bson:"version"`
	Deleted bool    `bson:"deleted"`
	Body    *string `bson:"body"`
}

// seqRec is one allocated sequence number: a committed change or a void.
type seqRec struct {
	ID    string `bson:"_id"`
	Org   string `bson:"org"`
	Seq   int64  `bson:"seq"`
	Coll  string `bson:"coll,omitempty"`
	DocID string `bson:"id,omitempty"`
	Void  bool   `bson:"void,omitempty"`
}

func docKeyID(org, coll, id string) string { return org + sep + coll + sep + id }
func feedID(org, scope, coll, id string) string {
	return org + sep + scope + sep + coll + sep + id
}
func seqID(org string, seq int64) string { return fmt.Sprintf("%s%s%020d", org, sep, seq) }

type docKey struct{ coll, id string }
