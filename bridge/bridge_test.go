package bridge

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/ring"
	"github.com/shmkit/shmkit/shm"
)

func TestMain(m *testing.M) { testproc.Main(m) }

// messages is how many messages the end-to-end tests carry.
func messages() int {
	if s := os.Getenv("SHMKIT_BRIDGE_MESSAGES"); s != "" {
		n, _ := strconv.Atoi(s)
		return n
	}
	return 100_000
}

// message i: its sequence number, then size-8 bytes derived from it.
func message(buf []byte, i uint64, size int) []byte {
	buf = binary.LittleEndian.AppendUint64(buf[:0], i)
	for j := 8; j < size; j++ {
		buf = append(buf, byte(i*31+uint64(j)))
	}
	return buf
}

func check(m []byte, want uint64) error {
	if len(m) < 8 {
		return fmt.Errorf("message of %d bytes", len(m))
	}
	if got := binary.LittleEndian.Uint64(m); got != want {
		return fmt.Errorf("message %d where %d was due", got, want)
	}
	for j := 8; j < len(m); j++ {
		if m[j] != byte(want*31+uint64(j)) {
			return fmt.Errorf("message %d: byte %d corrupt", want, j)
		}
	}
	return nil
}

func connect(url string) (*nats.Conn, jetstream.JetStream, error) {
	opts := []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond), nats.Timeout(2 * time.Second)}
	if os.Getenv("SHMKIT_BRIDGE_NOBUF") != "" {
		// No reconnect buffer: what is published (acknowledgements
		// included) while disconnected fails at once and is lost.
		opts = append(opts, nats.ReconnectBufSize(-1))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(10*time.Second))
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// signalled returns a context that ends on SIGTERM.
func signalled() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGTERM)
}

func helperLogger() *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("SHMKIT_BRIDGE_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func init() {
	// producer QUEUE N SIZE: put messages 0..N-1.
	testproc.Register("producer", func(args []string) int {
		n, _ := strconv.Atoi(args[1])
		size, _ := strconv.Atoi(args[2])
		q, err := ring.Open(context.Background(), args[0])
		if err != nil {
			testproc.Printf("error: %v", err)
			return 1
		}
		var buf []byte
		for i := range n {
			buf = message(buf, uint64(i), size)
			if err := q.Put(context.Background(), buf); err != nil {
				testproc.Printf("error: put %d: %v", i, err)
				return 1
			}
		}
		testproc.Printf("produced %d", n)
		return 0
	})
	// consumer QUEUE N: take N messages, checking each is the next one.
	testproc.Register("consumer", func(args []string) int {
		n, _ := strconv.Atoi(args[1])
		q, err := ring.Open(context.Background(), args[0])
		if err != nil {
			testproc.Printf("error: %v", err)
			return 1
		}
		buf := make([]byte, q.MaxMessage())
		for i := range n {
			k, err := q.Get(context.Background(), buf)
			if err != nil {
				testproc.Printf("error: get %d: %v", i, err)
				return 1
			}
			if err := check(buf[:k], uint64(i)); err != nil {
				testproc.Printf("error: %v", err)
				return 1
			}
		}
		// Nothing more may come: a duplicate would show here.
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		if k, err := q.Get(ctx, buf); err == nil {
			testproc.Printf("error: an extra message after %d: %x", n, buf[:min(k, 8)])
			return 1
		}
		testproc.Printf("consumed %d", n)
		return 0
	})
	// out URL QUEUE SUBJECT: run an Out bridge until SIGTERM or killed.
	testproc.Register("out", func(args []string) int {
		return runHelper(args, func(ctx context.Context, js jetstream.JetStream, q *ring.Queue) (func(context.Context) error, error) {
			o, err := NewOut(ctx, OutConfig{Queue: q, JetStream: js, Subject: args[2], Logger: helperLogger()})
			if err != nil {
				return nil, err
			}
			return o.Run, nil
		})
	})
	// in URL QUEUE STREAM CONSUMER: run an In bridge until SIGTERM or killed.
	testproc.Register("in", func(args []string) int {
		return runHelper(args, func(ctx context.Context, js jetstream.JetStream, q *ring.Queue) (func(context.Context) error, error) {
			in, err := NewIn(ctx, InConfig{Queue: q, JetStream: js, Stream: args[2], Consumer: args[3], AckWait: time.Second, Logger: helperLogger()})
			if err != nil {
				return nil, err
			}
			return func(ctx context.Context) error { defer in.Close(); return in.Run(ctx) }, nil
		})
	})
}

