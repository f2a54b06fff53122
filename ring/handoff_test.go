package ring

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"testing"
)

// The hand-off tests: a producer goroutine writes ordinary Go heap data
// and then passes a message (or closes the queue), and a consumer
// goroutine that receives it reads that data, with no other
// synchronisation between them. Under -race they pass only because the
// queue tells the race detector about its happens-before edges
// (race.go): without the annotations each one reports a DATA RACE, as
// TestRaceHandoffUnannotated (race builds only) checks in helper
// processes. In other builds they check the values as any test would.

// handoffN is how many messages a hand-off case passes.
const handoffN = 200

// handoffCase runs one hand-off and reports what went wrong.
type handoffCase struct {
	name string
	run  func() error
}

// handoff runs produce in a new goroutine and consume in the caller's,
// on one slice of Go heap data: produce must set vals[i] = i+1 before it
// sends message i, and consume checks vals[i] after it receives message
// i. The only synchronisation between them is the queue's.
//
// The producer stays alive until the consumer is done (on success): the
// race detector may miss a race with the writes of a goroutine that has
// already exited.
func handoff(produce, consume func(vals []int) error) error {
	vals := make([]int, handoffN)
	errc := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		err := produce(vals)
		if err == nil {
			<-done // after the consumer's reads: no edge before them
		}
		errc <- err
	}()
	cerr := consume(vals)
	close(done)
	return errors.Join(cerr, <-errc)
}

// checkVal checks the value written for the message carrying index i.
func checkVal(vals []int, m []byte) error {
	if len(m) != 4 {
		return fmt.Errorf("message of %d bytes", len(m))
	}
	i := int(binary.LittleEndian.Uint32(m))
	if i >= len(vals) {
		return fmt.Errorf("message index %d", i)
	}
	if vals[i] != i+1 { // the read the race detector checks
		return fmt.Errorf("vals[%d] = %d after its message, want %d", i, vals[i], i+1)
	}
	return nil
}

func msgOf(i int) []byte { return binary.LittleEndian.AppendUint32(nil, uint32(i)) }

