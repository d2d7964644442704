package mongodb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/sync/engine"
)

var _ identity.Store = (*Store)(nil)

// The identity directory, in its own collections:
//   - orgs: _id = organisation id.
//   - users: _id = org+sep+id, so a user is read by primary key within its
//     organisation and an organisation's users are one _id range in id order;
//     a unique index on email (stored lower-case); multikey indexes
//     {org, teams|leads|roles, _id} serve the Users filters in id order.
//   - teams: _id = org+sep+id.
//   - sessions: _id = session id: who the session belongs to, its state at
//     sign-in and its revocation; index {org, user, device}.
//   - session_rotations: _id = session id+sep+the generation it rotated
//     from, one per accepted refresh, never changed once written; index
//     {sid, from}. A session's current state is its latest rotation (or its
//     state at sign-in when it has none).
//
// Why rotations are inserted and not written over the session: the only
// write that is atomic on every server this store runs on is an insert into
// a unique _id. A filtered update is a compare-and-swap on MongoDB but a
// read, a match in memory and an unconditional write on FerretDB, where
// eight concurrent refreshes from one generation were measured to produce up
// to eight "winners". Inserting the rotation keyed by the generation it
// leaves makes exactly one refresh win on both. Revocation writes only the
// session record and rotation only inserts, so neither can undo the other.
// Rotation records live as long as their session.
//
// Users are written with a replace filtered on their version: a
// compare-and-swap on MongoDB; on FerretDB, two updates of one user racing
// from the same version may both be applied (the later one wins). Emails
// stay unique on both: the unique index holds there too.
//
// Times are stored as unix milliseconds, so they come back with millisecond
// precision, in UTC.

const (
	collOrgs      = "orgs"
	collUsers     = "users"
	collTeams     = "teams"
	collSessions  = "sessions"
	collRotations = "session_rotations"
)

// maxUsersPage caps one Users answer.
const maxUsersPage = 1000

// createIdentityIndexes creates the indexes of the identity collections
// (idempotently: an index that exists is left as it is).
func (s *Store) createIdentityIndexes(ctx context.Context) error {
	idx := []struct {
		coll   string
		keys   bson.D
		unique bool
	}{
		{collUsers, bson.D{{Key: "email", Value: 1}}, true},
		{collUsers, bson.D{{Key: "org", Value: 1}, {Key: "teams", Value: 1}, {Key: "_id", Value: 1}}, false},
		{collUsers, bson.D{{Key: "org", Value: 1}, {Key: "leads", Value: 1}, {Key: "_id", Value: 1}}, false},
		{collUsers, bson.D{{Key: "org", Value: 1}, {Key: "roles", Value: 1}, {Key: "_id", Value: 1}}, false},
		{collSessions, bson.D{{Key: "org", Value: 1}, {Key: "user", Value: 1}, {Key: "device", Value: 1}}, false},
		{collRotations, bson.D{{Key: "sid", Value: 1}, {Key: "from", Value: -1}}, false},
	}
	for _, i := range idx {
		m := mongo.IndexModel{Keys: i.keys}
		if i.unique {
			m.Options = options.Index().SetUnique(true)
		}
		cctx, cancel := s.call(ctx)
		_, err := s.db.Collection(i.coll).Indexes().CreateOne(cctx, m)
		cancel()
		if err != nil {
			return translate(fmt.Errorf("mongodb: create index on %s: %w", i.coll, err))
		}
	}
	return nil
}

// Stored forms.

type orgRec struct {
	ID       string   `bson:"_id"`
	Name     string   `bson:"name"`
	TimeZone string   `bson:"time_zone"`
	Roles    []string `bson:"roles"`
	Created  int64    `bson:"created"`
}

