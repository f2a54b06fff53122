package shmnet_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/shmkit/shmkit/shmnet"
)

// An http.Server on a shmnet listener, and a client whose transport dials
// it. The two would normally be different processes; here they are one,
// so that the example runs as it is.
func Example() {
	name := fmt.Sprintf("example-http-%d", os.Getpid())
	ln, err := shmnet.Listen(name)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello, %s", r.URL.Path[1:])
	})}
	go srv.Serve(ln)
	defer srv.Close()

	client := &http.Client{Transport: &http.Transport{DialContext: shmnet.Dialer(name)}}
	resp, err := client.Get("http://any-host/world") // the host is not looked at
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status, string(b))
	// Output: 200 OK hello, world
}

// A grpc.Server on a shmnet listener, and a client connection that dials
// it with grpc.WithContextDialer.
func Example_grpc() {
	name := fmt.Sprintf("example-grpc-%d", os.Getpid())
	ln, err := shmnet.Listen(name)
	if err != nil {
		log.Fatal(err)
	}
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, health.NewServer())
	go s.Serve(ln)
	defer s.Stop()

	conn, err := grpc.NewClient("passthrough:///"+name,
		grpc.WithContextDialer(shmnet.ContextDialer(name)),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Status)
	// Output: SERVING
}
