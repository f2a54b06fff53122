package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/shmkit/shmkit/shmnet"
)

// The rpc pattern: HTTP GETs of a 2-byte body and gRPC unary calls (the
// health service's Check) from 1 and 8 client processes to one server
// process, over shmnet, a Unix socket and loopback TCP: the code users
// run unchanged, with only the dialer and listener swapped. The rate is
// requests per second, all clients together; every reply is checked.

// rpcClients are the client process counts of the rpc pattern.
var rpcClients = []int{1, 8}

// rpcQuick are the rpc rows of -quick (one client each).
var rpcQuick = []string{"http-shmnet", "http-unix", "grpc-shmnet", "grpc-unix"}

// envRPCServer, when set to "PROTO:KIND", makes shmbench run as an rpc
// server: it listens on KIND, prints its address and serves PROTO until
// its standard input closes.
const envRPCServer = "SHMBENCH_RPC_SERVER"

// rpcListen listens on kind (as the shmnet benchmarks do).
func rpcListen(kind string) (net.Listener, string, error) {
	switch kind {
	case "shmnet":
		name := fmt.Sprintf("shmbench-%d", os.Getpid())
		ln, err := shmnet.Listen(name)
		return ln, name, err
	case "unix":
		path := filepath.Join(os.TempDir(), fmt.Sprintf("shmbench-rpc-%d.sock", os.Getpid()))
		os.Remove(path)
		ln, err := net.Listen("unix", path)
		return ln, path, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	return ln, ln.Addr().String(), nil
}

// rpcDial dials what rpcListen returned.
func rpcDial(ctx context.Context, kind, addr string) (net.Conn, error) {
	switch kind {
	case "shmnet":
		return shmnet.Dial(ctx, addr)
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

// rpcServerMain is the server process.
func rpcServerMain(spec string) int {
	proto, kind, _ := cutColonSpec(spec)
	ln, addr, err := rpcListen(kind)
	if err != nil {
		fmt.Fprintln(os.Stderr, "shmbench rpc server:", err)
		return 1
	}
	fmt.Println(addr)
	go func() { // our parent's end of stdin closes when it stops or dies
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	if proto == "http" {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /small", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
		err = http.Serve(ln, mux)
	} else {
		s := grpc.NewServer()
		healthpb.RegisterHealthServer(s, health.NewServer()) // "" is SERVING
		err = s.Serve(ln)
	}
	fmt.Fprintln(os.Stderr, "shmbench rpc server:", err)
	return 1
}

func cutColonSpec(s string) (a, b string, ok bool) {
	for i := range len(s) {
		if s[i] == ':' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// rpcServers are the run's servers, one per PROTO:KIND, started on first
// use and stopped at the end of the run.
var rpcServers struct {
	sync.Mutex
	m map[string]*rpcServer
}

type rpcServer struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
}

// startRPCServer returns the address of the run's PROTO:KIND server.
func startRPCServer(spec string) (string, error) {
	rpcServers.Lock()
	defer rpcServers.Unlock()
	if s, ok := rpcServers.m[spec]; ok {
		return s.addr, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envRPCServer+"="+spec)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", err
	}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		io.Copy(io.Discard, out)
	}()
	select {
	case addr, ok := <-line:
		if !ok || addr == "" {
			stdin.Close()
			cmd.Wait()
			return "", errors.New("rpc server exited at start")
		}
		if rpcServers.m == nil {
			rpcServers.m = map[string]*rpcServer{}
		}
		rpcServers.m[spec] = &rpcServer{cmd: cmd, stdin: stdin, addr: addr}
		return addr, nil
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		return "", errors.New("rpc server did not start within 10 s")
	}
}

// stopRPCServers stops the run's servers; run calls it at the end.
func stopRPCServers() {
	rpcServers.Lock()
	defer rpcServers.Unlock()
	for spec, s := range rpcServers.m {
		s.stdin.Close()
		done := make(chan struct{})
		go func() { s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			s.cmd.Process.Kill()
			<-done
		}
		delete(rpcServers.m, spec)
	}
}

// rpcTransport is one protocol over one kind of connection.
type rpcTransport struct{ proto, kind string }

func init() {
	for _, proto := range []string{"http", "grpc"} {
		for _, kind := range []string{"shmnet", "unix", "tcp"} {
			register(&rpcTransport{proto: proto, kind: kind})
		}
	}
}

// Spec implements Transport.
func (t *rpcTransport) Spec() Spec {
	s := Spec{Name: t.proto + "-" + t.kind, Kind: KindIPC, NoProducer: true, NoPin: true,
		Patterns: []Pattern{PatRPC}, Note: "client and server processes left to the scheduler"}
	over := map[string]string{"shmnet": "shmnet (shared-memory rings)", "unix": "a Unix domain socket", "tcp": "loopback TCP"}[t.kind]
	if t.kind == "shmnet" {
		s.Kind = KindShmkit
	}
	if t.proto == "http" {
		s.Desc = "net/http GET of a 2-byte body over " + over + ", one keep-alive connection per client process"
		s.Batching = "none: one request and one response per call"
	} else {
		s.Desc = "gRPC unary call (health Check) over " + over + ", one client connection per client process"
		s.Batching = "none: one call and its reply per call (HTTP/2 frames)"
	}
	return s
}

// Unavailable implements Transport.
func (t *rpcTransport) Unavailable() string {
	if t.kind == "shmnet" {
		return shmUnavailable()
	}
	return ""
}

// Setup implements Transport: the run's server for this row.
func (t *rpcTransport) Setup(m *Measurement) (*Setup, error) {
	addr, err := startRPCServer(t.proto + ":" + t.kind)
	if err != nil {
		return nil, err
	}
	return &Setup{Args: map[string]string{"addr": addr}}, nil
}

// Open implements Transport: one client, connected.
func (t *rpcTransport) Open(env *PeerEnv) ([]Endpoint, error) {
	addr := env.Args["addr"]
	dial := func(ctx context.Context) (net.Conn, error) { return rpcDial(ctx, t.kind, addr) }
	e := &rpcEndpoint{}
	if t.proto == "http" {
		tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) }}
		e.http = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	} else {
		conn, err := grpc.NewClient("passthrough:///bench",
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return dial(ctx) }),
			grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, err
		}
		e.conn, e.grpc = conn, healthpb.NewHealthClient(conn)
	}
	if _, err := e.Recv(); err != nil { // connect before "ready"
		e.Close()
		return nil, err
	}
	return []Endpoint{e}, nil
}