type userRec struct {
	ID           string   `bson:"_id"` // org+sep+id
	Org          string   `bson:"org"`
	UserID       string   `bson:"id"`
	Email        string   `bson:"email"`
	Name         string   `bson:"name"`
	Roles        []string `bson:"roles"`
	Teams        []string `bson:"teams"`
	Leads        []string `bson:"leads"`
	PasswordHash string   `bson:"password_hash"`
	Disabled     bool     `bson:"disabled"`
	Version      int64    `bson:"version"`
	Created      int64    `bson:"created"`
	Updated      int64    `bson:"updated"`
}

type teamRec struct {
	ID      string `bson:"_id"` // org+sep+id
	Org     string `bson:"org"`
	TeamID  string `bson:"id"`
	Name    string `bson:"name"`
	Created int64  `bson:"created"`
}

// sessionRec is a session as created, plus its revocation.
type sessionRec struct {
	ID          string `bson:"_id"`
	Org         string `bson:"org"`
	User        string `bson:"user"`
	Device      string `bson:"device"`
	Generation  int64  `bson:"generation"`
	TokenHash   []byte `bson:"token_hash"`
	PrevHash    []byte `bson:"prev_hash"`
	RotatedAt   int64  `bson:"rotated_at"`
	Created     int64  `bson:"created"`
	ExpiresAt   int64  `bson:"expires_at"`
	Revoked     bool   `bson:"revoked"`
	RevokedAt   int64  `bson:"revoked_at"`
	RevokeCause string `bson:"revoke_cause"`
}

// rotationRec is one accepted refresh of a session: its state from then on.
type rotationRec struct {
	ID         string `bson:"_id"` // sid+sep+from
	SID        string `bson:"sid"`
	From       int64  `bson:"from"`
	Generation int64  `bson:"generation"`
	TokenHash  []byte `bson:"token_hash"`
	PrevHash   []byte `bson:"prev_hash"`
	RotatedAt  int64  `bson:"rotated_at"`
	ExpiresAt  int64  `bson:"expires_at"`
}

func orgScopedID(org, id string) string { return org + sep + id }

// orgRange selects the _ids of one organisation's records after id after:
// every such _id starts with org+sep, and sep+1 bounds them all.
func orgRange(org, after string) bson.D {
	return bson.D{{Key: "$gt", Value: org + sep + after}, {Key: "$lt", Value: org + string(rune(sep[0]+1))}}
}

// Organisations.

// PutOrg implements identity.Store.
func (s *Store) PutOrg(ctx context.Context, o *identity.Org) error {
	rec := orgRec{ID: o.ID, Name: o.Name, TimeZone: o.TimeZone, Roles: storedList(o.Roles), Created: millis(o.Created)}
	return s.upsertByID(ctx, collOrgs, func(ctx context.Context, c *mongo.Collection) error {
		_, err := c.ReplaceOne(ctx, bson.D{{Key: "_id", Value: rec.ID}}, rec, options.Replace().SetUpsert(true))
		return err
	})
}

// Org implements identity.Store.
func (s *Store) Org(ctx context.Context, id string) (*identity.Org, error) {
	var rec orgRec
	if err := s.findRecord(ctx, collOrgs, bson.D{{Key: "_id", Value: id}}, &rec, "organisation"); err != nil {
		return nil, err
	}
	return &identity.Org{ID: rec.ID, Name: rec.Name, TimeZone: rec.TimeZone, Roles: loadedList(rec.Roles), Created: fromMillis(rec.Created)}, nil
}

// Users.

// CreateUser implements identity.Store.
func (s *Store) CreateUser(ctx context.Context, u *identity.User) error {
	rec := newUserRec(u, 1)
	cctx, cancel := s.call(ctx)
	_, err := s.db.Collection(collUsers).InsertOne(cctx, rec)
	cancel()
	if mongo.IsDuplicateKeyError(err) {
		// _id or email: the id answers first when both are taken.
		exists, lerr := s.recordExists(ctx, collUsers, bson.D{{Key: "_id", Value: rec.ID}})
		if lerr != nil {
			return lerr
		}
		if exists {
			return errUserExists(u)
		}
		return errEmailTaken(rec.Email)
	}
	if err != nil {
		return translate(err)
	}
	u.Email, u.Version = rec.Email, 1
	return nil
}

