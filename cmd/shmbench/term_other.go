//go:build !linux

package main

import "io"

// isTerminal reports false: the progress line is Linux-only.
func isTerminal(w io.Writer) bool { return false }
