package identitytest

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// rotated is s one generation on, as a refresh makes it.
func rotated(s *identity.Session, secret string, minute int) *identity.Session {
	n := *s
	n.Generation = s.Generation + 1
	n.PrevHash = s.TokenHash
	n.TokenHash = hash(secret)
	n.RotatedAt = at(minute)
	n.ExpiresAt = at(minute).Add(30 * 24 * time.Hour)
	return &n
}

// testSessions: a session round-trips byte for byte; its id is unique.
func testSessions(f *fixture) {
	t := f.t
	_, err := f.s.Session(f.ctx, "s-1")
	wantNotFound(t, "Session of an empty store", err)

	s := newSession("s-1", orgA, "u-1", "dev-a")
	f.createSession(s)
	got := f.session("s-1")
	wantSession(t, "Session", got, s)
	if !got.Live(at(4)) {
		t.Errorf("a new session is not live")
	}

	dup := newSession("s-1", orgB, "u-2", "dev-b")
	err = f.s.CreateSession(f.ctx, dup)
	wantErr(t, "CreateSession with a taken id", err, engine.KindConflict, engine.CodeAlreadyExists)
	wantSession(t, "Session after the refused create", f.session("s-1"), s)

	// A session of another organisation with the same user and device.
	other := newSession("s-2", orgB, "u-1", "dev-a")
	other.PrevHash = hash("prev")
	f.createSession(other)
	wantSession(t, "Session of the other org", f.session("s-2"), other)
}

// testRotateSession: a rotation applies only from the stored generation of
// a live session.
func testRotateSession(f *fixture) {
	t := f.t
	s := f.createSession(newSession("s-1", orgA, "u-1", "dev-a"))
	f.createSession(newSession("s-2", orgA, "u-1", "dev-b"))

	next := rotated(s, "token-2", 10)
	if err := f.s.RotateSession(f.ctx, next, 1); err != nil {
		t.Fatalf("RotateSession from 1: %v", err)
	}
	wantSession(t, "Session after a rotation", f.session("s-1"), next)
	wantSession(t, "the other session after the rotation", f.session("s-2"), newSession("s-2", orgA, "u-1", "dev-b"))

	// The token of generation 1 again: its rotation finds generation 2.
	again := rotated(s, "token-2b", 11)
	err := f.s.RotateSession(f.ctx, again, 1)
	wantErr(t, "RotateSession from a past generation", err, engine.KindConflict, identity.CodeVersionMismatch)
	future := rotated(rotated(next, "token-3", 12), "token-4", 12)
	err = f.s.RotateSession(f.ctx, future, 3)
	wantErr(t, "RotateSession from a future generation", err, engine.KindConflict, identity.CodeVersionMismatch)
	wantSession(t, "Session after the refused rotations", f.session("s-1"), next)

	// A rotation must move the generation forward.
	still := *next
	still.TokenHash = hash("token-same")
	err = f.s.RotateSession(f.ctx, &still, 2)
	wantErr(t, "RotateSession to the same generation", err, engine.KindInvalid, engine.CodeInvalidRequest)

	third := rotated(next, "token-3", 13)
	if err := f.s.RotateSession(f.ctx, third, 2); err != nil {
		t.Fatalf("RotateSession from 2: %v", err)
	}
	wantSession(t, "Session after the second rotation", f.session("s-1"), third)

	// A revoked session never rotates again.
	if err := f.s.RevokeSession(f.ctx, "s-1", "logout", at(14)); err != nil {
		t.Fatal(err)
	}
	err = f.s.RotateSession(f.ctx, rotated(third, "token-4", 15), 3)
	wantErr(t, "RotateSession of a revoked session", err, engine.KindConflict, identity.CodeVersionMismatch)
	want := *third
	want.RevokedAt, want.RevokeCause = at(14), "logout"
	wantSession(t, "revoked Session after the refused rotation", f.session("s-1"), &want)

	unknown := newSession("s-nope", orgA, "u-1", "dev-a")
	unknown.Generation = 2
	wantNotFound(t, "RotateSession of an unknown session", f.s.RotateSession(f.ctx, unknown, 1))
}

// testRotateSessionRace: eight refreshes with the same token at once, round
// after round: exactly one wins each round and the stored session is the
// winner's.
func testRotateSessionRace(f *fixture) {
	t := f.t
	cur := f.createSession(newSession("s-1", orgA, "u-1", "dev-a"))
	const racers, rounds = 8, 4
	for round := range rounds {
		cands := make([]*identity.Session, racers)
		errs := make([]error, racers)
		var wg sync.WaitGroup
		for i := range racers {
			cands[i] = rotated(cur, fmt.Sprintf("token-r%d-%d", round, i), 20+round)
			wg.Go(func() { errs[i] = f.s.RotateSession(f.ctx, cands[i], cur.Generation) })
		}
		wg.Wait()
		won := -1
		for i, err := range errs {
			if err == nil {
				if won >= 0 {
					t.Fatalf("round %d: rotations %d and %d both won", round, won, i)
				}
				won = i
				continue
			}
			wantErr(t, fmt.Sprintf("round %d, rotation %d", round, i), err, engine.KindConflict, identity.CodeVersionMismatch)
		}
		if won < 0 {
			t.Fatalf("round %d: no rotation won", round)
		}
		wantSession(t, fmt.Sprintf("round %d: Session", round), f.session("s-1"), cands[won])
		cur = cands[won]
	}
}