// UpdateUser implements identity.Store: a replace conditional on the stored
// version.
func (s *Store) UpdateUser(ctx context.Context, u *identity.User) error {
	rec := newUserRec(u, u.Version+1)
	users := s.db.Collection(collUsers)
	// The unique index is what keeps emails unique. Looking first only
	// gives the right answer on servers that report a unique violation by
	// an update as an internal error (FerretDB).
	var holder struct {
		ID string `bson:"_id"`
	}
	err := s.findRecord(ctx, collUsers, bson.D{{Key: "email", Value: rec.Email}}, &holder, "user")
	switch {
	case err == nil && holder.ID != rec.ID:
		// Not found and a stale version answer before the email, as when
		// the replace itself is refused.
		if err := s.checkUserVersion(ctx, rec.ID, u.Version); err != nil {
			return err
		}
		return errEmailTaken(rec.Email)
	case err != nil && engine.ErrorKind(err) != engine.KindNotFound:
		return err
	}
	cctx, cancel := s.call(ctx)
	res, err := users.ReplaceOne(cctx, bson.D{{Key: "_id", Value: rec.ID}, {Key: "version", Value: u.Version}}, rec)
	cancel()
	if mongo.IsDuplicateKeyError(err) {
		return errEmailTaken(rec.Email) // the _id matched, so it is the email
	}
	if err != nil {
		return translate(err)
	}
	if res.MatchedCount == 0 {
		if err := s.checkUserVersion(ctx, rec.ID, u.Version); err != nil {
			return err
		}
		return errUserVersion(u) // it moved between the replace and the check
	}
	u.Email, u.Version = rec.Email, rec.Version
	return nil
}

// checkUserVersion says whether the user exists at version v: nil if so,
// not found or version_mismatch otherwise.
func (s *Store) checkUserVersion(ctx context.Context, id string, v int64) error {
	var cur struct {
		Version int64 `bson:"version"`
	}
	if err := s.findRecord(ctx, collUsers, bson.D{{Key: "_id", Value: id}}, &cur, "user"); err != nil {
		return err
	}
	if cur.Version != v {
		return errUserVersion(&identity.User{Version: v})
	}
	return nil
}

// User implements identity.Store.
func (s *Store) User(ctx context.Context, org, id string) (*identity.User, error) {
	var rec userRec
	if err := s.findRecord(ctx, collUsers, bson.D{{Key: "_id", Value: orgScopedID(org, id)}}, &rec, "user"); err != nil {
		return nil, err
	}
	return rec.user(), nil
}

// UserByEmail implements identity.Store.
func (s *Store) UserByEmail(ctx context.Context, email string) (*identity.User, error) {
	var rec userRec
	if err := s.findRecord(ctx, collUsers, bson.D{{Key: "email", Value: strings.ToLower(email)}}, &rec, "user"); err != nil {
		return nil, err
	}
	return rec.user(), nil
}

// Users implements identity.Store: one range of the organisation's _ids,
// narrowed by the multikey indexes when a filter names a team or a role.
func (s *Store) Users(ctx context.Context, org string, f identity.UserFilter) ([]*identity.User, error) {
	limit := f.Limit
	if limit <= 0 || limit > maxUsersPage {
		limit = maxUsersPage
	}
	filter := bson.D{{Key: "org", Value: org}}
	for _, m := range []struct{ field, value string }{{"teams", f.Team}, {"leads", f.Leads}, {"roles", f.Role}} {
		if m.value != "" {
			filter = append(filter, bson.E{Key: m.field, Value: m.value})
		}
	}
	filter = append(filter, bson.E{Key: "_id", Value: orgRange(org, f.After)})
	var recs []userRec
	err := s.findRecords(ctx, collUsers, filter,
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)), &recs)
	if err != nil {
		return nil, err
	}
	out := make([]*identity.User, len(recs))
	for i := range recs {
		out[i] = recs[i].user()
	}
	return out, nil
}

