// Package deps holds a test that keeps shmkit's core packages on the
// standard library and golang.org/x/sys alone: the heavier dependencies
// (the Redis client of cmd/shmbench, and later the NATS client of the
// bridge) must stay where they are needed.
package deps
