// Command prefork is a prefork HTTP server: N worker processes accept on
// one port (SO_REUSEPORT, so the kernel spreads connections over them) and
// share, without Redis or a manager process,
//
//   - a request counter, a value.Value[int64] every worker adds to
//     atomically;
//   - per-path hit counts, a dict.Bytes (path → count) updated under the
//     path's shard lock;
//   - a cache, a dict.Bytes: /fib/N is computed by whichever worker is
//     asked first, and every other worker answers from the cache.
//
// The parent starts the workers (package proc), replaces one that dies,
// and on SIGINT or SIGTERM stops them gracefully (each drains its
// connections) and prints the total. This is what fasthttp's prefork docs
// warn about: in-memory state stops working once there are several
// processes; here it lives in shared memory and keeps working.
//
// Run it with: go run ./examples/prefork -workers 4
// then: curl localhost:8080/hello; curl localhost:8080/fib/35; curl localhost:8080/stats
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/dict"
	"github.com/shmkit/shmkit/proc"
	"github.com/shmkit/shmkit/value"
)

// shared is what every worker attaches to.
type shared struct {
	requests *value.Value[int64] // requests served, /stats excluded
	ready    *value.Value[int64] // workers listening
	hits     *dict.Bytes         // path → count (8 bytes, little-endian)
	cache    *dict.Bytes         // "fib/N" → decimal result
}

var worker = proc.Register("http-worker", func(ctx context.Context, args *proc.Args) error {
	var addr string
	if err := args.Decode(0, &addr); err != nil {
		return err
	}
	var s shared
	var err error
	if s.requests, err = proc.Object(ctx, args, 1, value.OpenFile[int64]); err != nil {
		return err
	}
	if s.ready, err = proc.Object(ctx, args, 2, value.OpenFile[int64]); err != nil {
		return err
	}
	if s.hits, err = proc.Object(ctx, args, 3, dict.OpenBytesFile); err != nil {
		return err
	}
	if s.cache, err = proc.Object(ctx, args, 4, dict.OpenBytesFile); err != nil {
		return err
	}

	ln, err := listen(ctx, addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	drained := make(chan error, 1)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		drained <- srv.Shutdown(sctx) // finish the requests in flight
	}()
	value.AtomicOf(s.ready).Add(1)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	// Serve returns as soon as Shutdown begins: wait for the requests in
	// flight to finish before the worker (and its process) ends.
	return <-drained
})

// listen binds addr with SO_REUSEPORT, so that every worker (and the
// parent, briefly, to learn a port chosen by the kernel) can bind it.
func listen(ctx context.Context, addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		return errors.Join(err, serr)
	}}
	return lc.Listen(ctx, "tcp", addr)
}

func (s *shared) handler() http.Handler {
	pid := strconv.Itoa(os.Getpid())
	mux := http.NewServeMux()
	count := func(next http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			// The path's count first: the request counter counts only
			// requests whose path was counted, so the two always agree.
			err := s.hits.Update(context.Background(), r.URL.Path, func(old []byte, ok bool) ([]byte, bool) {
				var n uint64
				if ok && len(old) == 8 {
					n = binary.LittleEndian.Uint64(old)
				}
				return binary.LittleEndian.AppendUint64(nil, n+1), true
			})
			if err != nil { // a path longer than 1 KiB, or the map full
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			value.AtomicOf(s.requests).Add(1)
			w.Header().Set("X-Worker", pid)
			next(w, r)
		}
	}
	mux.HandleFunc("GET /fib/{n}", count(func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.PathValue("n"))
		if err != nil || n < 0 || n > 90 {
			http.Error(w, "n: want 0 to 90", http.StatusBadRequest)
			return
		}
		key := "fib/" + strconv.Itoa(n)
		v, ok, err := s.cache.Load(key)
		state := "hit"
		if err == nil && !ok {
			// Computed by whoever is asked first; LoadOrStore keeps one
			// answer if two workers race.
			v, _, err = s.cache.LoadOrStore(r.Context(), key, []byte(strconv.FormatUint(fib(n), 10)))
			state = "miss"
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("X-Cache", state)
		fmt.Fprintf(w, "%s\n", v)
	}))
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		st := stats{Requests: value.AtomicOf(s.requests).Load(), Hits: map[string]uint64{}, Worker: os.Getpid()}
		err := s.hits.Range(func(path string, v []byte) bool {
			if len(v) == 8 {
				st.Hits[path] = binary.LittleEndian.Uint64(v)
			}
			return true
		})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(st)
	})
	mux.HandleFunc("GET /", count(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from worker %s: %s\n", pid, r.URL.Path)
	}))
	return mux
}

