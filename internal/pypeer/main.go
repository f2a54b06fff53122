// Command pypeer is the Go side of the Python package's tests
// (python/tests): each subcommand does one thing to a shmkit object that a
// Python process created or will open, and prints what it saw on one line
// for the test to check. It is not meant for users.
//
//	pypeer spsc-send NAME N          put N pattern messages, then CloseWrite
//	pypeer spsc-recv NAME [FIRST]    get until EOF, checking every message (the first is message FIRST)
//	pypeer mpmc-produce NAME ID N    put N messages (ID, seq) into an MPMC queue
//	pypeer mpmc-consume NAME         get until EOF: per-producer counts, order checked
//	pypeer mpmc-consume-raw NAME     get until EOF: "got K lost L [skipped S]" from Stats
//	pypeer mpmc-hold NAME K          take K messages with Next, print "held", sleep
//	pypeer mutex-hold NAME           lock, print "held", sleep until killed
//	pypeer mutex-lock NAME           lock (10 s), print "ok" or "ownerdead PID", unlock
//	pypeer event-wait NAME           print "ready", Wait for the Event (10 s), print "set"
//	pypeer sem-cycle NAME N          N times Acquire then Release (two processes share the permits)
//	pypeer value-add NAME N          N locked increments of a Value[int64]
//	pypeer array-add NAME N          N rounds of locked increments of every Array[int64] element
//	pypeer wake-get NAME             print "ready", block in Get, print CLOCK_MONOTONIC ns when woken
//	pypeer echo NAME                 pipe end 1: send back every message until EOF
//	pypeer sink NAME                 get until EOF as fast as possible: count and bytes
//	pypeer source NAME N SIZE        put N messages of SIZE bytes in batches, then CloseWrite
//	pypeer create-queue NAME MODE CAP MAX  create a queue for Python to open
//	pypeer create-value NAME X       create a Value[int64] holding X
//	pypeer hold-role NAME ROLE       claim an SPSC role (producer: by putting message 0; consumer), print "held", sleep
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/array"
	"github.com/shmkit/shmkit/ring"
	"github.com/shmkit/shmkit/sem"
	"github.com/shmkit/shmkit/value"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: pypeer COMMAND NAME [ARGS]")
		os.Exit(2)
	}
	cmd, name, args := os.Args[1], os.Args[2], os.Args[3:]
	f, ok := commands[cmd]
	if !ok {
		fmt.Fprintln(os.Stderr, "pypeer: unknown command", cmd)
		os.Exit(2)
	}
	if err := f(context.Background(), name, args); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
}

var commands = map[string]func(ctx context.Context, name string, args []string) error{
	"spsc-send":        spscSend,
	"spsc-recv":        spscRecv,
	"mpmc-produce":     mpmcProduce,
	"mpmc-consume":     mpmcConsume,
	"mpmc-hold":        mpmcHold,
	"mpmc-consume-raw": mpmcConsumeRaw,
	"mutex-hold":       mutexHold,
	"mutex-lock":       mutexLock,
	"value-add":        valueAdd,
	"event-wait":       eventWait,
	"sem-cycle":        semCycle,
	"array-add":        arrayAdd,
	"wake-get":         wakeGet,
	"echo":             echo,
	"sink":             sink,
	"source":           source,
	"create-queue":     createQueue,
	"create-slots":     createSlots,
	"slots-send":       slotsSend,
	"slots-recv":       slotsRecv,
	"create-value":     createValue,
	"hold-role":        holdRole,
}

func atoi(args []string, i int) int {
	if i >= len(args) {
		fmt.Fprintln(os.Stderr, "pypeer: missing argument", i)
		os.Exit(2)
	}
	n, err := strconv.Atoi(args[i])
	if err != nil {
		fmt.Fprintln(os.Stderr, "pypeer:", err)
		os.Exit(2)
	}
	return n
}

// pattern is the byte pattern the messages of spsc-send and spsc-recv
// carry after their 8-byte index; the Python tests build the same one.
var pattern = func() []byte {
	b := make([]byte, 512)
	for i := range b {
		b[i] = byte(i*131 + 7)
	}
	return b
}()

// message returns message i: its index (u64 LE), then i%200 bytes of the
// pattern from offset i%256, so that sizes vary and the ring wraps with pads.
func message(buf []byte, i int) []byte {
	buf = binary.LittleEndian.AppendUint64(buf[:0], uint64(i))
	return append(buf, pattern[i%256:i%256+i%200]...)
}

