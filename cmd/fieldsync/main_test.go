package main

import (
	"testing"

	"github.com/fieldsync/fieldsync/internal/apptest"
)

// TestMain checks every response the command tests receive through
// http.DefaultClient against the OpenAPI description.
func TestMain(m *testing.M) { apptest.Main(m) }