// runHelper connects to args[0], opens queue args[1], builds a bridge
// with mk and runs it until SIGTERM, printing "running" first.
func runHelper(args []string, mk func(context.Context, jetstream.JetStream, *ring.Queue) (func(context.Context) error, error)) int {
	ctx, cancel := signalled()
	defer cancel()
	fail := func(err error) int {
		testproc.Printf("error: %v", err)
		return 1
	}
	nc, js, err := connect(args[0])
	if err != nil {
		return fail(err)
	}
	defer nc.Close()
	q, err := ring.Open(ctx, args[1])
	if err != nil {
		return fail(err)
	}
	run, err := mk(ctx, js, q)
	if err != nil {
		return fail(err)
	}
	testproc.Printf("running")
	if err := run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fail(err)
	}
	return 0
}

// natsServer is an embedded JetStream server with file storage in dir.
type natsServer struct {
	t    testing.TB
	dir  string
	port int
	s    *server.Server
}

func startNATS(t *testing.T) *natsServer {
	ns := &natsServer{t: t, dir: t.TempDir(), port: -1}
	ns.start()
	t.Cleanup(ns.stop)
	return ns
}

func (ns *natsServer) start() { ns.startB(ns.t) }

func (ns *natsServer) startB(tb testing.TB) {
	tb.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: ns.port, JetStream: true, StoreDir: ns.dir, NoLog: true, NoSigs: true})
	if err != nil {
		tb.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		tb.Fatal("nats-server did not start")
	}
	ns.s = s
	if ns.port == -1 {
		ns.port = s.Addr().(*net.TCPAddr).Port // a restart keeps it
	}
}

func (ns *natsServer) stop() {
	if ns.s != nil {
		ns.s.Shutdown()
		ns.s.WaitForShutdown()
		ns.s = nil
	}
}

func (ns *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", ns.port) }

// setup starts a server with a stream BR on br.> (file storage) and
// creates the two local queues.
func setup(t *testing.T, maxMsgSize int32) (ns *natsServer, js jetstream.JetStream, qa, qb string) {
	ns = startNATS(t)
	nc, js, err := connect(ns.url())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: "BR", Subjects: []string{"br.>"}, Storage: jetstream.FileStorage,
		Duplicates: 2 * time.Minute, MaxMsgSize: maxMsgSize,
	}); err != nil {
		t.Fatal(err)
	}
	qa, qb = queueName(t, "a"), queueName(t, "b")
	for _, n := range []string{qa, qb} {
		q, err := ring.Create(n, ring.Config{Mode: ring.SPSC, Capacity: 1024, MaxMessage: 4096})
		if err != nil {
			t.Fatal(err)
		}
		q.Close()
		t.Cleanup(func() { _ = ring.Unlink(n) })
	}
	t.Cleanup(func() { _ = shmUnlink(qb + ".bridge-in") })
	return ns, js, qa, qb
}

func queueName(t *testing.T, suffix string) string {
	name := strings.NewReplacer("/", "_", "=", "_").Replace(t.Name())
	return fmt.Sprintf("bridge-test-%d-%s-%s", os.Getpid(), name, suffix)
}

// pipeline is the cross-process setup of the end-to-end tests: a
// consumer process on queue B, an Out process on A, an In process on B
// and a producer process putting n messages of 64 B into A.
type pipeline struct {
	t                   *testing.T
	ns                  *natsServer
	qa, qb              string
	n                   int
	cons, out, in, prod *testproc.Proc
	dead                []*testproc.Proc // bridges killed, for their logs
	env                 []string         // for the bridge processes
}

