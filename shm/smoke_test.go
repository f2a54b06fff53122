package shm

import (
	"context"
	"testing"
)

func TestSmoke(t *testing.T) {
	name := "smoke"
	_ = Unlink(name)
	s, err := Create(name, 100, WithInit(func(p []byte) error { p[0] = 42; return nil }))
	if err != nil {
		t.Fatal(err)
	}
	defer Unlink(name)
	s2, err := Open(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Bytes()[0] != 42 || s2.Size() != 100 {
		t.Fatal("bad")
	}
	s2.Bytes()[1] = 7
	if s.Bytes()[1] != 7 {
		t.Fatal("not shared")
	}
	b := s.Bytes()
	s.Close()
	_ = b[1]
	s2.Close()
}
