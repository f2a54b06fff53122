package list_test

import (
	"context"
	"fmt"
	"log"

	"github.com/shmkit/shmkit/list"
)

func Example() {
	ctx := context.Background()
	l, err := list.CreateAnonymous[int64]()
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Append(ctx, 1, 2, 3); err != nil {
		log.Fatal(err)
	}
	_, _ = l.Append(ctx, 100) // from another process, in Python's guide
	all, _ := l.Slice(0, l.Len())
	last, _ := l.Pop(ctx)
	fmt.Println(all, last, l.Len())
	// Output: [1 2 3 100] 100 3
}