func handoffCases() []handoffCase {
	ctx := context.Background()
	var cases []handoffCase
	for _, mode := range []Mode{SPSC, MPMC, Slots} {
		cfg := Config{Mode: mode, MaxMessage: 16, Capacity: 8}
		if mode == Slots {
			// Values of the messages' 4 bytes.
			cfg, _ = TypedConfig[[4]byte](cfg)
		}
		add := func(name string, run func(q *Queue) error) {
			cases = append(cases, handoffCase{mode.String() + "/" + name, func() error {
				q, err := CreateAnonymous(cfg)
				if err != nil {
					return err
				}
				err = run(q)
				if q.closed.Load() {
					return err
				}
				return errors.Join(err, q.Close())
			}})
		}
		// putEach puts message i for each value, which it sets first;
		// getEach gets as many and checks each against the values.
		putEach := func(q *Queue) func(vals []int) error {
			return func(vals []int) error {
				for i := range vals {
					vals[i] = i + 1
					if err := q.Put(ctx, msgOf(i)); err != nil {
						return err
					}
				}
				return nil
			}
		}
		getEach := func(q *Queue) func(vals []int) error {
			return func(vals []int) error {
				buf := make([]byte, 16)
				for range vals {
					n, err := q.Get(ctx, buf)
					if err != nil {
						return err
					}
					if err := checkVal(vals, buf[:n]); err != nil {
						return err
					}
				}
				return nil
			}
		}
		add("put-get", func(q *Queue) error {
			return handoff(putEach(q), getEach(q))
		})
		add("tryput-tryget", func(q *Queue) error {
			return handoff(func(vals []int) error {
				for i := range vals {
					vals[i] = i + 1
					for {
						ok, err := q.TryPut(msgOf(i))
						if err != nil || ok {
							if err != nil {
								return err
							}
							break
						}
						runtime.Gosched()
					}
				}
				return nil
			}, func(vals []int) error {
				buf := make([]byte, 16)
				for got := 0; got < len(vals); {
					n, ok, err := q.TryGet(buf)
					if err != nil {
						return err
					}
					if !ok {
						runtime.Gosched()
						continue
					}
					if err := checkVal(vals, buf[:n]); err != nil {
						return err
					}
					got++
				}
				return nil
			})
		})
		add("getappend", func(q *Queue) error {
			return handoff(putEach(q), func(vals []int) error {
				for range vals {
					m, err := q.GetAppend(ctx, nil)
					if err != nil {
						return err
					}
					if err := checkVal(vals, m); err != nil {
						return err
					}
				}
				return nil
			})
		})
		add("putbatch-getbatch", func(q *Queue) error {
			return handoff(func(vals []int) error {
				for i := 0; i < len(vals); i += 5 {
					batch := make([][]byte, 0, 5)
					for j := i; j < min(i+5, len(vals)); j++ {
						vals[j] = j + 1
						batch = append(batch, msgOf(j))
					}
					if n, err := q.PutBatch(ctx, batch); err != nil || n != len(batch) {
						return fmt.Errorf("PutBatch: %d, %v", n, err)
					}
				}
				return nil
			}, func(vals []int) error {
				dst := make([][]byte, 3)
				for got := 0; got < len(vals); {
					for i := range dst {
						dst[i] = make([]byte, 16)
					}
					n, err := q.GetBatch(ctx, dst)
					if err != nil {
						return err
					}
					for _, m := range dst[:n] {
						if err := checkVal(vals, m); err != nil {
							return err
						}
					}
					got += n
				}
				return nil
			})
		})
		add("reserve-next", func(q *Queue) error {
			return handoff(func(vals []int) error {
				for i := range vals {
					vals[i] = i + 1
					n := 8 // more than the message: Commit makes it shorter
					if q.typ.Size != 0 {
						n = int(q.typ.Size) // Slots: exactly a value
					}
					b, err := q.Reserve(ctx, n)
					if err != nil {
						return err
					}
					copy(b, msgOf(i))
					if err := q.Commit(4); err != nil {
						return err
					}
				}
				return nil
			}, func(vals []int) error {
				for range vals {
					m, err := q.Next(ctx)
					if err != nil {
						return err
					}
					if err := checkVal(vals, m); err != nil {
						return err
					}
					if err := q.Release(); err != nil {
						return err
					}
				}
				return nil
			})
		})
		add("trynext", func(q *Queue) error {
			return handoff(putEach(q), func(vals []int) error {
				for got := 0; got < len(vals); {
					m, ok, err := q.TryNext()
					if err != nil {
						return err
					}
					if !ok {
						runtime.Gosched()
						continue
					}
					err = checkVal(vals, m)
					if err := errors.Join(err, q.Release()); err != nil {
						return err
					}
					got++
				}
				return nil
			})
		})
		// Two handles in this process on two mappings of one segment:
		// their annotations must meet on one proxy.
		add("two-mappings", func(q *Queue) error {
			q2, err := OpenFile(ctx, q.File())
			if err != nil {
				return err
			}
			defer q2.Close()
			return handoff(putEach(q), getEach(q2))
		})
		add("closewrite-eof", func(q *Queue) error {
			return handoff(func(vals []int) error {
				for i := range vals {
					vals[i] = i + 1
				}
				return q.CloseWrite()
			}, func(vals []int) error {
				buf := make([]byte, 16)
				if _, err := q.Get(ctx, buf); err != io.EOF {
					return fmt.Errorf("Get after CloseWrite: %v, want io.EOF", err)
				}
				for i := range vals {
					if err := checkVal(vals, msgOf(i)); err != nil {
						return err
					}
				}
				return nil
			})
		})
		add("closewrite-errclosed", func(q *Queue) error {
			return handoff(func(vals []int) error {
				for i := range vals {
					vals[i] = i + 1
				}
				return q.CloseWrite()
			}, func(vals []int) error {
				buf := make([]byte, 16)
				for {
					err := q.Put(ctx, msgOf(0))
					if errors.Is(err, ErrClosed) {
						break
					}
					if err != nil {
						return err
					}
					if _, err := q.Get(ctx, buf); err != nil {
						return err
					}
				}
				for i := range vals {
					if err := checkVal(vals, msgOf(i)); err != nil {
						return err
					}
				}
				return nil
			})
		})
		// Close of a handle after a hand-off on it reads the state the
		// producer's calls left in the handle.
		add("close-after", func(q *Queue) error {
			return handoff(func(vals []int) error {
				vals[0] = 1
				return q.Put(ctx, msgOf(0))
			}, func(vals []int) error {
				buf := make([]byte, 16)
				n, err := q.Get(ctx, buf)
				if err != nil {
					return err
				}
				return errors.Join(checkVal(vals, buf[:n]), q.Close())
			})
		})
	}
	// Typed on a Slots queue: its fast paths copy values without the
	// Queue calls above.
	addTyped := func(name string, run func(t *Typed[[4]byte]) error) {
		cases = append(cases, handoffCase{"slots/typed-" + name, func() error {
			t, err := CreateAnonymousTyped[[4]byte](Config{Mode: Slots, Capacity: 8})
			if err != nil {
				return err
			}
			return errors.Join(run(t), t.Close())
		}})
	}
	valOf := func(i int) (v [4]byte) { copy(v[:], msgOf(i)); return v }
	addTyped("put-get", func(t *Typed[[4]byte]) error {
		return handoff(func(vals []int) error {
			for i := range vals {
				vals[i] = i + 1
				if err := t.Put(ctx, valOf(i)); err != nil {
					return err
				}
			}
			return nil
		}, func(vals []int) error {
			for range vals {
				v, err := t.Get(ctx)
				if err != nil {
					return err
				}
				if err := checkVal(vals, v[:]); err != nil {
					return err
				}
			}
			return nil
		})
	})
	addTyped("batches", func(t *Typed[[4]byte]) error {
		return handoff(func(vals []int) error {
			vs := make([][4]byte, 5)
			for i := 0; i < len(vals); i += len(vs) {
				for j := range vs {
					vals[i+j] = i + j + 1
					vs[j] = valOf(i + j)
				}
				if _, err := t.PutBatch(ctx, vs); err != nil {
					return err
				}
			}
			return nil
		}, func(vals []int) error {
			dst := make([][4]byte, 3)
			for got := 0; got < len(vals); {
				k, err := t.GetBatch(ctx, dst)
				if err != nil {
					return err
				}
				for _, v := range dst[:k] {
					if err := checkVal(vals, v[:]); err != nil {
						return err
					}
				}
				got += k
			}
			return nil
		})
	})
	addConn := func(name string, run func(a, b *Conn) error) {
		cases = append(cases, handoffCase{"pipe/" + name, func() error {
			a, b, err := Pipe(Config{MaxMessage: 16, Capacity: 8})
			if err != nil {
				return err
			}
			err = run(a, b)
			return errors.Join(err, a.Close(), b.Close())
		}})
	}
	addConn("send-recv", func(a, b *Conn) error {
		return handoff(func(vals []int) error {
			for i := range vals {
				vals[i] = i + 1
				if err := a.Send(ctx, msgOf(i)); err != nil {
					return err
				}
			}
			return nil
		}, func(vals []int) error {
			buf := make([]byte, 16)
			for range vals {
				n, err := b.Recv(ctx, buf)
				if err != nil {
					return err
				}
				if err := checkVal(vals, buf[:n]); err != nil {
					return err
				}
			}
			return nil
		})
	})
	addConn("write-read", func(a, b *Conn) error {
		return handoff(func(vals []int) error {
			for i := range vals {
				vals[i] = i + 1
				if _, err := a.Write(msgOf(i)); err != nil {
					return err
				}
			}
			return nil
		}, func(vals []int) error {
			buf := make([]byte, 4)
			for range vals {
				if _, err := io.ReadFull(b, buf); err != nil {
					return err
				}
				if err := checkVal(vals, buf); err != nil {
					return err
				}
			}
			return nil
		})
	})
	addConn("closewrite-eof", func(a, b *Conn) error {
		return handoff(func(vals []int) error {
			for i := range vals {
				vals[i] = i + 1
			}
			return a.CloseWrite()
		}, func(vals []int) error {
			if n, err := b.Read(make([]byte, 4)); err != io.EOF {
				return fmt.Errorf("Read after CloseWrite: %d, %v, want io.EOF", n, err)
			}
			for i := range vals {
				if err := checkVal(vals, msgOf(i)); err != nil {
					return err
				}
			}
			return nil
		})
	})
	return cases
}

// Under -race, each case fails with "DATA RACE" unless the queue reports
// the happens-before edge it passes on.
func TestRaceHandoff(t *testing.T) {
	for _, c := range handoffCases() {
		t.Run(c.name, func(t *testing.T) {
			if err := c.run(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
