package proc

import (
	"context"
	"sync"
)

// Func is a worker function registered by name with Register and started
// in a new process with Start or StartWith.
type Func struct {
	name string
	fn   func(ctx context.Context, args *Args) error
	late bool // registered after Main ran: the child would not know it
}

var registry struct {
	mu      sync.Mutex
	funcs   map[string]*Func
	mainRan bool
}

// Register registers fn under name and returns the Func to start it with.
// Call it at package level or in init, before Main runs, so that the
// re-executed binary registers the same function before Main dispatches:
//
//	var child = proc.Register("child", func(ctx context.Context, args *proc.Args) error {
//		...
//	})
//
// A Func registered after Main has run is marked late, and starting it
// fails with ErrNotRegistered. Registering a name twice panics, like
// redefining a flag: it is a programming error.
func Register(name string, fn func(ctx context.Context, args *Args) error) *Func {
	if name == "" || fn == nil {
		panic("proc: Register with an empty name or a nil function")
	}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if registry.funcs == nil {
		registry.funcs = map[string]*Func{}
	}
	if _, dup := registry.funcs[name]; dup {
		panic("proc: function registered twice: " + name)
	}
	f := &Func{name: name, fn: fn, late: registry.mainRan}
	registry.funcs[name] = f
	return f
}

// Name returns the name f was registered under.
func (f *Func) Name() string { return f.name }

// lookup returns the Func registered under name, or nil.
func lookup(name string) *Func {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	return registry.funcs[name]
}

// markMain records that Main ran; Funcs registered from now on are late.
func markMain() {
	registry.mu.Lock()
	registry.mainRan = true
	registry.mu.Unlock()
}

func mainRan() bool {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	return registry.mainRan
}
