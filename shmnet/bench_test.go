package shmnet

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/shmkit/shmkit/internal/testproc"
)

// The benchmarks run the server in a helper process and the client in
// the benchmark, over each transport in turn: shmnet, a Unix socket and
// loopback TCP, so that the rows compare like with like.
var benchKinds = []string{"shmnet", "unix", "tcp"}

// benchListen listens on kind: shmnet on a name, unix on a socket file,
// tcp on 127.0.0.1; it returns the listener and what the client dials.
func benchListen(kind string) (net.Listener, string, error) {
	switch kind {
	case "shmnet":
		name := fmt.Sprintf("bench-%d-%d", os.Getpid(), time.Now().UnixNano())
		ln, err := Listen(name)
		return ln, name, err
	case "unix":
		path := filepath.Join(os.TempDir(), fmt.Sprintf("shmnet-bench-%d-%d.sock", os.Getpid(), time.Now().UnixNano()))
		ln, err := net.Listen("unix", path)
		return ln, path, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	return ln, ln.Addr().String(), nil
}

// benchDial dials what benchListen returned.
func benchDial(ctx context.Context, kind, addr string) (net.Conn, error) {
	switch kind {
	case "shmnet":
		return Dial(ctx, addr)
	case "unix":
		var d net.Dialer
		return d.DialContext(ctx, "unix", addr)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err == nil {
		c.(*net.TCPConn).SetNoDelay(true)
	}
	return c, err
}

func init() {
	// bench-server KIND WHAT: listen on KIND, print the address, and
	// serve WHAT: "echo" (copy each connection back), "http" (GET /small:
	// 2 bytes; GET /big: 1 MiB) or "grpc" (the health service).
	testproc.Register("bench-server", func(args []string) int {
		ln, addr, err := benchListen(args[0])
		if err != nil {
			return fail("listen: %v", err)
		}
		testproc.Printf("%s", addr)
		switch args[1] {
		case "echo":
			for {
				c, err := ln.Accept()
				if err != nil {
					return fail("accept: %v", err)
				}
				go func() { io.Copy(c, c); c.Close() }()
			}
		case "http":
			big := make([]byte, 1<<20)
			mux := http.NewServeMux()
			mux.HandleFunc("GET /small", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
			mux.HandleFunc("GET /big", func(w http.ResponseWriter, r *http.Request) { w.Write(big) })
			return fail("serve: %v", http.Serve(ln, mux))
		default:
			s := grpc.NewServer()
			healthpb.RegisterHealthServer(s, healthService{})
			return fail("serve: %v", s.Serve(ln))
		}
	})
}

// startServer starts a bench-server and returns what to dial.
func startServer(b *testing.B, kind, what string) string {
	p := testproc.Start(b, "bench-server", kind, what)
	b.Cleanup(p.Kill)
	return p.Line(b)
}

// BenchmarkPingPong is the round trip of a message over one raw
// connection to an echoing process (ns/op per round trip; p50 reported).
func BenchmarkPingPong(b *testing.B) {
	for _, size := range []int{64, 4096} {
		for _, kind := range benchKinds {
			b.Run(fmt.Sprintf("%dB/%s", size, kind), func(b *testing.B) {
				addr := startServer(b, kind, "echo")
				c, err := benchDial(context.Background(), kind, addr)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				msg, got := make([]byte, size), make([]byte, size)
				rtt := make([]time.Duration, 0, b.N)
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					msg[0] = byte(i)
					t0 := time.Now()
					if _, err := c.Write(msg); err != nil {
						b.Fatal(err)
					}
					if _, err := io.ReadFull(c, got); err != nil {
						b.Fatal(err)
					}
					rtt = append(rtt, time.Since(t0))
					if got[0] != byte(i) {
						b.Fatalf("round trip %d came back as %d", i, got[0])
					}
				}
				b.StopTimer()
				slices.Sort(rtt)
				b.ReportMetric(float64(rtt[len(rtt)/2].Nanoseconds()), "p50-ns")
			})
		}
	}
}

// httpClient is a client of kind to addr.
func httpClient(kind, addr string) *http.Client {
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) { return benchDial(ctx, kind, addr) }
	return &http.Client{Transport: &http.Transport{DialContext: dial, MaxIdleConnsPerHost: 64}}
}

// BenchmarkHTTP is GET requests of a 2-byte body from 1 and 8 concurrent
// clients, and of a 1 MiB body from one (ns/op per request; bytes/s for
// the large body).
func BenchmarkHTTP(b *testing.B) {
	for _, c := range []struct {
		name    string
		path    string
		clients int
	}{{"small/1", "/small", 1}, {"small/8", "/small", 8}, {"1MiB/1", "/big", 1}} {
		for _, kind := range benchKinds {
			b.Run(c.name+"/"+kind, func(b *testing.B) {
				addr := startServer(b, kind, "http")
				client := httpClient(kind, addr)
				defer client.Transport.(*http.Transport).CloseIdleConnections()
				want := 2
				if c.path == "/big" {
					want = 1 << 20
					b.SetBytes(int64(want))
				}
				get := func() error {
					resp, err := client.Get("http://bench" + c.path)
					if err != nil {
						return err
					}
					n, err := io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && n != int64(want) {
						err = fmt.Errorf("%d bytes, want %d", n, want)
					}
					return err
				}
				if err := get(); err != nil { // connect outside the timing
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.ResetTimer()
				parallel(b, c.clients, get)
			})
		}
	}
}

// BenchmarkGRPC is unary health checks from 1 and 8 concurrent callers on
// one client connection (ns/op per call).
func BenchmarkGRPC(b *testing.B) {
	for _, callers := range []int{1, 8} {
		for _, kind := range benchKinds {
			b.Run(fmt.Sprintf("unary/%d/%s", callers, kind), func(b *testing.B) {
				addr := startServer(b, kind, "grpc")
				conn, err := grpc.NewClient("passthrough:///bench",
					grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return benchDial(ctx, kind, addr) }),
					grpc.WithTransportCredentials(insecure.NewCredentials()))
				if err != nil {
					b.Fatal(err)
				}
				defer conn.Close()
				client := healthpb.NewHealthClient(conn)
				ctx := context.Background()
				call := func() error {
					resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: "ok-bench"})
					if err == nil && resp.Status != healthpb.HealthCheckResponse_SERVING {
						err = fmt.Errorf("status %v", resp.Status)
					}
					return err
				}
				if err := call(); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.ResetTimer()
				parallel(b, callers, call)
			})
		}
	}
}

