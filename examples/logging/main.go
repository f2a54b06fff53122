// Command logging shows a worker's log records reaching the parent, the
// analogue of Python's multiprocessing.log_to_stderr and get_logger:
//
//	import logging
//	import multiprocessing
//
//	def worker(num):
//	    logger = multiprocessing.get_logger()
//	    logger.info('starting %d', num)
//	    logger.debug('not shown: the level is INFO')
//	    logger.warning('done %d', num)
//
//	if __name__ == '__main__':
//	    logger = multiprocessing.log_to_stderr()
//	    logger.setLevel(logging.INFO)
//	    procs = [multiprocessing.Process(target=worker, args=(i,)) for i in range(3)]
//	    for p in procs:
//	        p.start()
//	    for p in procs:
//	        p.join()
//
// A worker logs with the ordinary log/slog functions: proc.Main sets the
// worker's slog.Default to send each record through a ring to the parent,
// which hands it to Config.Logger (default: the parent's slog.Default) with
// the attributes pid and worker added. Records are records, not text to be
// parsed: the parent's handler formats them (here slog's text format on
// standard output, without the time). Only levels the parent's logger is
// enabled for are sent at all, so the Debug record never leaves the worker.
//
// Each worker's records arrive in order; how the three workers' records
// interleave depends on scheduling.
//
// Run it with: go run ./examples/logging
package main

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"

	"github.com/shmkit/shmkit/proc"
)

var worker = proc.Register("worker", func(ctx context.Context, args *proc.Args) error {
	var num int
	if err := args.Decode(0, &num); err != nil {
		return err
	}
	slog.Info("starting", "num", num)
	slog.Debug("not sent: the parent's logger is at Info")
	slog.Warn("done", "num", num, "square", num*num)
	return nil
})

func main() {
	proc.Main()
	ctx := context.Background()

	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		Level: slog.LevelInfo,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{} // drop the time, to keep the output short
			}
			return a
		},
	}))

	var procs []*proc.Process
	for i := range 3 {
		cfg := proc.Config{Name: fmt.Sprintf("worker-%d", i), Logger: logger}
		p, err := worker.StartWith(ctx, cfg, i)
		if err != nil {
			log.Fatal(err)
		}
		procs = append(procs, p)
	}
	for _, p := range procs {
		// Wait returns once every record of the worker has been handled.
		if err := p.Wait(); err != nil {
			log.Fatal(err)
		}
	}
	logger.Info("all workers joined", "pid", os.Getpid())
}
