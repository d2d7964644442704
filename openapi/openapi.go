// Package openapi holds the OpenAPI 3.1 description of fieldsync's HTTP API
// (openapi.json, served at GET /v1/openapi.json). The synced documents'
// schemas in it are the JSON Schemas of package schemas, copied in, and its
// error code list is every Code constant of the sources: TestUpToDate keeps
// both current (`go test ./openapi -run TestUpToDate -update` rewrites them).
// The system tests (app/openapi_test.go, internal/apptest) keep the
// described paths equal to the server's routes and validate every API
// response against the description.
//
// It must not import HTTP or store packages.
package openapi

import (
	"bytes"
	_ "embed"
)

//go:embed openapi.json
var doc []byte

// JSON returns the description.
func JSON() []byte { return bytes.Clone(doc) }