// parallel runs b.N calls of fn from n goroutines.
func parallel(b *testing.B, n int, fn func() error) {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for g := range n {
		wg.Go(func() {
			for i := g; i < b.N; i += n {
				if err := fn(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// TestBenchServers runs each benchmark's set-up once, with a few
// operations, so that the benchmarks' servers and clients are known to
// work (and their helper is started in every run).
func TestBenchServers(t *testing.T) {
	for _, kind := range benchKinds {
		p := testproc.Start(t, "bench-server", kind, "echo")
		addr := p.Line(t)
		c, err := benchDial(context.Background(), kind, addr)
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte("ping over " + kind)
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != string(msg) {
			t.Fatalf("%s echo: %q %v", kind, got, err)
		}
		c.Close()
		p.Kill()

		p = testproc.Start(t, "bench-server", kind, "http")
		client := httpClient(kind, p.Line(t))
		resp, err := client.Get("http://bench/big")
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != 1<<20 {
			t.Fatalf("%s http: %d bytes, %v", kind, n, err)
		}
		client.Transport.(*http.Transport).CloseIdleConnections()
		p.Kill()

		p = testproc.Start(t, "bench-server", kind, "grpc")
		addr = p.Line(t)
		conn, err := grpc.NewClient("passthrough:///bench",
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return benchDial(ctx, kind, addr) }),
			grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		resp2, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{Service: "ok-x"})
		if err != nil || resp2.Status != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("%s grpc: %v %v", kind, resp2, err)
		}
		conn.Close()
		p.Kill()
	}
}
