package engine

import (
	"testing"
)

// FuzzPullCheckpoint feeds arbitrary checkpoints to the pull's decoding: it
// must never panic, accept only what this server sealed for this caller, and
// every checkpoint it seals must open to the same position.
//
//	go test ./sync/engine -run '^$' -fuzz FuzzPullCheckpoint -fuzztime 10m
func FuzzPullCheckpoint(f *testing.F) {
	e := &Engine{checkKey: []byte("0123456789abcdef0123456789abcdef")}
	rep := Actor{Org: "acme", User: "u-rep1"}
	f.Add(e.sealCheckpoint(rep, 42, "fp"), int64(42))
	f.Add(e.sealCheckpoint(Actor{Org: "other", User: "u-rep1"}, 7, ""), int64(7))
	f.Add("", int64(0))
	f.Add("eyJ2IjoxfQ.AAAA", int64(1))
	f.Add("....", int64(-1))
	f.Fuzz(func(t *testing.T, cp string, seq int64) {
		if got, _, err := e.openCheckpoint(rep, cp); err == nil && cp != "" {
			// Only a checkpoint sealed by this key for this caller opens:
			// resealing what it stands for must give back a valid one.
			if again, _, err := e.openCheckpoint(rep, e.sealCheckpoint(rep, got, "")); err != nil || again != got {
				t.Fatalf("checkpoint %q opened at %d but its reseal does not (%d, %v)", cp, got, again, err)
			}
		}
		if seq < 0 {
			return
		}
		sealed := e.sealCheckpoint(rep, seq, "k")
		got, read, err := e.openCheckpoint(rep, sealed)
		if err != nil || got != seq || read != "k" {
			t.Fatalf("sealed %d, opened %d %q %v", seq, got, read, err)
		}
		if _, _, err := e.openCheckpoint(Actor{Org: "acme", User: "u-rep2"}, sealed); err == nil {
			t.Fatalf("another user opened a checkpoint sealed for u-rep1")
		}
	})
}
