package proc_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"syscall"
	"testing"

	"github.com/shmkit/shmkit/proc"
)

// TestPoolRetryIsolatesKiller: task 5 SIGKILLs its worker every time it
// runs. Its first death takes the tasks that shared the worker with it
// (that counts as their attempt), but retries travel alone on a worker
// that holds nothing else, so with Retries 1 only task 5 fails (after 2
// attempts) and every bystander gets its result; with Retries 0 exactly
// the tasks of task 5's chunk fail.
func TestPoolRetryIsolatesKiller(t *testing.T) {
	const killer = 5
	for _, tc := range []struct {
		retries, tasks int
		fail           []int
	}{
		// 10 tasks in chunks of 5: the worker holding 5..9 holds nothing
		// else when task 5 runs (0..4 ran before it, or elsewhere).
		{retries: 0, tasks: 10, fail: []int{5, 6, 7, 8, 9}},
		// More tasks: the chunk queued behind 5..9 dies too, and is retried.
		{retries: 1, tasks: 10, fail: []int{killer}},
		{retries: 1, tasks: 60, fail: []int{killer}},
		{retries: 3, tasks: 60, fail: []int{killer}},
	} {
		t.Run(fmt.Sprintf("retries=%d,tasks=%d", tc.retries, tc.tasks), func(t *testing.T) {
			p := poolNew(t, poolBehave, proc.PoolConfig{Workers: 2, ChunkSize: 5, Retries: tc.retries})
			ctx := context.Background()
			for run := range 3 {
				in := make([]poolOp, tc.tasks)
				for i := range in {
					in[i] = poolOp{X: int64(i)}
				}
				in[killer].Op = opKill
				out, err := p.Map(ctx, in)
				var failed []int
				for _, te := range proc.TaskErrors(err) {
					var wd *proc.WorkerDiedError
					if !errors.As(te, &wd) || wd.Index != te.Index || wd.Signal != syscall.SIGKILL {
						t.Fatalf("run %d: task %d: unexpected error %v", run, te.Index, te)
					}
					want := tc.retries + 1
					if te.Index != killer {
						want = 1 // only when it is not retried
					}
					if wd.Attempts != want {
						t.Errorf("run %d: task %d: %v: attempts %d, want %d", run, te.Index, te, wd.Attempts, want)
					}
					failed = append(failed, te.Index)
				}
				if !slices.Equal(failed, tc.fail) {
					t.Fatalf("run %d: failed tasks %v, want %v (error %v)", run, failed, tc.fail, err)
				}
				for i, o := range out {
					want := int64(i * i)
					if slices.Contains(tc.fail, i) {
						want = 0
					}
					if o.Y != want {
						t.Fatalf("run %d: out[%d] = %+v, want %d", run, i, o, want)
					}
				}
			}
			if n := proc.PoolDuplicates(p); n != 0 {
				t.Fatalf("%d duplicate results", n)
			}
		})
	}
}

func TestWorkerDiedErrorMessage(t *testing.T) {
	for _, tc := range []struct {
		e    proc.WorkerDiedError
		want string
	}{
		{proc.WorkerDiedError{Pid: 42, Code: -1, Signal: syscall.SIGKILL, Index: 7, Attempts: 1},
			"proc: worker pid 42 killed by SIGKILL while holding task 7"},
		{proc.WorkerDiedError{Pid: 42, Code: -1, Signal: syscall.SIGSEGV, Index: 0, Attempts: 3},
			"proc: worker pid 42 killed by SIGSEGV while holding task 0 (attempt 3)"},
		{proc.WorkerDiedError{Pid: 42, Code: -1, Signal: syscall.Signal(200), Index: 1, Attempts: 1},
			"proc: worker pid 42 killed by signal 200 while holding task 1"},
		{proc.WorkerDiedError{Pid: 42, Code: 3, Index: 1, Attempts: 2},
			"proc: worker pid 42 exited with code 3 while holding task 1 (attempt 2)"},
		{proc.WorkerDiedError{Pid: 42, Code: 7, Index: 5, BeforeStart: true},
			"proc: worker pid 42 exited with code 7 before it took a task (workers keep dying at start); task 5 never ran"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.e, got, tc.want)
		}
	}
}

func TestTaskErrors(t *testing.T) {
	if tes := proc.TaskErrors(nil); tes != nil {
		t.Fatalf("TaskErrors(nil) = %v", tes)
	}
	if tes := proc.TaskErrors(context.Canceled); tes != nil {
		t.Fatalf("TaskErrors(context.Canceled) = %v", tes)
	}
	one := &proc.TaskError{Index: 3, Err: proc.ErrClosed}
	if tes := proc.TaskErrors(one); len(tes) != 1 || tes[0] != one {
		t.Fatalf("TaskErrors(one) = %v", tes)
	}
	if tes := proc.TaskErrors(fmt.Errorf("wrapped: %w", errors.Join(one, one))); len(tes) != 2 || tes[0] != one || tes[1] != one {
		t.Fatalf("TaskErrors(wrapped join) = %v", tes)
	}

	// Map's own error: the failed tasks in index order, the same values.
	p := poolNew(t, poolBehave, proc.PoolConfig{Workers: 2, ChunkSize: 4})
	ctx := context.Background()
	in := make([]poolOp, 50)
	var want []int
	for i := range in {
		in[i] = poolOp{X: int64(i)}
		switch i % 7 {
		case 2:
			in[i].Op = opPanic
			want = append(want, i)
		case 5:
			in[i].Op = opError
			want = append(want, i)
		}
	}
	_, err := p.Map(ctx, in)
	tes := proc.TaskErrors(err)
	joined := err.(interface{ Unwrap() []error }).Unwrap()
	if len(tes) != len(joined) {
		t.Fatalf("%d TaskErrors, the join has %d", len(tes), len(joined))
	}
	for k, te := range tes {
		if te != joined[k] || te.Index != want[k] {
			t.Fatalf("TaskErrors[%d] = %v (index %d), want the join's, index %d", k, te, te.Index, want[k])
		}
		if (te.Index%7 == 2) != errors.Is(te, proc.ErrPanic) {
			t.Fatalf("task %d: %v", te.Index, te)
		}
	}
	if _, err := p.Map(ctx, []poolOp{{X: 1}}); err != nil || proc.TaskErrors(err) != nil {
		t.Fatalf("a Map without failures: %v, %v", err, proc.TaskErrors(err))
	}
}
