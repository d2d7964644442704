package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/fieldsync/fieldsync/workflow"
	"github.com/fieldsync/fieldsync/workflow/matrixtest"
)

func TestMatrixStore(t *testing.T) {
	t.Parallel()
	matrixtest.Run(t, func(t *testing.T) workflow.MatrixStore {
		s := openT(t, filepath.Join(t.TempDir(), "fieldsync.db"), Options{})
		t.Cleanup(func() { s.Close() })
		return s
	})
}