func startPipeline(t *testing.T, env ...string) *pipeline {
	ns, _, qa, qb := setup(t, 0)
	p := &pipeline{t: t, ns: ns, qa: qa, qb: qb, n: messages(), env: env}
	p.cons = testproc.Start(t, "consumer", qb, strconv.Itoa(p.n))
	p.restartOut()
	p.restartIn()
	p.prod = testproc.Start(t, "producer", qa, strconv.Itoa(p.n), "64")
	t.Cleanup(func() {
		if t.Failed() {
			for _, b := range append(p.dead, p.out, p.in) {
				t.Logf("%s %d stderr:\n%s", b.Name, b.Pid(), b.Stderr())
			}
		}
	})
	return p
}

func (p *pipeline) start(name string, args ...string) *testproc.Proc {
	cmd := testproc.Command(p.t, name, args...)
	cmd.Env = append(cmd.Env, p.env...)
	return testproc.StartCmd(p.t, name, cmd)
}

// restartOut kills the Out process, if any, and starts another.
func (p *pipeline) restartOut() {
	if p.out != nil {
		p.out.Kill()
		p.dead = append(p.dead, p.out)
	}
	p.out = p.start("out", p.ns.url(), p.qa, "br.x")
	p.out.Expect(p.t, "running")
}

// restartIn kills the In process, if any, and starts another.
func (p *pipeline) restartIn() {
	if p.in != nil {
		p.in.Kill()
		p.dead = append(p.dead, p.in)
	}
	p.in = p.start("in", p.ns.url(), p.qb, "BR", "IN")
	p.in.Expect(p.t, "running")
}

// done waits for every message to be produced and consumed: exactly once
// and in order (the consumer process checks each and that none follows).
func (p *pipeline) done() {
	p.prod.Expect(p.t, fmt.Sprintf("produced %d", p.n))
	p.cons.Expect(p.t, fmt.Sprintf("consumed %d", p.n))
}

// TestEndToEnd: producer process -> queue -> Out process -> JetStream ->
// In process -> queue -> consumer process, every message exactly once
// and in order.
func TestEndToEnd(t *testing.T) {
	start := time.Now()
	p := startPipeline(t)
	p.done()
	t.Logf("%d messages of 64 B end to end in %v", p.n, time.Since(start))
}

// TestKillBridges kills each bridge at random moments, several times, and
// restarts it: nothing lost, nothing twice, order kept.
func TestKillBridges(t *testing.T) {
	p := startPipeline(t)
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for i := range 6 {
		time.Sleep(time.Duration(50+rnd.IntN(400)) * time.Millisecond)
		if i%2 == 0 {
			p.restartOut()
		} else {
			p.restartIn()
		}
	}
	p.done()
}

// TestServerRestart restarts the NATS server mid-stream (file storage):
// the bridges reconnect and carry on. With the client's reconnect buffer
// off, every acknowledgement sent during the outage is lost too, and the
// In bridge must recognise the redeliveries that follow, however late.
func TestServerRestart(t *testing.T) {
	for _, nobuf := range []bool{false, true} {
		t.Run(fmt.Sprintf("nobuf=%v", nobuf), func(t *testing.T) {
			var env []string
			if nobuf {
				env = append(env, "SHMKIT_BRIDGE_NOBUF=1")
			}
			serverRestart(t, env)
		})
	}
}

func serverRestart(t *testing.T, env []string) {
	p := startPipeline(t, env...)
	time.Sleep(300 * time.Millisecond)
	p.ns.stop()
	time.Sleep(300 * time.Millisecond)
	p.ns.start()
	p.done()
}

func shmUnlink(name string) error { return shm.Unlink(name) }