func newUserRec(u *identity.User, version int64) userRec {
	return userRec{ID: orgScopedID(u.Org, u.ID), Org: u.Org, UserID: u.ID, Email: strings.ToLower(u.Email), Name: u.Name,
		Roles: storedList(u.Roles), Teams: storedList(u.Teams), Leads: storedList(u.Leads), PasswordHash: u.PasswordHash,
		Disabled: u.Disabled, Version: version, Created: millis(u.Created), Updated: millis(u.Updated)}
}

func (r *userRec) user() *identity.User {
	return &identity.User{Org: r.Org, ID: r.UserID, Email: r.Email, Name: r.Name, Roles: loadedList(r.Roles),
		Teams: loadedList(r.Teams), Leads: loadedList(r.Leads), PasswordHash: r.PasswordHash, Disabled: r.Disabled,
		Version: r.Version, Created: fromMillis(r.Created), Updated: fromMillis(r.Updated)}
}

// Teams.

// PutTeam implements identity.Store. A rename keeps the creation time.
func (s *Store) PutTeam(ctx context.Context, t *identity.Team) error {
	id := orgScopedID(t.Org, t.ID)
	return s.upsertByID(ctx, collTeams, func(ctx context.Context, c *mongo.Collection) error {
		_, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{
			{Key: "$set", Value: bson.D{{Key: "name", Value: t.Name}}},
			{Key: "$setOnInsert", Value: bson.D{{Key: "org", Value: t.Org}, {Key: "id", Value: t.ID}, {Key: "created", Value: millis(t.Created)}}},
		}, options.UpdateOne().SetUpsert(true))
		return err
	})
}

// Team implements identity.Store.
func (s *Store) Team(ctx context.Context, org, id string) (*identity.Team, error) {
	var rec teamRec
	if err := s.findRecord(ctx, collTeams, bson.D{{Key: "_id", Value: orgScopedID(org, id)}}, &rec, "team"); err != nil {
		return nil, err
	}
	return rec.team(), nil
}

// Teams implements identity.Store.
func (s *Store) Teams(ctx context.Context, org string) ([]*identity.Team, error) {
	var recs []teamRec
	if err := s.findRecords(ctx, collTeams, bson.D{{Key: "_id", Value: orgRange(org, "")}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}), &recs); err != nil {
		return nil, err
	}
	out := make([]*identity.Team, len(recs))
	for i := range recs {
		out[i] = recs[i].team()
	}
	return out, nil
}

func (r *teamRec) team() *identity.Team {
	return &identity.Team{Org: r.Org, ID: r.TeamID, Name: r.Name, Created: fromMillis(r.Created)}
}

// Sessions.

// CreateSession implements identity.Store; a taken id is already_exists.
func (s *Store) CreateSession(ctx context.Context, ss *identity.Session) error {
	rec := sessionRec{ID: ss.ID, Org: ss.Org, User: ss.User, Device: ss.Device, Generation: ss.Generation,
		TokenHash: ss.TokenHash, PrevHash: ss.PrevHash, RotatedAt: millis(ss.RotatedAt), Created: millis(ss.Created),
		ExpiresAt: millis(ss.ExpiresAt), Revoked: !ss.RevokedAt.IsZero(), RevokedAt: millis(ss.RevokedAt),
		RevokeCause: ss.RevokeCause}
	cctx, cancel := s.call(ctx)
	defer cancel()
	_, err := s.db.Collection(collSessions).InsertOne(cctx, rec)
	if mongo.IsDuplicateKeyError(err) {
		return engine.Wrap(err, engine.KindConflict, engine.CodeAlreadyExists, "a session with this id exists")
	}
	return translate(err)
}

// Session implements identity.Store.
func (s *Store) Session(ctx context.Context, id string) (*identity.Session, error) {
	var rec sessionRec
	if err := s.findRecord(ctx, collSessions, bson.D{{Key: "_id", Value: id}}, &rec, "session"); err != nil {
		return nil, err
	}
	return s.withRotation(ctx, &rec)
}

