package shmnet

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/shmkit/shmkit/internal/testproc"
)

// healthService answers deterministically, so that every reply can be
// checked: Check says SERVING for a service named "ok-*", NOT_SERVING for
// "down-*", NOT_FOUND otherwise; Watch of "stream-N" sends N statuses,
// alternating SERVING and NOT_SERVING, then ends.
type healthService struct {
	healthpb.UnimplementedHealthServer
}

func (healthService) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	switch {
	case strings.HasPrefix(req.Service, "ok-"):
		return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
	case strings.HasPrefix(req.Service, "down-"):
		return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_NOT_SERVING}, nil
	}
	return nil, status.Error(codes.NotFound, "unknown service "+req.Service)
}

func (healthService) Watch(req *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	var n int
	if _, err := fmt.Sscanf(req.Service, "stream-%d", &n); err != nil {
		return status.Error(codes.InvalidArgument, req.Service)
	}
	for i := range n {
		st := healthpb.HealthCheckResponse_SERVING
		if i%2 == 1 {
			st = healthpb.HealthCheckResponse_NOT_SERVING
		}
		if err := stream.Send(&healthpb.HealthCheckResponse{Status: st}); err != nil {
			return err
		}
	}
	return nil
}

func init() {
	// grpc-server NAME: serve the health service on NAME.
	testproc.Register("grpc-server", func(args []string) int {
		ln, err := Listen(args[0])
		if err != nil {
			return fail("listen: %v", err)
		}
		s := grpc.NewServer()
		healthpb.RegisterHealthServer(s, healthService{})
		testproc.Printf("ready")
		return fail("serve: %v", s.Serve(ln))
	})
}

// TestGRPCCrossProcess calls a gRPC server in another process through
// shmnet: unary calls from 8 goroutines and server streams, every reply
// checked.
func TestGRPCCrossProcess(t *testing.T) {
	name := testName(t)
	p := testproc.Start(t, "grpc-server", name)
	defer p.Kill()
	p.Expect(t, "ready")
	conn, err := grpc.NewClient("passthrough:///api",
		grpc.WithContextDialer(ContextDialer(name)),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	const calls = 2000
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	start := time.Now()
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < calls; i += 8 {
				svc, want, code := fmt.Sprintf("ok-%d", i), healthpb.HealthCheckResponse_SERVING, codes.OK
				switch i % 3 {
				case 1:
					svc, want = fmt.Sprintf("down-%d", i), healthpb.HealthCheckResponse_NOT_SERVING
				case 2:
					svc, code = fmt.Sprintf("nope-%d", i), codes.NotFound
				}
				resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
				switch {
				case status.Code(err) != code:
					errs <- fmt.Errorf("Check(%s): %v, want code %v", svc, err, code)
				case err == nil && resp.Status != want:
					errs <- fmt.Errorf("Check(%s) = %v, want %v", svc, resp.Status, want)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d unary calls in %v", calls, time.Since(start).Round(time.Millisecond))

	for _, n := range []int{1, 10, 1000} {
		stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{Service: fmt.Sprintf("stream-%d", n)})
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for {
			resp, err := stream.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("stream of %d, message %d: %v", n, got, err)
			}
			want := healthpb.HealthCheckResponse_SERVING
			if got%2 == 1 {
				want = healthpb.HealthCheckResponse_NOT_SERVING
			}
			if resp.Status != want {
				t.Fatalf("stream of %d, message %d: %v, want %v", n, got, resp.Status, want)
			}
			got++
		}
		if got != n {
			t.Fatalf("stream of %d: %d messages", n, got)
		}
	}
}
