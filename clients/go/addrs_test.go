package baton

import (
	"reflect"
	"testing"
)

func TestSplitAddrs(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"127.0.0.1:7411", nil},
		{"dns:///baton.internal:7411", nil},
		{"h1:7411,h2:7411, h3:7411", []string{"h1:7411", "h2:7411", "h3:7411"}},
		{"ipv4:10.0.0.1:7411,10.0.0.2:7411", []string{"10.0.0.1:7411", "10.0.0.2:7411"}},
		{"ipv4:10.0.0.1:7411", []string{"10.0.0.1:7411"}},
		{"ipv6:[::1]:7411,[::1]:7412", []string{"[::1]:7411", "[::1]:7412"}},
	} {
		if got := splitAddrs(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("splitAddrs(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if !isLoopback("ipv4:127.0.0.1:1,127.0.0.2:2") || isLoopback("127.0.0.1:1,10.0.0.1:2") {
		t.Error("isLoopback of a list: loopback only if every address is")
	}
}
