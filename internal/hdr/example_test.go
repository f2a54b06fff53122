package hdr_test

import (
	"fmt"

	"github.com/shmkit/shmkit/internal/hdr"
)

func Example() {
	h := hdr.New()
	for v := int64(1); v <= 1000; v++ {
		h.Record(v * 1000) // e.g. nanoseconds
	}
	fmt.Println(h.Count(), h.Quantile(0.5), h.Quantile(0.99))
	// Output: 1000 501759 991231
}
