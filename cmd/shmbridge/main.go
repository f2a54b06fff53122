// Command shmbridge carries a shmkit queue across machines through NATS
// JetStream (package bridge).
//
//	shmbridge out -queue NAME -nats URL -subject SUBJECT [flags]
//	shmbridge in  -queue NAME -nats URL -stream STREAM -consumer NAME [flags]
//
// "out" consumes the local SPSC queue NAME and publishes to SUBJECT; "in"
// consumes the durable consumer (created if missing) and puts into the
// local SPSC queue NAME. Every message arrives exactly once or is counted
// lost (see package bridge for the guarantee and its limits). A status
// line goes to standard error every -status interval, logs through slog
// (-log text or json), and with -metrics ADDR the counters are served as
// Prometheus metrics at http://ADDR/metrics. SIGINT or SIGTERM stops the
// bridge; messages not yet acknowledged stay in the ring (out) or in the
// stream (in) for the next one.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shmkit/shmkit/bridge"
	"github.com/shmkit/shmkit/ring"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "shmbridge:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage: shmbridge out|in -queue NAME -nats URL ... (shmbridge out -h for the flags)")

type options struct {
	queue, url, creds, subject, stream, consumer, filter, state, id, metrics, logFormat string
	inflight, batch                                                                     int
	unordered, verbose                                                                  bool
	status, ackWait, connectTimeout                                                     time.Duration
}

func parse(args []string, stderr io.Writer) (string, *options, error) {
	if len(args) == 0 || (args[0] != "out" && args[0] != "in") {
		return "", nil, errUsage
	}
	dir := args[0]
	fs := flag.NewFlagSet("shmbridge "+dir, flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	fs.StringVar(&o.queue, "queue", "", "the local SPSC queue's name (required)")
	fs.StringVar(&o.url, "nats", nats.DefaultURL, "NATS server URL(s), comma-separated")
	fs.StringVar(&o.creds, "creds", "", "NATS credentials file (JWT and nkey seed)")
	fs.StringVar(&o.metrics, "metrics", "", "serve Prometheus metrics at http://ADDR/metrics")
	fs.DurationVar(&o.status, "status", 2*time.Second, "status line interval on standard error (0: none)")
	fs.StringVar(&o.logFormat, "log", "text", "log format: text or json")
	fs.BoolVar(&o.verbose, "v", false, "log debug records")
	fs.DurationVar(&o.connectTimeout, "connect-timeout", 5*time.Second, "how long to try the first connection")
	if dir == "out" {
		fs.StringVar(&o.subject, "subject", "", "subject to publish to; a stream must capture it (required)")
		fs.StringVar(&o.id, "id", "", "the queue's name in message ids (default: the queue name)")
		fs.IntVar(&o.inflight, "inflight", 256, "publishes awaiting acknowledgement at most")
		fs.BoolVar(&o.unordered, "unordered", false, "do not chain publishes (for a stream other publishers share; ring order may then break when a connection does)")
	} else {
		fs.StringVar(&o.stream, "stream", "", "the stream to consume (required)")
		fs.StringVar(&o.consumer, "consumer", "", "the durable consumer's name, created if missing (required)")
		fs.StringVar(&o.filter, "filter", "", "a created consumer's filter subject")
		fs.StringVar(&o.state, "state", "", "the state segment's name (default QUEUE.bridge-in)")
		fs.IntVar(&o.batch, "batch", 256, "messages fetched at once")
		fs.DurationVar(&o.ackWait, "ack-wait", 5*time.Second, "a created consumer's AckWait")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return "", nil, errUsage
	}
	switch {
	case o.queue == "":
		return "", nil, fmt.Errorf("%w: -queue is required", errUsage)
	case dir == "out" && o.subject == "":
		return "", nil, fmt.Errorf("%w: -subject is required", errUsage)
	case dir == "in" && (o.stream == "" || o.consumer == ""):
		return "", nil, fmt.Errorf("%w: -stream and -consumer are required", errUsage)
	case o.logFormat != "text" && o.logFormat != "json":
		return "", nil, fmt.Errorf("%w: -log %q (text or json)", errUsage, o.logFormat)
	}
	return dir, o, nil
}

// run runs one bridge until ctx ends (nil) or it fails.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	dir, o, err := parse(args, stderr)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	var h slog.Handler = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})
	if o.logFormat == "json" {
		h = slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level})
	}
	log := slog.New(h)

	natsOpts := []nats.Option{nats.Name("shmbridge " + dir + " " + o.queue), nats.Timeout(o.connectTimeout),
		nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("disconnected from NATS", "err", err) }),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("reconnected to NATS", "url", c.ConnectedUrl()) })}
	if o.creds != "" {
		if _, err := os.Stat(o.creds); err != nil {
			return fmt.Errorf("credentials: %w", err)
		}
		natsOpts = append(natsOpts, nats.UserCredentials(o.creds))
	}
	nc, err := nats.Connect(o.url, natsOpts...)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", o.url, err)
	}
	defer nc.Close()
	// Abandoned publish acknowledgements (an Out bridge republishes after
	// its 5 s AckTimeout) are dropped by the client after this, so that
	// they never fill its 4000 pending slots.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(10*time.Second))
	if err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, o.connectTimeout)
	defer cancel()
	if _, err := js.AccountInfo(actx); err != nil {
		return fmt.Errorf("JetStream at %s: %w", o.url, err)
	}
	q, err := ring.Open(actx, o.queue)
	if err != nil {
		return fmt.Errorf("queue %q: %w", o.queue, err)
	}
	defer q.Close()

	var stats *bridge.Stats
	var runBridge func(context.Context) error
	if dir == "out" {
		b, err := bridge.NewOut(actx, bridge.OutConfig{Queue: q, JetStream: js, Subject: o.subject, ID: o.id,
			MaxInFlight: o.inflight, Unordered: o.unordered, Logger: log})
		if err != nil {
			return err
		}
		stats, runBridge = b.Stats(), b.Run
	} else {
		b, err := bridge.NewIn(actx, bridge.InConfig{Queue: q, JetStream: js, Stream: o.stream, Consumer: o.consumer,
			FilterSubject: o.filter, State: o.state, Batch: o.batch, AckWait: o.ackWait, Logger: log})
		if err != nil {
			return err
		}
		defer b.Close()
		stats, runBridge = b.Stats(), b.Run
	}
	if o.metrics != "" {
		srv, err := serveMetrics(o.metrics, dir, o.queue, stats)
		if err != nil {
			return err
		}
		defer srv.Close()
		log.Info("metrics", "url", "http://"+srv.Addr+"/metrics")
	}
	if o.status > 0 {
		go statusLine(ctx, stderr, dir, stats, o.status)
	}
	err = runBridge(ctx)
	if ctx.Err() != nil {
		log.Info("stopped", "messages", stats.Snapshot().Messages)
		return nil
	}
	return err
}

