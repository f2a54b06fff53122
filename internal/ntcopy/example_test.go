package ntcopy_test

import (
	"bytes"
	"fmt"

	"github.com/shmkit/shmkit/internal/ntcopy"
)

func ExampleCopy() {
	src := bytes.Repeat([]byte("shmkit"), 20000) // 120,000 bytes
	dst := make([]byte, len(src))
	ntcopy.Copy(dst, src) // non-temporal stores on amd64, fenced on return
	fmt.Println(bytes.Equal(dst, src))
	// Output: true
}
