// Package openapi holds the OpenAPI 3.1 description of fieldsync's HTTP API
// (openapi.json, served at GET /v1/openapi.json). The synced documents'
// schemas in it are the files of schemas/ as they are ($id and all: one
// self-contained document for tools, rather than references by URL), every
// place a synced document appears references them by its collection, and
// its error code list is every Code constant of the sources: TestUpToDate
// keeps all of it current (`go test ./openapi -run TestUpToDate -update`
// rewrites it).
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
