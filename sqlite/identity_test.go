package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/identity/identitytest"
)

func TestIdentity(t *testing.T) {
	identitytest.Run(t, func(t *testing.T) identity.Store {
		s := openT(t, filepath.Join(t.TempDir(), "fieldsync.db"), Options{})
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	})
}

// TestIdentityUsersPlan: every Users filter is a range scan of an index,
// never a scan of an organisation's users or memberships.
func TestIdentityUsersPlan(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openT(t, filepath.Join(t.TempDir(), "fieldsync.db"), Options{})
	t.Cleanup(func() { s.Close() })
	for _, f := range []identity.UserFilter{
		{}, {Team: "north"}, {Leads: "north"}, {Role: "rep"},
		{Team: "north", Role: "rep"}, {Team: "north", Leads: "south", Role: "manager", After: "u-1", Limit: 10},
	} {
		q, args := usersQuery("org", f)
		rows, err := s.r.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			t.Fatalf("explain %+v: %v", f, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		for _, step := range plan {
			if strings.HasPrefix(step, "SCAN") || strings.Contains(step, "TEMP B-TREE") {
				t.Errorf("Users(%+v) plan %q: a scan or a sort", f, plan)
			}
		}
		t.Logf("Users(%+v): %q", f, plan)
	}
}
