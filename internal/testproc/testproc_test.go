package testproc

import "testing"

func TestMain(m *testing.M) { Main(m) }

func init() {
	Register("echo", func(args []string) int {
		for _, a := range args {
			Printf("%s", a)
		}
		return len(args)
	})
	Register("block", func(args []string) int {
		Printf("ready")
		select {}
	})
}

func TestEcho(t *testing.T) {
	p := Start(t, "echo", "a", "b c", "")
	p.Expect(t, "a")
	p.Expect(t, "b c")
	p.Expect(t, "")
	err := p.Wait()
	if err == nil {
		t.Fatal("exit code 3 reported as success")
	}
	p = Start(t, "echo")
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestKill(t *testing.T) {
	p := Start(t, "block")
	p.Expect(t, "ready")
	p.Kill()
	if err := p.Wait(); !Killed(err) {
		t.Fatalf("Wait after Kill = %v", err)
	}
}