// runBridges runs an Out and an In bridge in this process until the test
// ends.
func runBridges(t *testing.T, js jetstream.JetStream, qa, qb string, ordered bool) (*Out, *In) {
	ctx, cancel := context.WithCancel(context.Background())
	oq, err := ring.Open(ctx, qa)
	if err != nil {
		t.Fatal(err)
	}
	iq, err := ring.Open(ctx, qb)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("SHMKIT_BRIDGE_DEBUG") != "" {
		quiet = helperLogger()
	}
	o, err := NewOut(ctx, OutConfig{Queue: oq, JetStream: js, Subject: "br.x", Unordered: !ordered, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	in, err := NewIn(ctx, InConfig{Queue: iq, JetStream: js, Stream: "BR", Consumer: "IN", AckWait: time.Second, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 2)
	go func() { _ = o.Run(ctx); done <- struct{}{} }()
	go func() { _ = in.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() {
		cancel()
		<-done
		<-done
		in.Close()
		oq.Close()
		iq.Close()
	})
	return o, in
}

// A stream that refuses some messages (larger than its MaxMsgSize) and a
// local queue too small for others: both are counted lost, the rest
// arrive exactly once and in order.
func TestLosses(t *testing.T) {
	_, js, qa, qb := setup(t, 1000)
	// Queue B takes at most 512 bytes: messages of 600 pass the stream and
	// are lost at the In side; those of 2000 are refused by the stream.
	if err := ring.Unlink(qb); err != nil {
		t.Fatal(err)
	}
	q, err := ring.Create(qb, ring.Config{Mode: ring.SPSC, Capacity: 1024, MaxMessage: 512})
	if err != nil {
		t.Fatal(err)
	}
	q.Close()
	o, in := runBridges(t, js, qa, qb, true)
	ctx := context.Background()
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
	const n = 3000
	size := func(i int) int {
		switch i % 10 {
		case 3:
			return 2000 // refused by the stream
		case 7:
			return 600 // too large for queue B
		}
		return 64
	}
	var buf []byte
	want := 0
	for i := range n {
		buf = message(buf, uint64(i), size(i))
		if err := pq.Put(ctx, buf); err != nil {
			t.Fatal(err)
		}
		if size(i) == 64 {
			want++
		}
	}
	got := make([]byte, 512)
	for i := range n {
		if size(i) != 64 {
			continue
		}
		gctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		k, err := cq.Get(gctx, got)
		cancel()
		if err != nil {
			t.Fatalf("message %d: %v (out %+v, in %+v)", i, err, o.Stats().Snapshot(), in.Stats().Snapshot())
		}
		if err := check(got[:k], uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for o.Stats().Snapshot().Lost != n/10 || in.Stats().Snapshot().Lost != n/10 {
		if time.Now().After(deadline) {
			t.Fatalf("lost: out %d, in %d, want %d each", o.Stats().Snapshot().Lost, in.Stats().Snapshot().Lost, n/10)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s := in.Stats().Snapshot(); s.Messages != uint64(want) {
		t.Fatalf("In put %d messages, want %d", s.Messages, want)
	}
}

// Configuration errors are reported at start.
func TestConfigErrors(t *testing.T) {
	_, js, qa, qb := setup(t, 0)
	ctx := context.Background()
	q, err := ring.Open(ctx, qa)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	mq, err := ring.CreateAnonymous(ring.Config{Mode: ring.MPMC})
	if err != nil {
		t.Fatal(err)
	}
	defer mq.Close()
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"out: MPMC queue", func() error { _, err := NewOut(ctx, OutConfig{Queue: mq, JetStream: js, Subject: "br.x"}); return err }(), ErrQueueKind},
		{"out: no stream for the subject", func() error {
			_, err := NewOut(ctx, OutConfig{Queue: q, JetStream: js, Subject: "nowhere"})
			return err
		}(), ErrNoStream},
		{"out: no subject", func() error { _, err := NewOut(ctx, OutConfig{Queue: q, JetStream: js}); return err }(), ErrConfig},
		{"in: MPMC queue", func() error {
			_, err := NewIn(ctx, InConfig{Queue: mq, JetStream: js, Stream: "BR", Consumer: "C"})
			return err
		}(), ErrQueueKind},
		{"in: unknown stream", func() error {
			_, err := NewIn(ctx, InConfig{Queue: q, JetStream: js, Stream: "NOPE", Consumer: "C"})
			return err
		}(), ErrNoStream},
		{"in: anonymous queue without a state name", func() error {
			aq, _ := ring.CreateAnonymous(ring.Config{Mode: ring.SPSC})
			defer aq.Close()
			_, err := NewIn(ctx, InConfig{Queue: aq, JetStream: js, Stream: "BR", Consumer: "C"})
			return err
		}(), ErrConfig},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	// A state segment of another consumer is refused.
	in, err := NewIn(ctx, InConfig{Queue: q, JetStream: js, Stream: "BR", Consumer: "C1", State: qb + ".st"})
	if err != nil {
		t.Fatal(err)
	}
	in.Close()
	defer shmUnlink(qb + ".st")
	if _, err := NewIn(ctx, InConfig{Queue: q, JetStream: js, Stream: "BR", Consumer: "C2", State: qb + ".st"}); !errors.Is(err, ErrState) {
		t.Errorf("another consumer's state: %v", err)
	}
}

// A Run whose context ends while a batch waits for its acknowledgements
// leaves the batch held; the next Run publishes it first: nothing lost,
// nothing twice.
func TestOutRunAgain(t *testing.T) {
	ns, js, qa, _ := setup(t, 0)
	ctx := context.Background()
	q, err := ring.Open(ctx, qa)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	o, err := NewOut(ctx, OutConfig{Queue: q, JetStream: js, Subject: "br.x", AckTimeout: 200 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	pq, err := ring.Open(ctx, qa)
	if err != nil {
		t.Fatal(err)
	}
	defer pq.Close()
	var buf []byte
	for i := range 10 {
		if err := pq.Put(ctx, message(buf, uint64(i), 64)); err != nil {
			t.Fatal(err)
		}
	}
	ns.stop() // the publishes cannot be acknowledged
	rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	err = o.Run(rctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first Run: %v", err)
	}
	ns.start()
	for i := 10; i < 20; i++ {
		if err := pq.Put(ctx, message(buf, uint64(i), 64)); err != nil {
			t.Fatal(err)
		}
	}
	rctx, cancel = context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- o.Run(rctx) }()
	deadline := time.Now().Add(15 * time.Second)
	for o.Stats().Snapshot().Messages < 20 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	st, err := js.Stream(ctx, "BR")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 20 {
		t.Fatalf("stream holds %d messages, want 20 (out %+v)", info.State.Msgs, o.Stats().Snapshot())
	}
	for seq := uint64(1); seq <= 20; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if err := check(m.Data, seq-1); err != nil {
			t.Fatalf("stream seq %d: %v", seq, err)
		}
	}
}

// A chained Out bridge whose stream lost its last message (work-queue
// retention removed it, then the server restarted): the refused publish
// re-reads the stream's last id and the chain starts again; before, it was
// refused for ever.
func TestOutRechain(t *testing.T) {
	ns, js, qa, _ := setup(t, 0)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "WQ", Subjects: []string{"wq.>"}, Storage: jetstream.FileStorage, Retention: jetstream.WorkQueuePolicy}); err != nil {
		t.Fatal(err)
	}
	q, err := ring.Open(ctx, qa)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	o, err := NewOut(ctx, OutConfig{Queue: q, JetStream: js, Subject: "wq.x", AckTimeout: time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- o.Run(rctx) }()
	defer func() { cancel(); <-done }()
	pq, err := ring.Open(ctx, qa)
	if err != nil {
		t.Fatal(err)
	}
	defer pq.Close()
	waitFor := func(n uint64) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for o.Stats().Snapshot().Messages < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d messages acknowledged, want %d", o.Stats().Snapshot().Messages, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if err := pq.Put(ctx, message(nil, 0, 64)); err != nil {
		t.Fatal(err)
	}
	waitFor(1)
	cons, err := js.CreateOrUpdateConsumer(ctx, "WQ", jetstream.ConsumerConfig{Durable: "W", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ns.stop()
	ns.start()
	if err := pq.Put(ctx, message(nil, 1, 64)); err != nil {
		t.Fatal(err)
	}
	waitFor(2)
}