// testRevokeSession: revoking records the time and cause once; a second
// revoke keeps the first.
func testRevokeSession(f *fixture) {
	t := f.t
	s := f.createSession(newSession("s-1", orgA, "u-1", "dev-a"))
	f.createSession(newSession("s-2", orgA, "u-1", "dev-a"))
	if err := f.s.RevokeSession(f.ctx, "s-1", "reuse", at(5)); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	want := *s
	want.RevokedAt, want.RevokeCause = at(5), "reuse"
	got := f.session("s-1")
	wantSession(t, "revoked Session", got, &want)
	if got.Live(at(6)) {
		t.Errorf("a revoked session is live")
	}
	if err := f.s.RevokeSession(f.ctx, "s-1", "logout", at(6)); err != nil {
		t.Errorf("RevokeSession of a revoked session: %v", err)
	}
	wantSession(t, "Session revoked twice", f.session("s-1"), &want)
	if !f.session("s-2").Live(at(6)) {
		t.Errorf("revoking s-1 revoked s-2")
	}
	wantNotFound(t, "RevokeSession of an unknown session", f.s.RevokeSession(f.ctx, "s-nope", "logout", at(6)))
	err := f.s.RevokeSession(f.ctx, "s-2", "logout", time.Time{})
	wantErr(t, "RevokeSession at the zero time", err, engine.KindInvalid, engine.CodeInvalidRequest)
}

// testRevokeSessions: revoking a user's sessions (of one device, or all)
// counts only those it revoked and touches no one else's; Sessions lists a
// user's sessions in id order, revoked ones included.
func testRevokeSessions(f *fixture) {
	t := f.t
	sess := map[string]*identity.Session{}
	for _, s := range []*identity.Session{
		newSession("s-1", orgA, "u-1", "dev-a"),
		newSession("s-2", orgA, "u-1", "dev-a"), // an older sign-in on the same phone
		newSession("s-3", orgA, "u-1", "dev-b"),
		newSession("s-4", orgA, "u-2", "dev-a"),
		newSession("s-5", orgB, "u-1", "dev-a"), // same user and device ids, another org
		newSession("s-6", orgA, "u-1", "dev-c"),
	} {
		sess[s.ID] = f.createSession(s)
	}
	// A rotated session is listed as rotated.
	sess["s-6"] = rotated(sess["s-6"], "token-6b", 4)
	if err := f.s.RotateSession(f.ctx, sess["s-6"], 1); err != nil {
		t.Fatal(err)
	}
	revoked := func(id, cause string, minute int) {
		s := *sess[id]
		s.RevokedAt, s.RevokeCause = at(minute), cause
		sess[id] = &s
	}
	if err := f.s.RevokeSession(f.ctx, "s-2", "logout", at(5)); err != nil {
		t.Fatal(err)
	}
	revoked("s-2", "logout", 5)

	n, err := f.s.RevokeSessions(f.ctx, orgA, "u-1", "dev-a", "admin", at(6))
	if err != nil || n != 1 {
		t.Errorf("RevokeSessions(u-1, dev-a) = %d, %v; want 1 (s-2 was revoked already)", n, err)
	}
	revoked("s-1", "admin", 6)
	n, err = f.s.RevokeSessions(f.ctx, orgA, "u-1", "dev-nope", "admin", at(6))
	if err != nil || n != 0 {
		t.Errorf("RevokeSessions of a device without sessions = %d, %v; want 0", n, err)
	}
	n, err = f.s.RevokeSessions(f.ctx, orgA, "u-1", "", "disabled", at(7))
	if err != nil || n != 2 {
		t.Errorf("RevokeSessions(u-1) = %d, %v; want 2 (s-3, s-6)", n, err)
	}
	revoked("s-3", "disabled", 7)
	revoked("s-6", "disabled", 7)
	n, err = f.s.RevokeSessions(f.ctx, orgA, "u-1", "", "disabled", at(8))
	if err != nil || n != 0 {
		t.Errorf("RevokeSessions(u-1) again = %d, %v; want 0", n, err)
	}
	for _, id := range []string{"s-1", "s-2", "s-3", "s-4", "s-5", "s-6"} {
		wantSession(t, id, f.session(id), sess[id])
	}
	_, err = f.s.RevokeSessions(f.ctx, orgA, "u-2", "", "admin", time.Time{})
	wantErr(t, "RevokeSessions at the zero time", err, engine.KindInvalid, engine.CodeInvalidRequest)

	for _, c := range []struct {
		org, user string
		want      []string
	}{
		{orgA, "u-1", []string{"s-1", "s-2", "s-3", "s-6"}},
		{orgA, "u-2", []string{"s-4"}},
		{orgB, "u-1", []string{"s-5"}},
		{orgB, "u-2", nil},
	} {
		list, err := f.s.Sessions(f.ctx, c.org, c.user)
		if err != nil {
			t.Errorf("Sessions(%s, %s): %v", c.org, c.user, err)
			continue
		}
		var ids []string
		for _, s := range list {
			ids = append(ids, s.ID)
			wantSession(t, fmt.Sprintf("Sessions(%s, %s): %s", c.org, c.user, s.ID), s, sess[s.ID])
		}
		if !slices.Equal(ids, c.want) {
			t.Errorf("Sessions(%s, %s) = %v, want %v", c.org, c.user, ids, c.want)
		}
	}
}
