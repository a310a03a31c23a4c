// Package authtest is an in-process gRPC server for the token tests: it
// answers every method (grpc.health.v1.Health/Check with SERVING, any other
// with one empty message) and records the "authorization" metadata each call
// arrived with.
package authtest

import (
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Server records the calls it got.
type Server struct {
	Addr string // 127.0.0.1:port

	mu    sync.Mutex
	calls map[string][]string // full method -> the authorization values of each call, "" for none
}

// Start serves on 127.0.0.1 port 0 until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: lis.Addr().String(), calls: map[string][]string{}}
	gs := grpc.NewServer(grpc.UnknownServiceHandler(s.handle))
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return s
}

func (s *Server) handle(_ any, stream grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(stream)
	md, _ := metadata.FromIncomingContext(stream.Context())
	auth := ""
	if v := md.Get("authorization"); len(v) > 0 {
		auth = v[0]
	}
	s.mu.Lock()
	s.calls[method] = append(s.calls[method], auth)
	s.mu.Unlock()
	// Every method's first request message decodes as Empty (its fields
	// unknown); the reply is SERVING for a health check, else empty.
	if err := stream.RecvMsg(&emptypb.Empty{}); err != nil {
		return err
	}
	if method == "/grpc.health.v1.Health/Check" {
		return stream.SendMsg(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING})
	}
	return stream.SendMsg(&emptypb.Empty{})
}

// Auth returns the authorization values the calls of a method (full name,
// "/baton.v1.Admin/Describe") arrived with, in order; "" for a call without.
func (s *Server) Auth(method string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls[method]...)
}

// Methods returns the methods called so far.
func (s *Server) Methods() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var m []string
	for k := range s.calls {
		m = append(m, k)
	}
	return m
}
