// Package testserver starts batond for tests: on 127.0.0.1 port 0, from the
// binary named by $BATOND (default: build/service/batond of this repository),
// with a temporary data directory of its own, stopped with SIGTERM.
package testserver

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Server is a running batond.
type Server struct {
	// Addr is "127.0.0.1:PORT".
	Addr    string
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	dataDir string        // made by Start, removed by Stop; "" if none
}

// Binary is the batond to run: $BATOND, else the repository's build.
func Binary() string {
	if b := os.Getenv("BATOND"); b != "" {
		return b
	}
	_, file, _, _ := runtime.Caller(0)
	// file is clients/go/internal/testserver/testserver.go.
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "build", "service", "batond")
}

// namesOwnDataDir reports whether batond flags choose their own --data_dir
// or say --durability=none: then Start adds no data directory.
func namesOwnDataDir(flags []string) bool {
	for i, f := range flags {
		if !strings.HasPrefix(f, "-") {
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(f, "-"), "=")
		if !hasValue && i+1 < len(flags) { // "--flag value"
			value = flags[i+1]
		}
		if name == "data_dir" || (name == "durability" && value == "none") {
			return true
		}
	}
	return false
}

// Start starts batond with extra flags and waits until it listens. Unless
// extra names its own --data_dir or says --durability=none, the server gets a
// fresh temporary data directory, removed by Stop once it has exited.
func Start(extra ...string) (*Server, error) {
	bin := Binary()
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("batond not found at %s (set BATOND): %w", bin, err)
	}
	args := []string{"--listen", "127.0.0.1:0"}
	dataDir := ""
	if !namesOwnDataDir(extra) {
		d, err := os.MkdirTemp("", "baton-go-test-data-")
		if err != nil {
			return nil, err
		}
		dataDir = d
		args = append(args, "--data_dir", dataDir)
	}
	args = append(args, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		if dataDir != "" {
			_ = os.RemoveAll(dataDir)
		}
		return nil, err
	}
	s := &Server{cmd: cmd, done: make(chan struct{}), dataDir: dataDir}
	addrCh := make(chan string, 1)
	go func() {
		r := bufio.NewReader(out)
		for {
			line, err := r.ReadString('\n')
			if a, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on "); ok {
				addrCh <- a
				_, _ = io.Copy(io.Discard, r)
				return
			}
			if err != nil {
				close(addrCh)
				return
			}
		}
	}()
	go func() { _ = cmd.Wait(); close(s.done) }()
	select {
	case a, ok := <-addrCh:
		if !ok {
			s.Stop()
			return nil, errors.New("batond exited before listening")
		}
		s.Addr = a
		return s, nil
	case <-time.After(15 * time.Second):
		s.Stop()
		return nil, errors.New("batond did not print its address within 15 s")
	}
}

// Stop sends SIGTERM and waits for the server to exit (SIGKILL after 10 s),
// then removes the data directory Start made. Safe to call more than once.
func (s *Server) Stop() {
	select {
	case <-s.done:
	default:
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	if s.dataDir != "" {
		_ = os.RemoveAll(s.dataDir)
	}
}

// AuthFlags writes a tokens file and a policy file into dir (which must
// exist) and returns the batond flags that name them (--auth_policy,
// --auth_tokens). tokens maps each principal to its token (the file holds
// the token's SHA-256 in hex, as batond reads it); policy is the policy
// file's lines (`role NAME ACCESS PREFIX...`, `grant PRINCIPAL ROLE...`).
func AuthFlags(dir string, tokens map[string]string, policy ...string) ([]string, error) {
	var tb strings.Builder
	for principal, token := range tokens {
		sum := sha256.Sum256([]byte(token))
		fmt.Fprintf(&tb, "%s %s\n", principal, hex.EncodeToString(sum[:]))
	}
	tokensFile := filepath.Join(dir, "tokens")
	policyFile := filepath.Join(dir, "policy")
	if err := os.WriteFile(tokensFile, []byte(tb.String()), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(policyFile, []byte(strings.Join(policy, "\n")+"\n"), 0o600); err != nil {
		return nil, err
	}
	return []string{"--auth_policy", policyFile, "--auth_tokens", tokensFile}, nil
}

// NewToken returns a random token: 32 bytes in hex.
func NewToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
