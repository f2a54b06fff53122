package proc_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/proc"
)

// logWorker logs through slog.Default() at several levels, and writes to
// its standard output and error.
var logWorker = proc.Register("logger", func(ctx context.Context, a *proc.Args) error {
	var idx int
	if err := a.Decode(0, &idx); err != nil {
		return err
	}
	slog.Debug("dropped", "i", idx)
	slog.Info("hello", "i", idx, slog.Group("g", "a", 1.5, "s", "x"))
	slog.With("w", "with").Warn("careful", "i", idx)
	fmt.Printf("out %d\nsecond line", idx)
	fmt.Fprintf(os.Stderr, "err %d\n", idx)
	return nil
})

// capture is a slog.Handler that keeps every record with its attributes
// flattened into "group.key=value" strings.
type capture struct {
	mu    *sync.Mutex
	recs  *[]captured
	attrs []string
	level slog.Level
}

type captured struct {
	level slog.Level
	msg   string
	attrs []string
}

func newCapture(level slog.Level) *capture {
	return &capture{mu: new(sync.Mutex), recs: new([]captured), level: level}
}

func flatten(prefix string, a slog.Attr) []string {
	if a.Value.Kind() == slog.KindGroup {
		var out []string
		for _, g := range a.Value.Group() {
			out = append(out, flatten(prefix+a.Key+".", g)...)
		}
		return out
	}
	return []string{prefix + a.Key + "=" + a.Value.String()}
}

func (c *capture) Enabled(_ context.Context, l slog.Level) bool { return l >= c.level }
func (c *capture) WithGroup(string) slog.Handler                { panic("not used") }
func (c *capture) WithAttrs(as []slog.Attr) slog.Handler {
	d := *c
	d.attrs = slices.Clone(c.attrs)
	for _, a := range as {
		d.attrs = append(d.attrs, flatten("", a)...)
	}
	return &d
}
func (c *capture) Handle(_ context.Context, r slog.Record) error {
	attrs := slices.Clone(c.attrs)
	r.Attrs(func(a slog.Attr) bool { attrs = append(attrs, flatten("", a)...); return true })
	c.mu.Lock()
	defer c.mu.Unlock()
	*c.recs = append(*c.recs, captured{r.Level, r.Message, attrs})
	return nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLogs: the slog records of 4 workers all reach the parent's handler,
// with the worker's pid and name, in order, with their attributes and
// groups; records below the handler's level are not sent. Output written
// to Config.Stdout and Stderr arrives as written.
func TestLogs(t *testing.T) {
	const n = 4
	h := newCapture(slog.LevelInfo)
	var ps []*proc.Process
	var outs, errs []*syncBuffer
	for i := range n {
		o, e := new(syncBuffer), new(syncBuffer)
		outs, errs = append(outs, o), append(errs, e)
		p, err := logWorker.StartWith(context.Background(),
			proc.Config{Name: "lw" + strconv.Itoa(i), Logger: slog.New(h), Stdout: o, Stderr: e}, i)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	for _, p := range ps {
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string][]string{} // pid -> records
	for _, r := range *h.recs {
		pid := ""
		for _, a := range r.attrs {
			if v, ok := strings.CutPrefix(a, "pid="); ok {
				pid = v
			}
		}
		got[pid] = append(got[pid], fmt.Sprintf("%v %s %s", r.level, r.msg, strings.Join(r.attrs, " ")))
	}
	for i, p := range ps {
		pid := strconv.Itoa(p.Pid())
		want := []string{
			fmt.Sprintf("INFO hello pid=%s worker=lw%d i=%d g.a=1.5 g.s=x", pid, i, i),
			fmt.Sprintf("WARN careful pid=%s worker=lw%d w=with i=%d", pid, i, i),
		}
		if !slices.Equal(got[pid], want) {
			t.Errorf("worker %d records:\n%q\nwant\n%q", i, got[pid], want)
		}
		if o, want := outs[i].String(), fmt.Sprintf("out %d\nsecond line", i); o != want {
			t.Errorf("worker %d stdout %q, want %q", i, o, want)
		}
		if e, want := errs[i].String(), fmt.Sprintf("err %d\n", i); e != want {
			t.Errorf("worker %d stderr %q, want %q", i, e, want)
		}
	}
	if len(*h.recs) != 2*n {
		t.Errorf("%d records, want %d", len(*h.recs), 2*n)
	}
}

func init() {
	// passthrough starts logWorker with the default Config: its output
	// must come out of this helper's own stdout and stderr, prefixed.
	testproc.Register("passthrough", func(args []string) int {
		p, err := logWorker.Start(context.Background(), 7)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := p.Wait(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		testproc.Printf("pid %d", p.Pid())
		return 0
	})
}

// TestOutputPassthrough: by default a worker's stdout and stderr go to
// the parent's, each line prefixed "[name pid] ", a last line without a
// newline completed.
func TestOutputPassthrough(t *testing.T) {
	p := testproc.Start(t, "passthrough")
	l1, l2, l3 := p.Line(t), p.Line(t), p.Line(t)
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`^pid (\d+)$`).FindStringSubmatch(l3)
	if m == nil {
		t.Fatalf("lines %q, %q, %q", l1, l2, l3)
	}
	prefix := "[logger " + m[1] + "] "
	if l1 != prefix+"out 7" || l2 != prefix+"second line" {
		t.Errorf("stdout lines %q, %q, want the prefix %q", l1, l2, prefix)
	}
	if !strings.Contains(p.Stderr(), prefix+"err 7\n") {
		t.Errorf("stderr %q, want %q", p.Stderr(), prefix+"err 7")
	}
}
