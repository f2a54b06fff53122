// cring: the reference ring of internal/refring written in C, to check
// that the Go reference is as fast as a bare C ring (issue 11). Two
// processes (fork) share an anonymous mapping: a head line, a tail line,
// then N slots of 64 bytes. The producer copies each message into the next
// slot and publishes the tail with a release store; the consumer reads the
// tail with an acquire load, copies the slot out, checks the sequence
// number in its first 8 bytes and publishes the head with a release store.
// Both keep a cached copy of the other's index and reload it only when
// the ring looks full (empty). The producer is pinned to CPU A and the
// consumer to CPU B when given.
//
// usage: cring MESSAGES [CPU_A CPU_B]
// prints: "N messages in T ns" on success.
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 1024u
#define SLOT 64u
#define LINE 64u

static void pin(int cpu) {
	if (cpu < 0) return;
	cpu_set_t s;
	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	sched_setaffinity(0, sizeof s, &s);
}

static uint64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv) {
	if (argc < 2) {
		fprintf(stderr, "usage: cring MESSAGES [CPU_A CPU_B]\n");
		return 2;
	}
	uint64_t n = strtoull(argv[1], 0, 10);
	int ca = argc > 3 ? atoi(argv[2]) : -1, cb = argc > 3 ? atoi(argv[3]) : -1;
	size_t size = 2 * LINE + SLOTS * SLOT;
	unsigned char *mem = mmap(0, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	uint64_t *head = (uint64_t *)mem, *tail = (uint64_t *)(mem + LINE);
	unsigned char *data = mem + 2 * LINE;
	volatile uint64_t *go = (uint64_t *)(mem + 8); // start flag, on the head line before any head store
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) { // consumer
		pin(cb);
		unsigned char buf[SLOT];
		uint64_t h = 0, ct = 0;
		__atomic_store_n(go, 1, __ATOMIC_SEQ_CST);
		while (h < n) {
			if (h == ct) {
				ct = __atomic_load_n(tail, __ATOMIC_ACQUIRE);
				if (h == ct) continue;
			}
			memcpy(buf, data + (h & (SLOTS - 1)) * SLOT, SLOT);
			uint64_t seq;
			memcpy(&seq, buf, 8);
			if (seq != h + 1) {
				fprintf(stderr, "message %llu carries %llu\n", (unsigned long long)h, (unsigned long long)seq);
				_exit(1);
			}
			h++;
			__atomic_store_n(head, h, __ATOMIC_RELEASE);
		}
		_exit(0);
	}
	pin(ca);
	while (!__atomic_load_n(go, __ATOMIC_SEQ_CST)) {
	}
	unsigned char msg[SLOT] = {0};
	uint64_t t = 0, ch = 0;
	uint64_t t0 = now_ns();
	while (t < n) {
		if (t - ch >= SLOTS) {
			ch = __atomic_load_n(head, __ATOMIC_ACQUIRE);
			if (t - ch >= SLOTS) continue;
		}
		uint64_t seq = t + 1;
		memcpy(msg, &seq, 8);
		memcpy(data + (t & (SLOTS - 1)) * SLOT, msg, SLOT);
		t++;
		__atomic_store_n(tail, t, __ATOMIC_RELEASE);
	}
	int st;
	waitpid(pid, &st, 0);
	uint64_t dt = now_ns() - t0;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "consumer failed\n");
		return 1;
	}
	printf("%llu messages in %llu ns\n", (unsigned long long)n, (unsigned long long)dt);
	return 0;
}
