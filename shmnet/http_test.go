package shmnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
)

func init() {
	// http-server NAME: serve HTTP on NAME: POST /echo answers with the
	// request's body; GET /stall writes half a response and stops.
	testproc.Register("http-server", func(args []string) int {
		ln, err := Listen(args[0])
		if err != nil {
			return fail("listen: %v", err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Length", fmt.Sprint(len(b)))
			w.Write(b)
		})
		mux.HandleFunc("GET /stall", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1000000")
			w.Write(make([]byte, 1000))
			w.(http.Flusher).Flush()
			testproc.Printf("stalled")
			select {}
		})
		testproc.Printf("ready")
		return fail("serve: %v", http.Serve(ln, mux))
	})

	// http-client NAME: POST to NAME a body of which it writes half, say
	// so, and wait to be killed.
	testproc.Register("http-client", func(args []string) int {
		client := &http.Client{Transport: &http.Transport{DialContext: Dialer(args[0])}}
		pr, pw := io.Pipe()
		go func() {
			pw.Write(make([]byte, 1<<20))
			testproc.Printf("half")
			select {}
		}()
		req, _ := http.NewRequest("POST", "http://x/echo", pr)
		req.ContentLength = 2 << 20
		_, err := client.Do(req)
		return fail("request returned: %v", err)
	})
}

// bodySize is request i's body size: mostly small, every 100th 1 MiB.
func bodySize(i int) int {
	switch {
	case i%100 == 99:
		return 1 << 20
	case i%10 == 9:
		return 64 << 10
	}
	return []int{0, 1, 100, 1000, 4096, 10000, 333, 7, 12345}[i%9]
}

// TestHTTPCrossProcess sends requests to an http.Server in another
// process through shmnet, with bodies from 0 B to 1 MiB, each echoed and
// checked, from 8 concurrent clients.
func TestHTTPCrossProcess(t *testing.T) {
	n := 10000
	if testing.Short() {
		n = 1000
	}
	name := testName(t)
	p := testproc.Start(t, "http-server", name)
	defer p.Kill()
	p.Expect(t, "ready")
	tr := &http.Transport{DialContext: Dialer(name), MaxIdleConnsPerHost: 8}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	var bytesMoved int64
	start := time.Now()
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < n; i += 8 {
				body := make([]byte, bodySize(i))
				for j := range body {
					body[j] = byte(i + j*31)
				}
				resp, err := client.Post("http://api/echo", "application/octet-stream", bytes.NewReader(body))
				if err == nil {
					var got []byte
					got, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && (resp.StatusCode != 200 || !bytes.Equal(got, body)) {
						err = fmt.Errorf("status %d, %d bytes back of %d, equal %v", resp.StatusCode, len(got), len(body), bytes.Equal(got, body))
					}
				}
				mu.Lock()
				if err != nil {
					failures = append(failures, fmt.Sprintf("request %d: %v", i, err))
				}
				bytesMoved += 2 * int64(len(body))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	d := time.Since(start)
	if len(failures) > 0 {
		t.Fatalf("%d of %d requests failed, first: %s", len(failures), n, failures[0])
	}
	t.Logf("%d requests in %v (%.0f/s), %.1f MB of bodies", n, d.Round(time.Millisecond), float64(n)/d.Seconds(), float64(bytesMoved)/1e6)
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// memfdMaps counts this process's mappings of anonymous segments.
func memfdMaps(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "memfd:")
}

// settle waits (bounded) until f reports at most want, and returns its
// last value.
func settle(want int, f func() int) int {
	var v int
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if v = f(); v <= want {
			break
		}
	}
	return v
}

// TestHTTPServerKilled kills the server in the middle of a response: the
// client's read of the body fails promptly, and nothing of the connection
// is left in the client process.
func TestHTTPServerKilled(t *testing.T) {
	name := testName(t)
	fds, maps, gs := openFDs(t), memfdMaps(t), runtime.NumGoroutine()
	p := testproc.Start(t, "http-server", name)
	p.Expect(t, "ready")
	tr := &http.Transport{DialContext: Dialer(name)}
	client := &http.Client{Transport: tr}
	resp, err := client.Get("http://api/stall")
	if err != nil {
		t.Fatal(err)
	}
	p.Expect(t, "stalled")
	errc := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(resp.Body)
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	p.Kill()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("the body of a killed server read to the end")
		}
		t.Logf("body read failed %v after the kill: %v", time.Since(start).Round(time.Microsecond), err)
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("the client took %v to notice", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the client still reads 5 s after the server died")
	}
	resp.Body.Close()
	tr.CloseIdleConnections()
	if v := settle(fds, func() int { return openFDs(t) }); v > fds {
		t.Errorf("%d descriptors open, %d before", v, fds)
	}
	if v := settle(maps, func() int { return memfdMaps(t) }); v > maps {
		t.Errorf("%d segment mappings, %d before", v, maps)
	}
	if v := settle(gs, runtime.NumGoroutine); v > gs {
		t.Errorf("%d goroutines, %d before", v, gs)
	}
}

// TestHTTPClientKilled kills a client in the middle of sending its
// request body: the server's handler gets an error reading it, and the
// server process keeps no descriptor, mapping or goroutine of it.
func TestHTTPClientKilled(t *testing.T) {
	name := testName(t)
	ln, err := Listen(name)
	if err != nil {
		t.Fatal(err)
	}
	fds, maps, gs := openFDs(t), memfdMaps(t), runtime.NumGoroutine()
	handlerErr := make(chan error, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		handlerErr <- err
	})}
	go srv.Serve(ln)
	p := testproc.Start(t, "http-client", name)
	p.Expect(t, "half")
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	p.Kill()
	select {
	case err := <-handlerErr:
		if err == nil || errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("the handler read a killed client's half body as %v", err)
		}
		t.Logf("handler's read failed %v after the kill: %v", time.Since(start).Round(time.Microsecond), err)
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("the server took %v to notice", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the handler still reads 5 s after the client died")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if v := settle(fds, func() int { return openFDs(t) }); v > fds {
		t.Errorf("%d descriptors open, %d before (the listener's included)", v, fds)
	}
	if v := settle(maps, func() int { return memfdMaps(t) }); v > maps {
		t.Errorf("%d segment mappings, %d before", v, maps)
	}
	if v := settle(gs, runtime.NumGoroutine); v > gs {
		t.Errorf("%d goroutines, %d before", v, gs)
	}
}
