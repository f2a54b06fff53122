package proc

// PoolDuplicates returns how many results p received for tasks already
// answered: always 0 unless the pool's accounting is wrong.
func PoolDuplicates[In, Out any](p *Pool[In, Out]) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.duplicates
}

// StarterThreads reports how many goroutines (each locked to its thread
// for good) start worker processes: they live as long as the process.
func StarterThreads() int { return starterThreads() }

// PoolReadyWorkers returns how many of p's workers have sent their ready
// message (and may be given tasks).
func PoolReadyWorkers[In, Out any](p *Pool[In, Out]) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, s := range p.slots {
		if s.w != nil && s.w.ready {
			n++
		}
	}
	return n
}
