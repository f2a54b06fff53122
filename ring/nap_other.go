//go:build !linux

package ring

import "time"

// napper naps with time.Sleep where there is no timerfd.
type napper struct{}

func newNapper() (*napper, error) { return &napper{}, nil }

func (n *napper) nap(d time.Duration) error {
	time.Sleep(d)
	return nil
}

func (n *napper) close() error { return nil }
