package proc_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/shmkit/shmkit/array"
	"github.com/shmkit/shmkit/proc"
	"github.com/shmkit/shmkit/value"
)

// Workers are registered at package level, so that the re-executed binary
// registers them too before proc.Main dispatches. (In a program, main
// calls proc.Main first; these examples run in a test binary whose
// TestMain does.)
var (
	counter = proc.Register("example-count", func(ctx context.Context, args *proc.Args) error {
		total, err := proc.Object(ctx, args, 0, value.OpenFile[int64])
		if err != nil {
			return err
		}
		defer total.Close()
		var n int64
		if err := args.Decode(1, &n); err != nil {
			return err
		}
		return total.Update(ctx, func(v *int64) { *v += n })
	})

	fill = proc.Register("example-fill", func(ctx context.Context, args *proc.Args) error {
		num, err := proc.Object(ctx, args, 0, value.OpenFile[float64])
		if err != nil {
			return err
		}
		defer num.Close()
		arr, err := proc.Object(ctx, args, 1, array.OpenFile[int32])
		if err != nil {
			return err
		}
		defer arr.Close()
		if err := num.Store(ctx, 3.14); err != nil {
			return err
		}
		arr.Set(0, 42)
		fmt.Println("child: done")
		return nil
	})

	greeter = proc.Register("example-greet", func(ctx context.Context, args *proc.Args) error {
		var who string
		if err := args.Decode(0, &who); err != nil {
			return err
		}
		slog.Info("hello", "who", who)
		if who == "" {
			return errors.New("nobody to greet")
		}
		return nil
	})
)

// Start three workers, each adding to a shared Value, and join them.
func ExampleFunc_Start() {
	ctx := context.Background()
	total, err := value.CreateAnonymous[int64](0)
	if err != nil {
		panic(err)
	}
	defer total.Close()
	var workers []*proc.Process
	for i := range 3 {
		p, err := counter.Start(ctx, total, int64(10*(i+1)))
		if err != nil {
			panic(err)
		}
		workers = append(workers, p)
	}
	for _, p := range workers {
		if err := p.Wait(); err != nil {
			panic(err)
		}
	}
	n, _ := total.Load(ctx)
	fmt.Println("total:", n)
	// Output: total: 60
}

// A child sets a shared float to 3.14 and arr[0] = 42 of an int32 array
// [0, 1, 2], as in Python's multiprocessing guide. Its standard output
// goes to the parent's os.Stdout as it is (no prefix), since Config.Stdout
// is given.
func ExampleObject() {
	ctx := context.Background()
	num, err := value.CreateAnonymous[float64](0)
	if err != nil {
		panic(err)
	}
	defer num.Close()
	arr, err := array.CreateAnonymousFrom([]int32{0, 1, 2})
	if err != nil {
		panic(err)
	}
	defer arr.Close()
	p, err := fill.StartWith(ctx, proc.Config{Stdout: os.Stdout}, num, arr)
	if err != nil {
		panic(err)
	}
	if err := p.Wait(); err != nil {
		panic(err)
	}
	v, _ := num.Load(ctx)
	fmt.Println(v, arr.Slice())
	// Output:
	// child: done
	// 3.14 [42 1 2]
}

// A worker's slog records reach the parent's Logger with the worker's
// name and pid (removed here to keep the output fixed), and the error its
// function returns reaches Wait.
func ExampleProcess_Wait() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "pid" {
				return slog.Attr{}
			}
			return a
		},
	}))
	p, err := greeter.StartWith(context.Background(), proc.Config{Logger: logger}, "")
	if err != nil {
		panic(err)
	}
	err = p.Wait()
	var ee *proc.ExitError
	if errors.As(err, &ee) {
		fmt.Printf("exit code %d: %s\n", ee.Code, ee.Err)
	}
	// Output:
	// level=INFO msg=hello worker=example-greet who=""
	// exit code 1: nobody to greet
}
