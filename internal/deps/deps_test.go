package deps

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// core are the packages (shmnet with them) that must import nothing but the standard
// library, golang.org/x/sys and each other.
var core = []string{"shm", "sem", "value", "array", "ring", "proc", "dict", "list", "shmnet"}

func TestCoreDependencies(t *testing.T) {
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		goTool = "go"
	}
	args := []string{"list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}"}
	for _, p := range core {
		args = append(args, "github.com/shmkit/shmkit/"+p)
	}
	out, err := exec.Command(goTool, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	n := 0
	for _, p := range strings.Fields(string(out)) {
		n++
		if !strings.HasPrefix(p, "github.com/shmkit/shmkit/") && !strings.HasPrefix(p, "golang.org/x/sys/") {
			t.Errorf("a core package depends on %s", p)
		}
		if strings.HasPrefix(p, "github.com/shmkit/shmkit/cmd/") {
			t.Errorf("a core package depends on the command %s", p)
		}
	}
	if n < len(core) {
		t.Fatalf("go list printed %d packages, fewer than the %d core ones:\n%s", n, len(core), out)
	}
}
