// Package matrixtest is the contract suite of workflow.MatrixStore: every
// store adapter that keeps responsibility matrices runs it on a fresh store.
package matrixtest

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/workflow"
)

// Run runs the contract; open returns an empty store for one subtest.
func Run(t *testing.T, open func(t *testing.T) workflow.MatrixStore) {
	ctx := context.Background()
	at := time.Date(2026, 12, 1, 9, 30, 0, 123_000_000, time.UTC)

	t.Run("versions", func(t *testing.T) {
		s := open(t)
		if _, found, err := s.LatestMatrix(ctx, "a"); err != nil || found {
			t.Fatalf("latest of an empty store: found %v, %v", found, err)
		}
		for v := int64(1); v <= 2; v++ {
			m := workflow.StoredMatrix{Org: "a", Version: v, Raw: []byte(`{"v":` + string(rune('0'+v)) + `}`), By: "boss", Created: at}
			if err := s.InsertMatrix(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		got, found, err := s.LatestMatrix(ctx, "a")
		if err != nil || !found || got.Version != 2 || !bytes.Equal(got.Raw, []byte(`{"v":2}`)) || got.By != "boss" || !got.Created.Equal(at) {
			t.Fatalf("latest: %+v %v %v", got, found, err)
		}
		got, found, err = s.MatrixVersion(ctx, "a", 1)
		if err != nil || !found || !bytes.Equal(got.Raw, []byte(`{"v":1}`)) {
			t.Fatalf("version 1: %+v %v %v", got, found, err)
		}
		if _, found, err := s.MatrixVersion(ctx, "a", 3); err != nil || found {
			t.Fatalf("missing version: %v %v", found, err)
		}
		// Organisations are apart.
		if _, found, err := s.LatestMatrix(ctx, "b"); err != nil || found {
			t.Fatalf("another organisation's latest: %v %v", found, err)
		}
		err = s.InsertMatrix(ctx, workflow.StoredMatrix{Org: "a", Version: 2, Raw: []byte(`{}`), Created: at})
		if engine.ErrorKind(err) != engine.KindConflict {
			t.Fatalf("a version inserted twice: %v", err)
		}
	})

	t.Run("concurrent replacements", func(t *testing.T) {
		s := open(t)
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.InsertMatrix(ctx, workflow.StoredMatrix{Org: "a", Version: 1, Raw: []byte(`{"by":` + string(rune('0'+i)) + `}`), Created: at})
			}()
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case engine.ErrorKind(err) != engine.KindConflict:
				t.Fatalf("unexpected error: %v", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d inserts of one version succeeded", won)
		}
	})

	t.Run("organisations", func(t *testing.T) {
		s := open(t)
		for _, o := range []string{"b", "a", "b"} {
			if err := s.NoteWorkflowOrg(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.WorkflowOrgs(ctx)
		if err != nil || !slices.Equal(got, []string{"a", "b"}) {
			t.Fatalf("orgs %v %v", got, err)
		}
	})
}