func spscSend(ctx context.Context, name string, args []string) error {
	n := atoi(args, 0)
	q, err := ring.Open(ctx, name)
	if err != nil {
		return err
	}
	defer q.Close()
	var buf []byte
	for i := range n {
		buf = message(buf, i)
		if err := q.Put(ctx, buf); err != nil {
			return fmt.Errorf("put %d: %w", i, err)
		}
	}
	if err := q.CloseWrite(); err != nil {
		return err
	}
	fmt.Println("sent", n)
	return nil
}

func spscRecv(ctx context.Context, name string, args []string) error {
	q, err := ring.Open(ctx, name)
	if err != nil {
		return err
	}
	defer q.Close()
	first := 0
	if len(args) > 0 {
		first = atoi(args, 0)
	}
	buf := make([]byte, q.MaxMessage())
	var want []byte
	for i := first; ; i++ {
		n, err := q.Get(ctx, buf)
		if err == io.EOF {
			fmt.Println("received", i-first)
			return nil
		}
		if err != nil {
			return fmt.Errorf("get %d: %w", i, err)
		}
		want = message(want, i)
		if string(buf[:n]) != string(want) {
			return fmt.Errorf("message %d: got %d bytes %x, want %d bytes %x", i, n, buf[:min(n, 16)], len(want), want[:min(len(want), 16)])
		}
	}
}

func mpmcProduce(ctx context.Context, name string, args []string) error {
	id, n := atoi(args, 0), atoi(args, 1)
	q, err := ring.Open(ctx, name)
	if err != nil {
		return err
	}
	defer q.Close()
	var b [16]byte
	for i := range n {
		binary.LittleEndian.PutUint64(b[:], uint64(id))
		binary.LittleEndian.PutUint64(b[8:], uint64(i))
		if err := q.Put(ctx, b[:]); err != nil {
			return fmt.Errorf("put %d: %w", i, err)
		}
	}
	fmt.Println("sent", n)
	return nil
}

