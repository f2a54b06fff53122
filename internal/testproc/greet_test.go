package testproc_test

import "testing"

// TestGreet runs the package example's test body.
func TestGreet(t *testing.T) { testGreet(t) }
