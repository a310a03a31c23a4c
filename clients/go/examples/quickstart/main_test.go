package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/baton/baton/clients/go/internal/suiteserver"
)

// The example runs against a real server (with TLS and a token under
// BATON_TEST_SECURE=1) and prints what its comments say.
func TestQuickstartRuns(t *testing.T) {
	srv, err := suiteserver.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, srv.Addr, fmt.Sprintf("example-%d", os.Getpid()), &out, srv.Options()...); err != nil {
		t.Fatal(err)
	}
	want := "migrating with fencing token > 0: true\n" +
		"results: thumb-a.png, thumb-b.png, thumb-c.png\n" +
		"batch: 3 thumbnails\n"
	if out.String() != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out.String(), want)
	}
}
