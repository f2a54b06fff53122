package testproc_test

import (
	"testing"

	"github.com/shmkit/shmkit/internal/testproc"
)

// The package's tests dispatch in TestMain, which this package's own
// tests already define:
//
//	func TestMain(m *testing.M) { testproc.Main(m) }

// A helper, registered before TestMain runs. In the re-executed test
// binary it runs instead of the tests; its exit code is the process's.
func init() {
	testproc.Register("greet", func(args []string) int {
		testproc.Printf("hello, %s", args[0])
		return 0
	})
}

// testGreet is the body of a test (TestGreet runs it): start the helper in
// a new process, synchronise on the line it prints, wait for its exit.
func testGreet(t *testing.T) {
	p := testproc.Start(t, "greet", "world")
	p.Expect(t, "hello, world")
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
}

// Example shows the whole pattern: register a helper in init, call Main
// from TestMain, and start the helper from a test (testGreet).
func Example() {
	_ = testGreet
}
