package mongodb

import (
	"testing"

	"github.com/fieldsync/fieldsync/workflow"
	"github.com/fieldsync/fieldsync/workflow/matrixtest"
)

func TestMatrixStore(t *testing.T) {
	t.Parallel()
	matrixtest.Run(t, func(t *testing.T) workflow.MatrixStore {
		s := openT(t, freshDB(), Options{})
		t.Cleanup(func() { s.Close() })
		return s
	})
}
