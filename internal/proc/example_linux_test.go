//go:build linux

package proc_test

import (
	"fmt"

	"github.com/shmkit/shmkit/internal/proc"
)

// A process records its identity (in shared memory, say); a peer later
// asks whether that process still runs. An identity whose pid now belongs
// to another process (a different start time) is not alive.
func Example() {
	me := proc.Self()
	fmt.Println("self alive:", proc.Alive(me))
	reused := proc.ID{Pid: me.Pid, Start: me.Start + 1} // an earlier owner of our pid
	fmt.Println("earlier owner of the pid alive:", proc.Alive(reused))
	// Output:
	// self alive: true
	// earlier owner of the pid alive: false
}
