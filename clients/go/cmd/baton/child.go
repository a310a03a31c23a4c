package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"
	"unsafe"
)

// holding is something baton holds while a child command runs.
type holding struct {
	what string   // for messages, e.g. "lock billing/migrate"
	env  []string // added to the child's environment
	// lost is closed when the holding is lost (the session ended); nil if it
	// cannot be lost that way. lostErr says why.
	lost    <-chan struct{}
	lostErr func() error
	// refresh renews a lease every refreshEvery (nil: no lease).
	refresh      func(ctx context.Context) error
	refreshEvery time.Duration
	release      func(ctx context.Context) error
}

// forwarded are the signals baton passes on to the child.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

// runWhileHolding runs cmd while h is held, then releases h. It forwards
// signals to the child, stops the child (SIGTERM, then SIGKILL after 10 s)
// if the holding is lost, and returns the child's exit status as a
// childExit (nil for 0), or an exitConflict if the holding was lost.
func (e *env) runWhileHolding(h holding, cmd []string) error {
	child := exec.Command(cmd[0], cmd[1:]...)
	child.Stdin, child.Stdout, child.Stderr = e.stdin, e.stdout, e.stderr
	child.Env = append(os.Environ(), h.env...)
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)
	if err := child.Start(); err != nil {
		if rerr := releaseNow(h); rerr != nil {
			fmt.Fprintf(e.stderr, "baton: releasing the %s: %s\n", h.what, message(rerr))
		}
		fmt.Fprintf(e.stderr, "baton: cannot run %s: %v\n", cmd[0], err)
		return &childExit{startFailureCode(err)}
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()

	var tick <-chan time.Time
	if h.refresh != nil {
		t := time.NewTicker(h.refreshEvery)
		defer t.Stop()
		tick = t.C
	}
	var lostWhy error
	var killTimer <-chan time.Time
	lost := h.lost
	stop := func(why error) {
		if lostWhy != nil {
			return
		}
		lostWhy = why
		lost, tick = nil, nil
		fmt.Fprintf(e.stderr, "baton: lost the %s while %s ran (%v); stopping it\n", h.what, cmd[0], why)
		_ = child.Process.Signal(syscall.SIGTERM)
		killTimer = time.After(10 * time.Second)
	}
	for {
		select {
		case sig := <-sigs:
			if !deliveredByTerminal(sig) {
				_ = child.Process.Signal(sig)
			}
		case <-lost:
			stop(h.lostErr())
		case <-tick:
			ctx, cancel := context.WithTimeout(context.Background(), h.refreshEvery)
			err := h.refresh(ctx)
			cancel()
			if exitCode(err) == exitConflict {
				stop(err)
			}
		case <-killTimer:
			_ = child.Process.Kill()
		case err := <-exited:
			if lostWhy == nil {
				if rerr := releaseNow(h); rerr != nil {
					fmt.Fprintf(e.stderr, "baton: releasing the %s: %s\n", h.what, message(rerr))
				}
			}
			if lostWhy != nil {
				return &exitError{exitConflict, ""}
			}
			return e.childStatus(cmd[0], err)
		}
	}
}

func releaseNow(h holding) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return h.release(ctx)
}

// childStatus turns the child's exit into baton's: its code, or 128+signal;
// a code among baton's own (65..71 on a line with a command) becomes
// childReservedCode, with a note on stderr.
func (e *env) childStatus(name string, err error) error {
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return &exitError{exitFailure, err.Error()}
	}
	code := ee.ExitCode()
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		code = 128 + int(ws.Signal())
	}
	if code > ownCodeOffset+exitOK && code <= ownCodeOffset+exitRemoteError {
		fmt.Fprintf(e.stderr, "baton: %s exited %d; reported as %d, since %d-%d are baton's own exit codes\n",
			name, code, childReservedCode, ownCodeOffset+exitFailure, ownCodeOffset+exitRemoteError)
		code = childReservedCode
	}
	return &childExit{code}
}

// startFailureCode is the exit code for a command that could not be started,
// as shells have it: 127 not found, 126 found but not executable.
func startFailureCode(err error) int {
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		return exitCmdNotFound
	}
	return exitCmdNotExecutable
}

// deliveredByTerminal tells whether sig (Ctrl-C, Ctrl-\) was most likely sent
// by the terminal to the whole foreground process group, which the child is
// in too: then forwarding it would deliver it twice.
func deliveredByTerminal(sig os.Signal) bool {
	if sig != syscall.SIGINT && sig != syscall.SIGQUIT {
		return false
	}
	tty, err := os.Open("/dev/tty")
	if err != nil {
		return false
	}
	defer tty.Close()
	var pgrp int32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, tty.Fd(), syscall.TIOCGPGRP, uintptr(unsafe.Pointer(&pgrp))); errno != 0 {
		return false
	}
	return int(pgrp) == syscall.Getpgrp()
}

func envVar(k string, v any) string { return k + "=" + fmt.Sprint(v) }