type rpcEndpoint struct {
	http *http.Client
	conn *grpc.ClientConn
	grpc healthpb.HealthClient
	buf  [16]byte
}

// Send implements Endpoint.
func (e *rpcEndpoint) Send(uint64) error { return errUnsupported }

// Recv makes one request and checks its reply.
func (e *rpcEndpoint) Recv() (uint64, error) {
	if e.http != nil {
		resp, err := e.http.Get("http://bench/small")
		if err != nil {
			return 0, err
		}
		n, err := io.ReadFull(resp.Body, e.buf[:2])
		resp.Body.Close()
		if err != nil || n != 2 || string(e.buf[:2]) != "ok" || resp.StatusCode != 200 {
			return 0, fmt.Errorf("reply %d %q: %v", resp.StatusCode, e.buf[:n], err)
		}
		return 0, nil
	}
	resp, err := e.grpc.Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil {
		return 0, err
	}
	if resp.Status != healthpb.HealthCheckResponse_SERVING {
		return 0, fmt.Errorf("status %v", resp.Status)
	}
	return 0, nil
}

// Close implements Endpoint.
func (e *rpcEndpoint) Close() error {
	if e.http != nil {
		e.http.Transport.(*http.Transport).CloseIdleConnections()
		return nil
	}
	return e.conn.Close()
}

// shmnetTransport is a raw shmnet.Conn, for the ping-pong pattern: the
// pong peer (started first) listens, the ping peer dials; a
// message is written whole and read with io.ReadFull, as a program using
// net.Conn would.
type shmnetTransport struct{}

func init() { register(&shmnetTransport{}) }

// Spec implements Transport.
func (*shmnetTransport) Spec() Spec {
	return Spec{Name: "shmnet", Kind: KindShmkit, StartInOrder: true,
		Desc:     "shmnet.Conn (net.Conn over a shmkit pipe), Write and io.ReadFull of each message",
		Patterns: []Pattern{PatPingPong},
		Batching: "none: one Write and one ReadFull per message"}
}

// Unavailable implements Transport.
func (*shmnetTransport) Unavailable() string { return shmUnavailable() }

// Setup implements Transport.
func (*shmnetTransport) Setup(m *Measurement) (*Setup, error) {
	return &Setup{Args: map[string]string{"name": segName("shmnet")}}, nil
}

// Open implements Transport: the first peer started listens (and
// accepts on first use), the second dials.
func (*shmnetTransport) Open(env *PeerEnv) ([]Endpoint, error) {
	e := &shmnetEndpoint{msg: make([]byte, env.M.Size), buf: make([]byte, env.M.Size)}
	if env.Role == rolePong {
		ln, err := shmnet.Listen(env.Args["name"])
		if err != nil {
			return nil, err
		}
		e.ln = ln
		return []Endpoint{e}, nil
	}
	c, err := shmnet.Dial(context.Background(), env.Args["name"])
	if err != nil {
		return nil, err
	}
	e.c = c
	return []Endpoint{e}, nil
}

type shmnetEndpoint struct {
	ln       *shmnet.Listener
	c        net.Conn
	msg, buf []byte
}

func (e *shmnetEndpoint) conn() (net.Conn, error) {
	if e.c == nil {
		c, err := e.ln.Accept()
		if err != nil {
			return nil, err
		}
		e.c = c
		e.ln.Close()
	}
	return e.c, nil
}

// Send implements Endpoint.
func (e *shmnetEndpoint) Send(seq uint64) error {
	c, err := e.conn()
	if err != nil {
		return err
	}
	putSeq(e.msg, seq)
	_, err = c.Write(e.msg)
	return err
}

// Recv implements Endpoint.
func (e *shmnetEndpoint) Recv() (uint64, error) {
	c, err := e.conn()
	if err != nil {
		return 0, err
	}
	if _, err := io.ReadFull(c, e.buf); err != nil {
		return 0, err
	}
	return getSeq(e.buf), nil
}

// Close implements Endpoint.
func (e *shmnetEndpoint) Close() error {
	if e.c != nil {
		return e.c.Close()
	}
	return e.ln.Close()
}
