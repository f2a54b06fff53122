package dict_test

import (
	"context"
	"fmt"
	"log"

	"github.com/shmkit/shmkit/dict"
)

func Example() {
	ctx := context.Background()
	m, err := dict.CreateAnonymous[uint64, float64]()
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	if err := m.Store(ctx, 42, 9.5); err != nil {
		log.Fatal(err)
	}
	// Update runs under the key's shard lock: no lost updates across
	// processes.
	if _, _, err := m.Update(ctx, 42, func(old float64, ok bool) (float64, bool) { return old * 2, true }); err != nil {
		log.Fatal(err)
	}
	v, ok, err := m.Load(42)
	fmt.Println(v, ok, err, m.Len())
	// Output: 19 true <nil> 1
}

func ExampleBytes() {
	ctx := context.Background()
	b, err := dict.CreateAnonymousBytes(dict.WithMaxValue(4096))
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	_ = b.Store(ctx, "/index.html", []byte("<h1>hello</h1>"))
	page, ok, _ := b.Load("/index.html")
	_, missing, _ := b.Load("/nope")
	fmt.Printf("%s %v %v\n", page, ok, missing)
	// Output: <h1>hello</h1> true false
}