// withRotation is the session with its latest rotation applied.
func (s *Store) withRotation(ctx context.Context, rec *sessionRec) (*identity.Session, error) {
	ss := &identity.Session{ID: rec.ID, Org: rec.Org, User: rec.User, Device: rec.Device, Generation: rec.Generation,
		TokenHash: rec.TokenHash, PrevHash: rec.PrevHash, RotatedAt: fromMillis(rec.RotatedAt), Created: fromMillis(rec.Created),
		ExpiresAt: fromMillis(rec.ExpiresAt), RevokeCause: rec.RevokeCause}
	if rec.Revoked {
		ss.RevokedAt = fromMillis(rec.RevokedAt)
	}
	var rot rotationRec
	cctx, cancel := s.call(ctx)
	defer cancel()
	err := s.db.Collection(collRotations).FindOne(cctx, bson.D{{Key: "sid", Value: rec.ID}},
		options.FindOne().SetSort(bson.D{{Key: "from", Value: -1}})).Decode(&rot)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return ss, nil
	}
	if err != nil {
		return nil, translate(err)
	}
	ss.Generation, ss.TokenHash, ss.PrevHash = rot.Generation, rot.TokenHash, rot.PrevHash
	ss.RotatedAt, ss.ExpiresAt = fromMillis(rot.RotatedAt), fromMillis(rot.ExpiresAt)
	return ss, nil
}

// PruneSessions implements identity.Store: sessions that ended before
// before go with their rotations; of a live session, the rotations
// superseded by a newer one that is itself older than before go too. A
// refresh in flight reads the current state and inserts the rotation from
// its generation, a key newer than any deleted one, so the compare-and-swap
// below is unchanged.
func (s *Store) PruneSessions(ctx context.Context, before time.Time) (int, error) {
	b := millis(before)
	ended := bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: "revoked", Value: true}, {Key: "revoked_at", Value: bson.D{{Key: "$lt", Value: b}}}},
		bson.D{{Key: "expires_at", Value: bson.D{{Key: "$lt", Value: b}}}}}}}
	var gone []sessionRec
	if err := s.findRecords(ctx, collSessions, ended, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}), &gone); err != nil {
		return 0, err
	}
	total := 0
	for start := 0; start < len(gone); start += 1000 {
		ids := bson.A{}
		for _, r := range gone[start:min(start+1000, len(gone))] {
			ids = append(ids, r.ID)
		}
		// Rotations first: a session without its record is never read.
		for _, del := range []struct {
			coll   string
			filter bson.D
		}{
			{collRotations, bson.D{{Key: "sid", Value: bson.D{{Key: "$in", Value: ids}}}}},
			{collSessions, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}},
		} {
			cctx, cancel := s.call(ctx)
			res, err := s.db.Collection(del.coll).DeleteMany(cctx, del.filter)
			cancel()
			if err != nil {
				return total, translate(err)
			}
			total += int(res.DeletedCount)
		}
	}
	// Superseded rotations of live sessions: every rotation older than
	// before but the newest of its session.
	var old []rotationRec
	if err := s.findRecords(ctx, collRotations, bson.D{{Key: "rotated_at", Value: bson.D{{Key: "$lt", Value: b}}}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "sid", Value: 1}, {Key: "from", Value: 1}}), &old); err != nil {
		return total, err
	}
	newest := map[string]int64{}
	for _, r := range old {
		newest[r.SID] = max(newest[r.SID], r.From)
	}
	ids := bson.A{}
	for _, r := range old {
		if r.From < newest[r.SID] {
			ids = append(ids, r.ID)
		}
	}
	for start := 0; start < len(ids); start += 1000 {
		cctx, cancel := s.call(ctx)
		res, err := s.db.Collection(collRotations).DeleteMany(cctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids[start:min(start+1000, len(ids))]}}}})
		cancel()
		if err != nil {
			return total, translate(err)
		}
		total += int(res.DeletedCount)
	}
	return total, nil
}

