package main

// Output: with --json every command prints the reply message of its call as
// protojson, one object per line. The replies are taken from the wire by a
// gRPC interceptor (recorder), so what is printed is what the server sent,
// also when the library behind the command retried or made other calls.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// jsonOptions is the one JSON schema of --json: the protobuf JSON mapping
// with the proto field names (snake_case, as in the .proto files and as
// grpcurl prints them), every field present (zero values too; unset messages
// as null), 64-bit integers as strings, enums by name, durations as "1.5s",
// bytes as base64.
var jsonOptions = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}

// recorder keeps the replies of the calls baton makes, by full method name
// (e.g. batonv1.Locks_Acquire_FullMethodName).
type recorder struct {
	mu      sync.Mutex
	last    map[string]proto.Message
	all     map[string][]proto.Message // for methods in collect
	collect map[string]bool
	// after are called with each successful unary call's request and reply.
	after map[string]func(req, reply proto.Message)
}

func newRecorder() *recorder {
	return &recorder{last: map[string]proto.Message{}, all: map[string][]proto.Message{},
		collect: map[string]bool{}, after: map[string]func(req, reply proto.Message){}}
}

func (r *recorder) record(method string, req, reply any) {
	m, ok := reply.(proto.Message)
	if !ok {
		return
	}
	r.mu.Lock()
	r.last[method] = m
	if r.collect[method] {
		r.all[method] = append(r.all[method], m)
	}
	hook := r.after[method]
	r.mu.Unlock()
	if hook != nil {
		q, _ := req.(proto.Message)
		hook(q, m)
	}
}

// lastReply is the newest successful reply of method (nil if none).
func (r *recorder) lastReply(method string) proto.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last[method]
}

// keepAll makes the recorder keep every reply of method, for allReplies.
func (r *recorder) keepAll(method string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.collect[method] = true
}

func (r *recorder) allReplies(method string) []proto.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]proto.Message{}, r.all[method]...)
}

// onReply calls fn after every successful call of method.
func (r *recorder) onReply(method string, fn func(req, reply proto.Message)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.after[method] = fn
}

func (r *recorder) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
	invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	if err == nil {
		r.record(method, req, reply)
	}
	return err
}

func (r *recorder) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string,
	streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		return nil, err
	}
	return &recordingStream{ClientStream: s, r: r, method: method}, nil
}

// recordingStream records every message received.
type recordingStream struct {
	grpc.ClientStream
	r      *recorder
	method string
}

func (s *recordingStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err == nil {
		s.r.record(s.method, nil, m)
	}
	return err
}

// marshal renders m as one line of JSON in the --json schema.
func marshal(m proto.Message) ([]byte, error) {
	b, err := jsonOptions.Marshal(m)
	if err != nil {
		return nil, err
	}
	// protojson randomizes its whitespace on purpose; print it compact so
	// that the output is stable.
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// printMsg prints m as one line of JSON.
func (e *env) printMsg(m proto.Message) {
	b, err := marshal(m)
	if err != nil {
		fmt.Fprintf(e.stderr, "baton: cannot encode JSON: %v\n", err)
		return
	}
	fmt.Fprintf(e.stdout, "%s\n", b)
}

// reply prints, with --json, the newest reply of method; else the text
// (format "" prints nothing).
func (e *env) reply(method string, format string, args ...any) {
	if e.g.json {
		m := e.rec.lastReply(method)
		if m == nil {
			fmt.Fprintf(e.stderr, "baton: no reply of %s to print\n", method)
			return
		}
		e.printMsg(m)
		return
	}
	if format != "" {
		fmt.Fprintf(e.stdout, format, args...)
	}
}
