package examples_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestPrefork runs the prefork server with four workers, sends it real
// HTTP requests (a new connection each, so that SO_REUSEPORT spreads them),
// SIGKILLs a worker half-way, and checks the shared totals exactly: every
// request counted once, per path, the cache computed once and served by
// other workers, and the replacement worker serving.
func TestPrefork(t *testing.T) {
	t.Parallel()
	dir := build(t)
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "prefork"), "-addr", "127.0.0.1:0", "-workers", "4")
	cmd.WaitDelay = 5 * time.Second
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	rd := bufio.NewReader(out)
	first, err := rd.ReadString('\n')
	if err != nil {
		t.Fatalf("no first line: %v\nstderr:\n%s", err, &stderr)
	}
	m := regexp.MustCompile(`^prefork: 4 workers \(pids (\d+) (\d+) (\d+) (\d+)\) on (http://127\.0\.0\.1:\d+)\n$`).FindStringSubmatch(first)
	if m == nil {
		t.Fatalf("first line %q", first)
	}
	workers := map[string]bool{m[1]: true, m[2]: true, m[3]: true, m[4]: true}
	url := m[5]

	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	// get may run on the phases' goroutines: it reports with t.Errorf
	// (t.Fatalf must not be called off the test's goroutine) and returns
	// an empty header on failure.
	get := func(path string) (string, http.Header) {
		t.Helper()
		resp, err := client.Get(url + path)
		if err != nil {
			t.Errorf("GET %s: %v", path, err)
			return "", http.Header{}
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s %q %v", path, resp.Status, body, err)
			return "", http.Header{}
		}
		return string(body), resp.Header
	}

	var mu sync.Mutex
	served := map[string]int{} // pid → requests
	sent := map[string]uint64{}
	phase := func(perPath int) {
		var wg sync.WaitGroup
		paths := []string{"/a", "/b", "/c/d"}
		for g := range 6 {
			wg.Go(func() {
				for i := range perPath {
					path := paths[(g+i)%len(paths)]
					body, h := get(path)
					pid := h.Get("X-Worker")
					if want := fmt.Sprintf("hello from worker %s: %s\n", pid, path); body != want {
						t.Errorf("GET %s = %q, want %q", path, body, want)
					}
					mu.Lock()
					served[pid]++
					sent[path]++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	phase(30)

	// /fib/27 ten times: the first computes, the other nine are cache
	// hits, whichever workers answer them.
	fibBy := map[string]string{}
	for i := range 10 {
		body, h := get("/fib/27")
		if body != "196418\n" {
			t.Fatalf("fib(27) = %q", body)
		}
		want := "hit"
		if i == 0 {
			want = "miss"
		}
		if h.Get("X-Cache") != want {
			t.Errorf("fib request %d: X-Cache %q, want %q", i, h.Get("X-Cache"), want)
		}
		fibBy[h.Get("X-Worker")] = h.Get("X-Cache")
		served[h.Get("X-Worker")]++
	}
	sent["/fib/27"] = 10

	// Kill a worker; the parent starts another, and the counts go on.
	var victim string
	for pid := range served {
		victim = pid
		break
	}
	var vpid int
	fmt.Sscan(victim, &vpid)
	if err := syscall.Kill(vpid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !regexp.MustCompile(`worker \d+ listening`).MatchString(stderr.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("no replacement listening for worker %s; stderr:\n%s", victim, &stderr)
		}
		time.Sleep(10 * time.Millisecond) // polling the parent's log, not a guess at timing
	}
	phase(20)

	body, _ := get("/stats")
	var st struct {
		Requests int64
		Hits     map[string]uint64
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/stats %q: %v", body, err)
	}
	total := 0
	for _, n := range sent {
		total += int(n)
	}
	if st.Requests != int64(total) {
		t.Errorf("shared request counter %d, sent %d", st.Requests, total)
	}
	if fmt.Sprint(st.Hits) != fmt.Sprint(sent) {
		t.Errorf("shared hit counts %v, sent %v", st.Hits, sent)
	}
	if len(served) < 2 {
		t.Errorf("one worker served everything: %v", served)
	}
	replaced := 0
	for pid := range served {
		if !workers[pid] {
			replaced++
		}
	}
	t.Logf("served by pid: %v (fib by %v)", served, fibBy)
	if replaced != 1 {
		// 120 new connections over 4 workers all missing the new one:
		// (3/4)^120, about 1e-15.
		t.Errorf("%d pids beyond the first four served; want the one replacement", replaced)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(rd)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("prefork after SIGTERM: %v\nstderr:\n%s", err, &stderr)
	}
	if want := fmt.Sprintf("prefork: served %d requests over %d paths\n", total, len(sent)); string(rest) != want {
		t.Errorf("last line %q, want %q", rest, want)
	}
}

// lockedBuffer is a bytes.Buffer that the test reads while the command
// writes it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