// mpmcConsume prints "got ID:COUNT ..." for every producer id seen, after
// checking that each producer's sequence numbers arrive in increasing
// order (a consumer sees a subsequence of each producer's messages).
func mpmcConsume(ctx context.Context, name string, args []string) error {
	q, err := ring.Open(ctx, name)
	if err != nil {
		return err
	}
	defer q.Close()
	buf := make([]byte, q.MaxMessage())
	last := map[uint64]int64{}
	count := map[uint64]int{}
	var sum uint64
	for {
		n, err := q.Get(ctx, buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if n != 16 {
			return fmt.Errorf("message of %d bytes", n)
		}
		id, seq := binary.LittleEndian.Uint64(buf), binary.LittleEndian.Uint64(buf[8:])
		if l, ok := last[id]; ok && int64(seq) <= l {
			return fmt.Errorf("producer %d: seq %d after %d", id, seq, l)
		}
		last[id] = int64(seq)
		count[id]++
		sum += id<<32 ^ seq
	}
	fmt.Print("got")
	for id, c := range count {
		fmt.Printf(" %d:%d", id, c)
	}
	fmt.Printf(" sum:%d\n", sum)
	return nil
}

func mpmcConsumeRaw(ctx context.Context, name string, args []string) error {
	q, err := ring.Open(ctx, name)
	if err != nil {
		return err
	}
	defer q.Close()
	buf := make([]byte, q.MaxMessage())
	k := 0
	for ; ; k++ {
		if _, err := q.Get(ctx, buf); err == io.EOF {
			break
		} else if err != nil {
			return err
		}
	}
	st := q.Stats()
	fmt.Printf("got %d lost %d", k, st.Lost)
	if st.Skipped > 0 {
		fmt.Printf(" skipped %d", st.Skipped)
	}
	fmt.Println()
	return nil
}

func mpmcHold(ctx context.Context, name string, args []string) error {
	k := atoi(args, 0)
	q, err := ring.Open(ctx, name)
	if err != nil {
		return err
	}
	for range k {
		if _, err := q.Next(ctx); err != nil {
			return err
		}
	}
	fmt.Println("held")
	time.Sleep(time.Hour)
	return nil
}

func mutexHold(ctx context.Context, name string, args []string) error {
	m, err := sem.OpenMutex(ctx, name)
	if err != nil {
		return err
	}
	if err := m.Lock(ctx); err != nil && !errors.Is(err, sem.ErrOwnerDead) {
		return err
	}
	fmt.Println("held")
	time.Sleep(time.Hour)
	return nil
}

func mutexLock(ctx context.Context, name string, args []string) error {
	m, err := sem.OpenMutex(ctx, name)
	if err != nil {
		return err
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err = m.Lock(ctx)
	var dead *sem.OwnerDeadError
	switch {
	case errors.As(err, &dead):
		if err := m.MarkConsistent(); err != nil {
			return err
		}
		fmt.Println("ownerdead", dead.Pid)
	case err != nil:
		return err
	default:
		fmt.Println("ok")
	}
	return m.Unlock()
}

func eventWait(ctx context.Context, name string, args []string) error {
	e, err := sem.OpenEvent(ctx, name)
	if err != nil {
		return err
	}
	defer e.Close()
	fmt.Println("ready")
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := e.Wait(ctx); err != nil {
		return err
	}
	fmt.Println("set")
	return nil
}

func semCycle(ctx context.Context, name string, args []string) error {
	n := atoi(args, 0)
	s, err := sem.OpenSemaphore(ctx, name)
	if err != nil {
		return err
	}
	defer s.Close()
	for range n {
		if err := s.Acquire(ctx); err != nil {
			return err
		}
		if err := s.Release(); err != nil {
			return err
		}
	}
	fmt.Println("done")
	return nil
}

func valueAdd(ctx context.Context, name string, args []string) error {
	n := atoi(args, 0)
	v, err := value.Open[int64](ctx, name)
	if err != nil {
		return err
	}
	defer v.Close()
	for range n {
		if err := v.Update(ctx, func(x *int64) { *x++ }); err != nil {
			return err
		}
	}
	x, err := v.Load(ctx)
	fmt.Println("done", x)
	return err
}

func arrayAdd(ctx context.Context, name string, args []string) error {
	n := atoi(args, 0)
	a, err := array.Open[int64](ctx, name)
	if err != nil {
		return err
	}
	defer a.Close()
	for range n {
		for i := range a.Len() {
			if err := a.Update(ctx, i, func(x *int64) { *x++ }); err != nil {
				return err
			}
		}
	}
	fmt.Println("done")
	return nil
}

func monotonic() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

func wakeGet(ctx context.Context, name string, args []string) error {
	q, err := ring.Open(ctx, name)
	if err != nil {
		return err
	}
	defer q.Close()
	buf := make([]byte, q.MaxMessage())
	if _, _, err := q.TryGet(buf); err != nil { // claims the consumer role
		return err
	}
	fmt.Println("ready")
	_, err = q.Get(ctx, buf)
	t := monotonic()
	switch {
	case err == io.EOF:
		fmt.Println("eof", t)
	case err != nil:
		return err
	default:
		fmt.Println("woken", t)
	}
	return nil
}

func echo(ctx context.Context, name string, args []string) error {
	c, err := ring.OpenPipe(ctx, name)
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, c.MaxMessage())
	k := 0
	for ; ; k++ {
		n, err := c.Recv(ctx, buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if err := c.Send(ctx, buf[:n]); err != nil {
			return err
		}
	}
	fmt.Println("echoed", k)
	return nil
}

func sink(ctx context.Context, name string, args []string) error {
	q, err := ring.Open(ctx, name)
	if err != nil {
		return err
	}
	defer q.Close()
	dst := make([][]byte, 64)
	for i := range dst {
		dst[i] = make([]byte, q.MaxMessage())
	}
	var count, bytes int
	start := time.Now()
	for {
		for i := range dst {
			dst[i] = dst[i][:cap(dst[i])]
		}
		k, err := q.GetBatch(ctx, dst)
		for _, m := range dst[:k] {
			bytes += len(m)
		}
		count += k
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	fmt.Println("sank", count, bytes, time.Since(start).Nanoseconds())
	return nil
}

func source(ctx context.Context, name string, args []string) error {
	n, size := atoi(args, 0), atoi(args, 1)
	q, err := ring.Open(ctx, name)
	if err != nil {
		return err
	}
	defer q.Close()
	msg := make([]byte, size)
	batch := make([][]byte, max(1, min(64, 65536/max(size, 1))))
	for i := range batch {
		batch[i] = msg
	}
	for sent := 0; sent < n; {
		b := batch[:min(len(batch), n-sent)]
		k, err := q.PutBatch(ctx, b)
		sent += k
		if err != nil {
			return err
		}
	}
	if err := q.CloseWrite(); err != nil {
		return err
	}
	fmt.Println("sent", n)
	return nil
}

func createQueue(ctx context.Context, name string, args []string) error {
	mode := ring.MPMC
	if len(args) > 0 && args[0] == "spsc" {
		mode = ring.SPSC
	}
	q, err := ring.Create(name, ring.Config{Mode: mode, Capacity: atoi(args, 1), MaxMessage: atoi(args, 2)})
	if err != nil {
		return err
	}
	fmt.Println("created")
	return q.Close()
}

func createValue(ctx context.Context, name string, args []string) error {
	v, err := value.Create[int64](name, int64(atoi(args, 0)))
	if err != nil {
		return err
	}
	fmt.Println("created")
	return v.Close()
}

func holdRole(ctx context.Context, name string, args []string) error {
	q, err := ring.Open(ctx, name)
	if err != nil {
		return err
	}
	switch {
	case len(args) > 0 && args[0] == "producer":
		// The role is claimed by the first Put: message 0 of the pattern.
		if err := q.Put(ctx, message(nil, 0)); err != nil {
			return err
		}
	default:
		if _, _, err := q.TryGet(make([]byte, q.MaxMessage())); err != nil {
			return err
		}
	}
	fmt.Println("held")
	time.Sleep(time.Hour)
	return nil
}

// slotVal is the element of the Slots queues the Python tests share with
// this peer: value i is its index (u64 LE), then 16 bytes of the pattern
// from offset i%256.
type slotVal [24]byte

func slotValue(i int) (v slotVal) {
	binary.LittleEndian.PutUint64(v[:], uint64(i))
	copy(v[8:], pattern[i%256:])
	return v
}

// createSlots creates the named Slots queue of slotVal (capacity args[0]).
func createSlots(ctx context.Context, name string, args []string) error {
	q, err := ring.CreateTyped[slotVal](name, ring.Config{Mode: ring.Slots, Capacity: atoi(args, 0)})
	if err != nil {
		return err
	}
	fmt.Println("created")
	return q.Close()
}

// slotsSend puts values 0..n-1 into the named Slots queue, in batches of
// up to 7 every other time, then closes it for writing.
func slotsSend(ctx context.Context, name string, args []string) error {
	n := atoi(args, 0)
	q, err := ring.OpenTyped[slotVal](ctx, name)
	if err != nil {
		return err
	}
	defer q.Close()
	batch := make([]slotVal, 0, 7)
	for i := 0; i < n; {
		if i%2 == 0 {
			if err := q.Put(ctx, slotValue(i)); err != nil {
				return fmt.Errorf("put %d: %w", i, err)
			}
			i++
			continue
		}
		batch = batch[:0]
		for k := i; k < n && len(batch) < cap(batch); k++ {
			batch = append(batch, slotValue(k))
		}
		k, err := q.PutBatch(ctx, batch)
		if err != nil {
			return fmt.Errorf("put batch at %d: %w", i, err)
		}
		i += k
	}
	if err := q.Queue().CloseWrite(); err != nil {
		return err
	}
	fmt.Println("sent", n)
	return nil
}

// slotsRecv takes values from the named Slots queue until io.EOF, checking
// each, with Get and GetBatch in turn.
func slotsRecv(ctx context.Context, name string, args []string) error {
	q, err := ring.OpenTyped[slotVal](ctx, name)
	if err != nil {
		return err
	}
	defer q.Close()
	dst := make([]slotVal, 5)
	for i := 0; ; {
		k := 1
		if i%2 == 0 {
			dst[0], err = q.Get(ctx)
		} else {
			k, err = q.GetBatch(ctx, dst)
		}
		if err == io.EOF {
			fmt.Println("received", i)
			return nil
		}
		if err != nil {
			return fmt.Errorf("get %d: %w", i, err)
		}
		for _, v := range dst[:k] {
			if v != slotValue(i) {
				return fmt.Errorf("value %d: got %x", i, v[:])
			}
			i++
		}
	}
}
