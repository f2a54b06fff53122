package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/shmkit/shmkit/bridge"
	"github.com/shmkit/shmkit/ring"
	"github.com/shmkit/shmkit/shm"
)

// startServer starts an embedded JetStream server with a stream S on s.>.
func startServer(t *testing.T) string {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	url := fmt.Sprintf("nats://127.0.0.1:%d", s.Addr().(*net.TCPAddr).Port)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}}); err != nil {
		t.Fatal(err)
	}
	return url
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func queue(t *testing.T, suffix string, mode ring.Mode) string {
	name := fmt.Sprintf("shmbridge-test-%d-%s-%s", os.Getpid(), t.Name(), suffix)
	q, err := ring.Create(name, ring.Config{Mode: mode, Capacity: 256, MaxMessage: 256})
	if err != nil {
		t.Fatal(err)
	}
	q.Close()
	t.Cleanup(func() { _ = ring.Unlink(name); _ = shm.Unlink(name + ".bridge-in") })
	return name
}

// Errors at start are clear and quick: no hang.
func TestStartErrors(t *testing.T) {
	url := startServer(t)
	spsc, mpmc := queue(t, "spsc", ring.SPSC), queue(t, "mpmc", ring.MPMC)
	ctx := context.Background()
	for _, tc := range []struct {
		args []string
		want string
		is   error
	}{
		{[]string{}, "usage", errUsage},
		{[]string{"out", "-subject", "s.x"}, "-queue is required", errUsage},
		{[]string{"in", "-queue", spsc}, "-stream and -consumer", errUsage},
		{[]string{"out", "-queue", spsc, "-subject", "s.x", "-nats", "nats://127.0.0.1:1", "-connect-timeout", "1s"}, "connecting to nats://127.0.0.1:1", nil},
		{[]string{"out", "-queue", spsc, "-subject", "s.x", "-nats", url, "-creds", "/nonexistent.creds"}, "credentials", nil},
		{[]string{"out", "-queue", "no-such-queue", "-subject", "s.x", "-nats", url}, "queue \"no-such-queue\"", nil},
		{[]string{"out", "-queue", mpmc, "-subject", "s.x", "-nats", url}, "must be SPSC", bridge.ErrQueueKind},
		{[]string{"out", "-queue", spsc, "-subject", "nowhere", "-nats", url}, "no such JetStream stream", bridge.ErrNoStream},
		{[]string{"in", "-queue", spsc, "-stream", "NOPE", "-consumer", "c", "-nats", url}, "no such JetStream stream", bridge.ErrNoStream},
	} {
		start := time.Now()
		err := run(ctx, tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%v: took %v", tc.args, d)
		}
	}
}

// Both directions from flags, with the status line and the metrics.
func TestRun(t *testing.T) {
	url := startServer(t)
	qa, qb := queue(t, "a", ring.SPSC), queue(t, "b", ring.SPSC)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var outLog, inLog syncBuf
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		errs <- run(ctx, []string{"out", "-queue", qa, "-nats", url, "-subject", "s.x", "-status", "100ms", "-metrics", addr}, &outLog)
	}()
	go func() {
		defer wg.Done()
		errs <- run(ctx, []string{"in", "-queue", qb, "-nats", url, "-stream", "S", "-consumer", "c", "-log", "json"}, &inLog)
	}()
	pq, err := ring.Open(ctx, qa)
	if err != nil {
		t.Fatal(err)
	}
	defer pq.Close()
	cq, err := ring.Open(ctx, qb)
	if err != nil {
		t.Fatal(err)
	}
	defer cq.Close()
	const n = 2000
	for i := range n {
		if err := pq.Put(ctx, []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 256)
	for i := range n {
		gctx, gcancel := context.WithTimeout(ctx, 10*time.Second)
		k, err := cq.Get(gctx, buf)
		gcancel()
		if err != nil || string(buf[:k]) != fmt.Sprint(i) {
			t.Fatalf("message %d: %q, %v\nout: %s\nin: %s", i, buf[:k], err, outLog.String(), inLog.String())
		}
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := fmt.Sprintf(`shmbridge_messages_total{direction="out",queue=%q} %d`, qa, n)
	if !strings.Contains(string(body), want) {
		t.Errorf("metrics lack %s:\n%s", want, body)
	}
	time.Sleep(250 * time.Millisecond)
	if s := outLog.String(); !strings.Contains(s, fmt.Sprintf("shmbridge out: %d messages", n)) {
		t.Errorf("no status line with %d messages:\n%s", n, s)
	}
	if s := inLog.String(); !strings.Contains(s, `"msg":"started"`) {
		t.Errorf("in: no JSON log:\n%s", s)
	}
	cancel()
	wg.Wait()
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("run after cancel: %v", err)
		}
	}
}

// Credentials the server refuses, or that cannot be read, fail at start
// with the server's or the parser's reason: no hang, no reconnect loop.
func TestBadCredentials(t *testing.T) {
	// A server that knows one nkey user, not the one in the creds file.
	known, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	knownPub, _ := known.PublicKey()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		NoLog: true, NoSigs: true, Nkeys: []*server.NkeyUser{{Nkey: knownPub}}})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	url := fmt.Sprintf("nats://127.0.0.1:%d", s.Addr().(*net.TCPAddr).Port)

	// A well-formed creds file: a user JWT signed by an account the server
	// has never heard of, and the user's seed.
	user, _ := nkeys.CreateUser()
	userPub, _ := user.PublicKey()
	seed, _ := user.Seed()
	account, _ := nkeys.CreateAccount()
	claims := jwt.NewUserClaims(userPub)
	token, err := claims.Encode(account)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := jwt.FormatUserConfig(token, seed)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	unknown := dir + "/unknown.creds"
	garbage := dir + "/garbage.creds"
	if err := os.WriteFile(unknown, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(garbage, []byte("not a credentials file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	spsc := queue(t, "spsc", ring.SPSC)
	for _, tc := range []struct {
		args []string
		want []string
		is   error
	}{
		{[]string{"out", "-queue", spsc, "-subject", "s.x", "-nats", url, "-creds", unknown}, []string{"connecting to " + url, "Authorization Violation"}, nats.ErrAuthorization},
		{[]string{"in", "-queue", spsc, "-stream", "S", "-consumer", "c", "-nats", url, "-creds", unknown}, []string{"connecting to " + url, "Authorization Violation"}, nats.ErrAuthorization},
		{[]string{"out", "-queue", spsc, "-subject", "s.x", "-nats", url, "-creds", garbage}, []string{"connecting to " + url, "no nkey seed found"}, nil},
		{[]string{"out", "-queue", spsc, "-subject", "s.x", "-nats", url}, []string{"connecting to " + url, "Authorization Violation"}, nats.ErrAuthorization},
	} {
		start := time.Now()
		err := run(context.Background(), tc.args, io.Discard)
		t.Logf("%s: %v", tc.args[len(tc.args)-1], err)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%v: %v, want %q", tc.args, err, w)
			}
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%v: %v is not %v", tc.args, err, tc.is)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%v: took %v", tc.args, d)
		}
	}
}
