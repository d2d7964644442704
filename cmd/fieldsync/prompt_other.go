//go:build !linux

package main

import (
	"errors"
	"os"
)

// readNoEcho is only implemented on Linux, where fieldsync runs; elsewhere
// the password comes from --password-stdin.
func readNoEcho(*os.File) (string, error) {
	return "", errors.New("password prompts work on Linux only: use --password-stdin")
}