// statusLine prints the counters and the rate every interval.
func statusLine(ctx context.Context, w io.Writer, dir string, stats *bridge.Stats, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	prev, prevT := stats.Snapshot(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s := stats.Snapshot()
			rate := float64(s.Messages-prev.Messages) / now.Sub(prevT).Seconds()
			fmt.Fprintf(w, "shmbridge %s: %d messages (%.0f/s), %d bytes, %d in flight, %d retries, %d lost, %d duplicates\n",
				dir, s.Messages, rate, s.Bytes, s.InFlight, s.Retries, s.Lost, s.Duplicates)
			prev, prevT = s, now
		}
	}
}

// serveMetrics serves the counters as Prometheus metrics on addr.
func serveMetrics(addr, dir, queue string, stats *bridge.Stats) (*http.Server, error) {
	reg := prometheus.NewRegistry()
	labels := prometheus.Labels{"direction": dir, "queue": queue}
	counter := func(name, help string, f func(bridge.Snapshot) float64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "shmbridge", Name: name, Help: help, ConstLabels: labels,
		}, func() float64 { return f(stats.Snapshot()) }))
	}
	counter("messages_total", "Messages carried (out: acknowledged by JetStream; in: put into the queue).", func(s bridge.Snapshot) float64 { return float64(s.Messages) })
	counter("bytes_total", "Payload bytes carried.", func(s bridge.Snapshot) float64 { return float64(s.Bytes) })
	counter("retries_total", "Publishes (out) or fetches (in) retried after a failure.", func(s bridge.Snapshot) float64 { return float64(s.Retries) })
	counter("lost_total", "Messages counted lost (refused by the stream, too large for the queue, past MaxDeliver).", func(s bridge.Snapshot) float64 { return float64(s.Lost) })
	counter("duplicates_total", "Duplicates dropped (out: reported by JetStream; in: redeliveries already put).", func(s bridge.Snapshot) float64 { return float64(s.Duplicates) })
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "shmbridge", Name: "in_flight", Help: "Messages awaiting acknowledgement.", ConstLabels: labels,
	}, func() float64 { return float64(stats.Snapshot().InFlight) }))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Addr: ln.Addr().String(), Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv, nil
}