// stats is what /stats returns.
type stats struct {
	Requests int64             `json:"requests"` // every request but /stats
	Hits     map[string]uint64 `json:"hits"`     // by path
	Worker   int               `json:"worker"`   // the pid that answered
}

// fib is deliberately slow: the work the cache saves.
func fib(n int) uint64 {
	if n < 2 {
		return uint64(n)
	}
	if n > 30 {
		a, b := fib(29), fib(30)
		for range n - 30 {
			a, b = b, a+b
		}
		return b
	}
	return fib(n-1) + fib(n-2)
}

func main() {
	proc.Main()
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on (port 0: the kernel picks one)")
	workers := flag.Int("workers", runtime.NumCPU(), "worker processes")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, *addr, max(*workers, 1)); err != nil {
		log.Fatal(err)
	}
}

func serve(ctx context.Context, addr string, n int) error {
	requests, err := value.CreateAnonymous[int64](0)
	if err != nil {
		return err
	}
	defer requests.Close()
	ready, err := value.CreateAnonymous[int64](0)
	if err != nil {
		return err
	}
	defer ready.Close()
	hits, err := dict.CreateAnonymousBytes(dict.WithMaxBytes(16 << 20))
	if err != nil {
		return err
	}
	defer hits.Close()
	cache, err := dict.CreateAnonymousBytes(dict.WithMaxBytes(16 << 20))
	if err != nil {
		return err
	}
	defer cache.Close()

	// Learn the port first if the kernel is to choose it; this socket is
	// in the port's group only until the workers are up, before anyone
	// knows the address.
	ln, err := listen(ctx, addr)
	if err != nil {
		return err
	}
	addr = ln.Addr().String()

	// Not ctx: cancelling a Start's context kills the worker, and ours
	// are to stop gracefully, below.
	start := func() (*proc.Process, error) {
		return worker.Start(context.Background(), addr, requests, ready, hits, cache)
	}
	procs := make([]*proc.Process, n)
	for i := range procs {
		if procs[i], err = start(); err != nil {
			ln.Close()
			return err
		}
	}
	// Wait until every worker listens.
	for value.AtomicOf(ready).Load() < int64(n) {
		for _, p := range procs {
			select {
			case <-p.Done():
				ln.Close()
				return fmt.Errorf("worker %d exited at start: %w", p.Pid(), p.Wait())
			default:
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	ln.Close()
	pids := make([]string, n)
	for i, p := range procs {
		pids[i] = strconv.Itoa(p.Pid())
	}
	fmt.Printf("prefork: %d workers (pids %s) on http://%s\n", n, strings.Join(pids, " "), addr)

	// Supervise: replace a worker that dies, until we are told to stop.
	for ctx.Err() == nil {
		for i, p := range procs {
			select {
			case <-p.Done():
				if ctx.Err() != nil {
					break
				}
				log.Printf("worker %d died (%v); starting another", p.Pid(), p.Wait())
				// A replacement counts itself ready once it listens: the
				// count back at n says so.
				value.AtomicOf(ready).Add(-1)
				if procs[i], err = start(); err != nil {
					return err
				}
				for value.AtomicOf(ready).Load() < int64(n) && ctx.Err() == nil {
					select {
					case <-procs[i].Done():
						return fmt.Errorf("replacement worker %d exited at start: %w", procs[i].Pid(), procs[i].Wait())
					case <-time.After(5 * time.Millisecond):
					}
				}
				log.Printf("worker %d listening", procs[i].Pid())
			default:
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}

	// Stop: SIGTERM each worker, which drains its connections.
	for _, p := range procs {
		_ = p.Signal(syscall.SIGTERM)
	}
	var failed []error
	for _, p := range procs {
		if err := p.Wait(); err != nil {
			failed = append(failed, err)
		}
	}
	fmt.Printf("prefork: served %d requests over %d paths\n", value.AtomicOf(requests).Load(), hits.Len())
	return errors.Join(failed...)
}
