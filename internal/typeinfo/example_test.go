package typeinfo_test

import (
	"errors"
	"fmt"

	"github.com/shmkit/shmkit/internal/typeinfo"
)

type Sample struct {
	Seq   uint64
	Temp  float32
	Flags [4]bool
}

type Bad struct {
	Seq  uint64
	Name string
}

func ExampleOf() {
	size, align, _, err := typeinfo.Of[Sample]()
	fmt.Println(size, align, err)

	_, _, _, err = typeinfo.Of[Bad]()
	fmt.Println(errors.Is(err, typeinfo.ErrNotPlain))
	fmt.Println(err)
	// Output:
	// 16 8 <nil>
	// true
	// typeinfo: typeinfo_test.Bad.Name: string: strings hold a pointer to their bytes (use a fixed-size [N]byte array)
}
