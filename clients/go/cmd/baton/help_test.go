package main

// Tests of help and completion: the command tree in-process, the binary for
// what a shell sees.

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Every command a person can run documents itself: a one-line Short, a Long
// with its exit codes, an Example, and a usage string for every flag.
func TestEveryCommandHasShortLongWithExitCodesAndExample(t *testing.T) {
	e := &env{g: defaultGlobals(), rec: newRecorder(), ctx: context.Background(), conflictCode: -1}
	root := newRoot(e)
	n := 0
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, s := range c.Commands() {
			walk(s)
		}
		if !c.Runnable() { // help topics: exit-codes, json
			if c.Long == "" || c.Short == "" {
				t.Errorf("help topic %q has no text", c.CommandPath())
			}
			return
		}
		n++
		path := c.CommandPath()
		if c.Short == "" || strings.Contains(c.Short, "\n") {
			t.Errorf("%s: Short %q is not one line", path, c.Short)
		}
		if !strings.Contains(c.Long, "Exit codes") && c.Parent() != nil && c.Parent().Name() != "completion" && c.Name() != "completion" && c.Name() != "help" {
			t.Errorf("%s: Long does not give the exit codes", path)
		}
		if c.Example == "" {
			t.Errorf("%s: no Example", path)
		}
		if !strings.Contains(c.Example, "baton") {
			t.Errorf("%s: the example runs no baton: %q", path, c.Example)
		}
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if f.Usage == "" {
				t.Errorf("%s: flag --%s has no usage", path, f.Name)
			}
		})
	}
	walk(root)
	if n < 45 {
		t.Fatalf("walked %d runnable commands; the tree has more", n)
	}
}

// runIn runs baton in-process (commands that need no server).
func runIn(args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

func TestHelpOfOneCommand(t *testing.T) {
	viaFlag, _, code := runIn("queue", "get", "--help")
	viaHelp, _, code2 := runIn("help", "queue", "get")
	if code != 0 || code2 != 0 || viaFlag != viaHelp {
		t.Fatalf("--help exit %d, help exit %d, same text %v", code, code2, viaFlag == viaHelp)
	}
	for _, want := range []string{"Usage:\n  baton queue get NAME", "Exit codes: 0 got", "Examples:", "--visibility duration", "Global Flags:", "--json"} {
		if !strings.Contains(viaFlag, want) {
			t.Errorf("'baton queue get --help' lacks %q:\n%s", want, viaFlag)
		}
	}
	if out, _, code := runIn("help", "exit-codes"); code != 0 || !strings.Contains(out, "65-71") {
		t.Fatalf("help exit-codes: exit %d\n%s", code, out)
	}
	if _, errOut, code := runIn("help", "queue", "frob"); code != 2 || !strings.Contains(errOut, `no help topic "queue frob"`) {
		t.Fatalf("help of nothing: exit %d, stderr %q", code, errOut)
	}
	// A usage error is one line naming the command's help, not the usage.
	_, errOut, code := runIn("queue", "get")
	if code != 2 || errOut != "baton queue get: usage: baton queue get NAME [--max N] [--visibility D] [--ack] [--try] [--dead-letters] [flags] (see 'baton queue get --help')\n" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if _, errOut, code := runIn("describe", "x", "--", "true"); code != 2 || !strings.Contains(errOut, "nothing may follow --") {
		t.Fatalf("describe with a command: exit %d, stderr %q", code, errOut)
	}
}

func TestCompletionScriptsAndResourceNames(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		if out := ok(t, "", "completion", sh); !strings.Contains(out, "baton") || len(out) < 500 {
			t.Errorf("completion %s printed %d bytes", sh, len(out))
		}
	}
	prefix := name(t, "comp") + "/"
	token := strings.TrimSpace(ok(t, "", "lock", prefix+"lock", "--ttl", "30s"))
	ok(t, "", "queue", "put", prefix+"queue", "x")
	// What the shell scripts ask: names under the typed prefix, of the
	// command's kind, and no file names (directive 4).
	out := ok(t, "", "__complete", "describe", prefix)
	if !strings.Contains(out, prefix+"lock\n") || !strings.Contains(out, prefix+"queue\n") || !strings.HasSuffix(out, ":4\n") {
		t.Fatalf("describe completes %q", out)
	}
	out = ok(t, "", "__complete", "lock", prefix)
	if !strings.Contains(out, prefix+"lock\n") || strings.Contains(out, prefix+"queue") {
		t.Fatalf("lock completes %q", out)
	}
	out = ok(t, "", "__complete", "queue", "g")
	if !strings.Contains(out, "get\t") {
		t.Fatalf("queue g completes %q", out)
	}
	ok(t, "", "unlock", prefix+"lock", "--token", token)
	ok(t, "", "queue", "delete", prefix+"queue")
}

// The TLS flags are global: every command's help lists them with their
// environment variables.
func TestHelpListsTheTLSFlags(t *testing.T) {
	out, _, code := runIn("health", "--help")
	if code != 0 {
		t.Fatalf("health --help: exit %d", code)
	}
	for _, want := range []string{"--tls ", "$BATON_TLS", "--ca string", "$BATON_CA", "--cert string", "$BATON_CERT",
		"--key string", "$BATON_KEY", "--server-name string", "$BATON_SERVER_NAME"} {
		if !strings.Contains(out, want) {
			t.Errorf("'baton health --help' lacks %q:\n%s", want, out)
		}
	}
}
