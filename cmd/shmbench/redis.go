package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisTransport measures Redis on localhost through go-redis, the
// answer prefork Go servers reach for today: GET one key per round trip,
// GET in pipelines of redisPipeline commands, SET one per round trip. Each
// peer process has one connection. shmbench never installs Redis: it
// starts redis-server (found on PATH) on a free localhost port for the
// run, with persistence off, and stops it at the end.
type redisTransport struct {
	name     string
	op       dictOp
	pipeline int
}

// redisPipeline is the GETs of one pipelined round trip.
const redisPipeline = 64

func init() {
	register(&redisTransport{name: "redis-get", op: opLoad, pipeline: 1})
	register(&redisTransport{name: "redis-get-p64", op: opLoad, pipeline: redisPipeline})
	register(&redisTransport{name: "redis-set", op: opStore, pipeline: 1})
}

// Spec implements Transport.
func (t *redisTransport) Spec() Spec {
	s := Spec{Name: t.name, Kind: KindIPC, NoProducer: true, Patterns: []Pattern{PatDict},
		Batching: "none: one command per round trip"}
	switch {
	case t.op == opStore:
		s.Desc = "Redis SET over localhost TCP, go-redis, one connection per process"
	case t.pipeline > 1:
		s.Desc = fmt.Sprintf("Redis GET in pipelines of %d over localhost TCP, go-redis, one connection per process", t.pipeline)
		s.Batching = fmt.Sprintf("%d GETs per round trip (one write and one read system call per pipeline)", t.pipeline)
		s.Batched = true
	default:
		s.Desc = "Redis GET over localhost TCP, go-redis, one connection per process"
	}
	return s
}

// Unavailable implements Transport.
func (t *redisTransport) Unavailable() string {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return "skipped: redis-server not found (install it, e.g. apt-get install redis-server, to compare)"
	}
	return ""
}

var redisSrv struct {
	sync.Mutex
	cmd  *exec.Cmd
	addr string
	err  error
}

// startRedis starts the run's redis-server once and returns its address.
func startRedis() (string, error) {
	redisSrv.Lock()
	defer redisSrv.Unlock()
	if redisSrv.cmd != nil || redisSrv.err != nil {
		return redisSrv.addr, redisSrv.err
	}
	redisSrv.addr, redisSrv.err = launchRedis()
	return redisSrv.addr, redisSrv.err
}

func launchRedis() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--daemonize", "no", "--loglevel", "warning", "--dir", os.TempDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("redis-server: %w", err)
	}
	redisSrv.cmd = cmd
	tail := make(chan string, 1)
	go func() { // keep its output drained; remember the last line
		sc := bufio.NewScanner(out)
		last := ""
		for sc.Scan() {
			last = sc.Text()
		}
		tail <- last
	}()
	addr := "127.0.0.1:" + port
	c := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 1, DisableIdentity: true})
	defer c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return addr, nil
		}
		if time.Now().After(deadline) {
			stopRedis()
			return "", fmt.Errorf("redis-server on %s did not answer: %v (%s)", addr, err, <-tail)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stopRedis stops the run's redis-server, if one was started; run calls
// it at the end.
func stopRedis() {
	if redisSrv.cmd != nil && redisSrv.cmd.Process != nil {
		_ = redisSrv.cmd.Process.Kill()
		_ = redisSrv.cmd.Wait()
	}
	redisSrv.cmd, redisSrv.addr, redisSrv.err = nil, "", nil
}

// Setup implements Transport: it starts the server if need be, empties it
// and stores every key.
func (t *redisTransport) Setup(m *Measurement) (*Setup, error) {
	addr, err := startRedis()
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 1, DisableIdentity: true})
	defer c.Close()
	if err := c.FlushAll(ctx).Err(); err != nil {
		return nil, err
	}
	val := make([]byte, m.Size)
	p := c.Pipeline()
	for i := range uint64(dictKeys) {
		dictValue(val, i, 0)
		p.Set(ctx, dictKey(m.Size, i), string(val), 0)
	}
	if _, err := p.Exec(ctx); err != nil {
		return nil, fmt.Errorf("redis: filling: %w", err)
	}
	return &Setup{Args: map[string]string{"addr": addr}}, nil
}

// Open implements Transport.
func (t *redisTransport) Open(env *PeerEnv) ([]Endpoint, error) {
	c := redis.NewClient(&redis.Options{Addr: env.Args["addr"], PoolSize: 1, DisableIdentity: true})
	e := &redisEndpoint{t: t, c: c, size: env.M.Size, cur: newCursor(t.op, env.Index, env.M.Consumers),
		val: make([]byte, env.M.Size)}
	for i := range uint64(dictKeys) {
		e.keys = append(e.keys, dictKey(env.M.Size, i))
	}
	if err := c.Ping(context.Background()).Err(); err != nil {
		c.Close()
		return nil, err
	}
	return []Endpoint{e}, nil
}

type redisEndpoint struct {
	t    *redisTransport
	c    *redis.Client
	size int
	cur  dictCursor
	keys []string
	val  []byte
	ver  uint64

	// pipelined: the keys and commands of the current pipeline, and how
	// many of its results were handed out
	pkeys []uint64
	cmds  []*redis.StringCmd
	used  int
}

// Send implements Endpoint.
func (e *redisEndpoint) Send(uint64) error { return errUnsupported }

// Recv performs one operation (pipelined: hands out one result of the
// current pipeline, sending the next when they are used up) and checks
// the value it read.
func (e *redisEndpoint) Recv() (uint64, error) {
	ctx := context.Background()
	if e.t.op == opStore {
		k := e.cur.key()
		e.ver++
		dictValue(e.val, k, e.ver)
		return 0, e.c.Set(ctx, e.keys[k], e.val, 0).Err()
	}
	if e.t.pipeline <= 1 {
		k := e.cur.key()
		v, err := e.c.Get(ctx, e.keys[k]).Bytes()
		if err != nil {
			return 0, err
		}
		return 0, checkValue(v, e.size, k)
	}
	if e.used == len(e.cmds) {
		p := e.c.Pipeline()
		e.cmds, e.pkeys, e.used = e.cmds[:0], e.pkeys[:0], 0
		for range e.t.pipeline {
			k := e.cur.key()
			e.pkeys = append(e.pkeys, k)
			e.cmds = append(e.cmds, p.Get(ctx, e.keys[k]))
		}
		if _, err := p.Exec(ctx); err != nil {
			return 0, err
		}
	}
	k := e.pkeys[e.used]
	v, err := e.cmds[e.used].Bytes()
	e.used++
	if err != nil {
		return 0, errors.Join(fmt.Errorf("key %d", k), err)
	}
	return 0, checkValue(v, e.size, k)
}

// Close implements Endpoint.
func (e *redisEndpoint) Close() error { return e.c.Close() }
