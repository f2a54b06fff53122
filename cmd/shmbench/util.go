package main

import (
	"strings"
	"time"
)

func splitLines(s string) []string { return strings.Split(s, "\n") }

// cutColon splits "key : value" as /proc/cpuinfo writes it.
func cutColon(line string) (string, string, bool) {
	k, v, ok := strings.Cut(line, ":")
	return strings.TrimSpace(k), strings.TrimSpace(v), ok
}

// timeDuration converts nanoseconds to a time.Duration.
func timeDuration(ns int64) time.Duration { return time.Duration(ns) }
