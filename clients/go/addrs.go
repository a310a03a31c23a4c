package baton

// Several addresses: the nodes of a cluster, any of which serves the whole
// API (a follower relays to the leader).

import (
	"net"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

// splitAddrs returns the addresses of a comma-separated list
// ("h1:7411,h2:7411,h3:7411"), also written as gRPC's "ipv4:" and "ipv6:"
// targets take them ("ipv4:10.0.0.1:7411,10.0.0.2:7411", which grpc-go
// itself does not resolve), or nil if addr is one target (which may be any
// target grpc-go resolves: "dns:///name:7411" gives every address of the
// name).
func splitAddrs(addr string) []string {
	list := addr
	for _, scheme := range []string{"ipv4:", "ipv6:"} {
		if rest, ok := strings.CutPrefix(addr, scheme); ok {
			list = rest
		}
	}
	if list == addr && (!strings.Contains(addr, ",") || strings.Contains(addr, "/")) {
		return nil
	}
	var out []string
	for _, a := range strings.Split(list, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// multiTarget is the gRPC target and dial option for several addresses:
// a resolver of this connection alone that hands them all to gRPC's
// pick_first, which connects to the first that answers and, when that one
// goes away, to the next. Since every node serves every call, the client
// needs no knowledge of which one leads; the server's relay and the
// client's retries by request_id do the rest.
func multiTarget(addrs []string) (string, grpc.DialOption) {
	r := manual.NewBuilderWithScheme("baton-nodes")
	state := resolver.State{}
	for _, a := range addrs {
		host := a
		if h, _, err := net.SplitHostPort(a); err == nil {
			host = h
		}
		// ServerName: each node's TLS certificate is checked against its
		// own host name, not the list's.
		state.Addresses = append(state.Addresses, resolver.Address{Addr: a, ServerName: host})
	}
	r.InitialState(state)
	return r.Scheme() + ":///" + addrs[0], grpc.WithResolvers(r)
}
