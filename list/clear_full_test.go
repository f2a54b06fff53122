package list

import (
	"context"
	"errors"
	"testing"
)

// TestClearFullSegment: Clear in a segment with no room for the empty
// space it would publish still empties the list and says so (it stored
// the length 0, its commit, and then reported ErrFull).
func TestClearFullSegment(t *testing.T) {
	ctx := context.Background()
	l, err := CreateAnonymous[uint64](WithMaxBytes(384 + 512)) // exactly the first space
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := range 5 {
		if _, err := l.Append(ctx, uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Clear(ctx); err != nil {
		t.Fatalf("Clear: %v (Len %d)", err, l.Len())
	}
	if n := l.Len(); n != 0 {
		t.Fatalf("Len after Clear: %d", n)
	}
	if _, err := l.Get(0); !errors.Is(err, ErrIndex) {
		t.Fatalf("Get(0) after Clear: %v", err)
	}
}