// RotateSession implements identity.Store by inserting the rotation from
// fromGeneration: of several rotations from one generation exactly one
// insert succeeds (see the top of this file). It records the fields a
// refresh changes (Generation, TokenHash, PrevHash, RotatedAt, ExpiresAt);
// the session's owner, device and creation stay as created.
//
// Why this is a compare-and-swap: generations only grow along a session's
// rotations, so each rotation's key (the generation it leaves) is new, and
// the current state is the rotation with the highest key. A rotation that
// read generation g as current either inserts the first rotation from g,
// which makes it current, or finds that key taken because another rotation
// from g won. Rotation records are never deleted, so a key once taken stays
// taken.
func (s *Store) RotateSession(ctx context.Context, ss *identity.Session, fromGeneration int64) error {
	if ss.Generation <= fromGeneration {
		return errGenerationBackwards(ss, fromGeneration)
	}
	cur, err := s.Session(ctx, ss.ID)
	if err != nil {
		return err
	}
	if !cur.RevokedAt.IsZero() || cur.Generation != fromGeneration {
		return errSessionMoved(fromGeneration)
	}
	rec := rotationRec{ID: fmt.Sprintf("%s%s%d", ss.ID, sep, fromGeneration), SID: ss.ID, From: fromGeneration,
		Generation: ss.Generation, TokenHash: ss.TokenHash, PrevHash: ss.PrevHash,
		RotatedAt: millis(ss.RotatedAt), ExpiresAt: millis(ss.ExpiresAt)}
	cctx, cancel := s.call(ctx)
	defer cancel()
	_, err = s.db.Collection(collRotations).InsertOne(cctx, rec)
	if mongo.IsDuplicateKeyError(err) {
		return errSessionMoved(fromGeneration)
	}
	// A revocation that lands between the read above and this insert wins
	// all the same: it is on the session record, which the rotation leaves
	// alone.
	return translate(err)
}

// RevokeSessions implements identity.Store: sessions revoked already keep
// their first revocation and are not counted. An expired session that was
// never revoked is revoked and counted like a live one. (On FerretDB two
// revocations racing may both count one session.)
func (s *Store) RevokeSessions(ctx context.Context, org, user, device, cause string, at time.Time) (int, error) {
	if at.IsZero() {
		return 0, errZeroRevokeTime()
	}
	filter := bson.D{{Key: "org", Value: org}, {Key: "user", Value: user}}
	if device != "" {
		filter = append(filter, bson.E{Key: "device", Value: device})
	}
	filter = append(filter, bson.E{Key: "revoked", Value: false})
	cctx, cancel := s.call(ctx)
	defer cancel()
	res, err := s.db.Collection(collSessions).UpdateMany(cctx, filter, revokeUpdate(cause, at))
	if err != nil {
		return 0, translate(err)
	}
	return int(res.ModifiedCount), nil
}

// RevokeSession implements identity.Store; revoking a revoked session
// keeps its first revocation.
func (s *Store) RevokeSession(ctx context.Context, id, cause string, at time.Time) error {
	if at.IsZero() {
		return errZeroRevokeTime()
	}
	cctx, cancel := s.call(ctx)
	res, err := s.db.Collection(collSessions).UpdateOne(cctx,
		bson.D{{Key: "_id", Value: id}, {Key: "revoked", Value: false}}, revokeUpdate(cause, at))
	cancel()
	if err != nil {
		return translate(err)
	}
	if res.MatchedCount > 0 {
		return nil
	}
	exists, err := s.recordExists(ctx, collSessions, bson.D{{Key: "_id", Value: id}})
	if err == nil && !exists {
		err = errNoRecord("session")
	}
	return err
}

func revokeUpdate(cause string, at time.Time) bson.D {
	return bson.D{{Key: "$set", Value: bson.D{{Key: "revoked", Value: true}, {Key: "revoked_at", Value: millis(at)},
		{Key: "revoke_cause", Value: cause}}}}
}

