package proc

import (
	"context"
	"errors"
	"testing"
)

// TestNoMain: Start in a binary whose Main never ran is refused (the
// child would run main again). The test binary did call Main, so the
// test pretends it did not.
func TestNoMain(t *testing.T) {
	registry.mu.Lock()
	registry.mainRan = false
	registry.mu.Unlock()
	defer markMain()
	f := Register("nomain", func(ctx context.Context, a *Args) error { return nil })
	defer func() {
		registry.mu.Lock()
		delete(registry.funcs, "nomain")
		registry.mu.Unlock()
	}()
	if p, err := f.Start(context.Background()); !errors.Is(err, ErrNoMain) {
		if p != nil {
			p.Kill()
		}
		t.Fatalf("Start without Main = %v, want ErrNoMain", err)
	}
}