// Sessions implements identity.Store: the user's sessions in id order,
// revoked and expired ones included.
func (s *Store) Sessions(ctx context.Context, org, user string) ([]*identity.Session, error) {
	var recs []sessionRec
	if err := s.findRecords(ctx, collSessions, bson.D{{Key: "org", Value: org}, {Key: "user", Value: user}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}), &recs); err != nil {
		return nil, err
	}
	// One indexed read of the latest rotation per session: a user has a
	// session per device, a handful.
	out := make([]*identity.Session, len(recs))
	for i := range recs {
		ss, err := s.withRotation(ctx, &recs[i])
		if err != nil {
			return nil, err
		}
		out[i] = ss
	}
	return out, nil
}

// Helpers.

// findRecord decodes the one record that filter selects into v; a missing
// record is not found, named what.
func (s *Store) findRecord(ctx context.Context, coll string, filter bson.D, v any, what string) error {
	cctx, cancel := s.call(ctx)
	defer cancel()
	err := s.db.Collection(coll).FindOne(cctx, filter).Decode(v)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return errNoRecord(what)
	}
	return translate(err)
}

func (s *Store) findRecords(ctx context.Context, coll string, filter bson.D, opt *options.FindOptionsBuilder, v any) error {
	cctx, cancel := s.call(ctx)
	defer cancel()
	cur, err := s.db.Collection(coll).Find(cctx, filter, opt)
	if err != nil {
		return translate(err)
	}
	return translate(cur.All(cctx, v))
}

func (s *Store) recordExists(ctx context.Context, coll string, filter bson.D) (bool, error) {
	cctx, cancel := s.call(ctx)
	defer cancel()
	err := s.db.Collection(coll).FindOne(cctx, filter, options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	return err == nil, translate(err)
}

// upsertByID runs an upsert by _id. Two first upserts of one _id at once can
// make one of them fail with a duplicate key; the record then exists and
// the second attempt updates it.
func (s *Store) upsertByID(ctx context.Context, coll string, fn func(ctx context.Context, c *mongo.Collection) error) error {
	c := s.db.Collection(coll)
	for attempt := 0; ; attempt++ {
		cctx, cancel := s.call(ctx)
		err := fn(cctx, c)
		cancel()
		if err == nil || !mongo.IsDuplicateKeyError(err) || attempt > 0 {
			return translate(err)
		}
	}
}

// storedList is the stored form of a list: never null, so that every record
// has an array for the multikey indexes.
func storedList(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// loadedList reads a stored list back; an empty list is nil.
func loadedList(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return l
}

// millis is the stored form of a time: unix milliseconds. The zero time
// round-trips, to the zero time.
func millis(t time.Time) int64 { return t.UnixMilli() }

func fromMillis(v int64) time.Time { return time.UnixMilli(v).UTC() }

// The errors of the identity contract.

func errNoRecord(what string) error {
	return engine.Errorf(engine.KindNotFound, engine.CodeNotFound, "", "no such %s", what)
}

func errUserExists(u *identity.User) error {
	return engine.Errorf(engine.KindConflict, identity.CodeUserExists, "/id", "user %q exists in the organisation", u.ID)
}

func errEmailTaken(email string) error {
	return engine.Errorf(engine.KindConflict, identity.CodeEmailTaken, "/email", "the email %s belongs to another user", email)
}

func errUserVersion(u *identity.User) error {
	return engine.Errorf(engine.KindConflict, identity.CodeVersionMismatch, "/version",
		"the user changed since version %d was read", u.Version)
}

func errSessionMoved(from int64) error {
	return engine.Errorf(engine.KindConflict, identity.CodeVersionMismatch, "/generation",
		"the session is no longer live at generation %d", from)
}

func errGenerationBackwards(ss *identity.Session, from int64) error {
	return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/generation",
		"a rotation must move the generation forward, not from %d to %d", from, ss.Generation)
}

func errZeroRevokeTime() error {
	return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/revoked_at", "a revocation needs its time")
}
