package linearizability

// The models on small hand-made histories: they must accept what a correct
// server may do (unknown outcomes included) and reject a violation. These
// need no batond.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

type h []record

func acq(c int, call, ret int64, st opStatus, token uint64) record {
	return record{in: opInput{kind: kAcquire, client: c}, out: opOutput{st: st, val: token}, call: call, ret: ret}
}

func try(c int, call, ret int64, st opStatus, token uint64) record {
	return record{in: opInput{kind: kTryAcquire, client: c}, out: opOutput{st: st, val: token}, call: call, ret: ret}
}

func rel(c int, call, ret int64, st opStatus, token uint64) record {
	return record{in: opInput{kind: kRelease, client: c, arg: token}, out: opOutput{st: st}, call: call, ret: ret}
}

func put(c int, call, ret int64, st opStatus, v uint64) record {
	return record{in: opInput{kind: kPut, client: c, arg: v}, out: opOutput{st: st}, call: call, ret: ret}
}

func get(c int, call, ret int64, st opStatus, v uint64) record {
	return record{in: opInput{kind: kGet, client: c}, out: opOutput{st: st, val: v}, call: call, ret: ret}
}

func check(t *testing.T, m porcupine.NondeterministicModel, recs h) porcupine.CheckResult {
	t.Helper()
	hist := &history{records: recs}
	ops, _ := hist.operations()
	res, _ := porcupine.CheckOperationsVerbose(m.ToModel(), ops, 10*time.Second)
	return res
}

func TestLockModel(t *testing.T) {
	cases := []struct {
		name string
		recs h
		want porcupine.CheckResult
	}{
		{"serial", h{acq(0, 0, 10, stOK, 5), rel(0, 20, 30, stOK, 5), try(1, 40, 50, stOK, 7), rel(1, 60, 70, stOK, 7)}, porcupine.Ok},
		{"two holders", h{acq(0, 0, 10, stOK, 5), try(1, 20, 30, stOK, 7), rel(0, 40, 50, stOK, 5)}, porcupine.Illegal},
		{"token not increasing", h{acq(0, 0, 10, stOK, 7), rel(0, 20, 30, stOK, 7), acq(1, 40, 50, stOK, 5)}, porcupine.Illegal},
		{"busy while free", h{acq(0, 0, 10, stOK, 5), rel(0, 20, 30, stOK, 5), try(1, 40, 50, stRefused, 0)}, porcupine.Illegal},
		{"busy while held", h{acq(0, 0, 10, stOK, 5), try(1, 20, 30, stRefused, 0), rel(0, 40, 50, stOK, 5)}, porcupine.Ok},
		{"release of a held lock refused", h{acq(0, 0, 10, stOK, 5), rel(0, 20, 30, stRefused, 5)}, porcupine.Illegal},
		{"unknown release, then refused retry", h{acq(0, 0, 10, stOK, 5), rel(0, 20, 30, stMaybe, 5), rel(0, 40, 50, stRefused, 5), acq(1, 60, 70, stOK, 6)}, porcupine.Ok},
		{"unknown release that did not happen", h{acq(0, 0, 10, stOK, 5), rel(0, 20, 30, stMaybe, 5), try(1, 40, 50, stRefused, 0), rel(0, 60, 70, stOK, 5)}, porcupine.Ok},
		// A phantom grant (a timed-out wait whose grant was rolled back
		// later) explains a refusal while nobody visible holds the lock...
		{"phantom explains busy", h{acq(0, 0, 10, stMaybe, 0), try(1, 20, 30, stRefused, 0), try(1, 40, 50, stOK, 9)}, porcupine.Ok},
		// ...but not a grant that returned before the phantom was asked for.
		{"phantom cannot precede its call", h{try(1, 0, 10, stRefused, 0), acq(0, 20, 30, stMaybe, 0)}, porcupine.Illegal},
		{"lost grant", h{acq(0, 0, 10, stOK, 5), try(1, 20, 30, stOK, 6)}, porcupine.Illegal},
	}
	for _, c := range cases {
		if got := check(t, lockModel, c.recs); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
	if bad := checkTokenOrder("lock", h{acq(0, 0, 10, stOK, 7), rel(0, 20, 30, stOK, 7), acq(1, 40, 50, stOK, 5)}); len(bad) != 1 {
		t.Errorf("checkTokenOrder: %v", bad)
	}
	if bad := checkHolders("lock", h{acq(0, 0, 10, stOK, 5), try(1, 20, 30, stOK, 7), rel(0, 40, 50, stOK, 5), rel(1, 60, 70, stOK, 7)}, 1); len(bad) != 1 {
		t.Errorf("checkHolders: %v", bad)
	}
}

func TestSemaphoreModel(t *testing.T) {
	cases := []struct {
		name string
		recs h
		want porcupine.CheckResult
	}{
		{"two holders", h{acq(0, 0, 10, stOK, 1), try(1, 0, 10, stOK, 2), rel(0, 20, 30, stOK, 1), rel(1, 20, 30, stOK, 2)}, porcupine.Ok},
		{"three holders", h{acq(0, 0, 10, stOK, 1), try(1, 0, 10, stOK, 2), try(2, 20, 30, stOK, 3), rel(0, 40, 50, stOK, 1)}, porcupine.Illegal},
		{"busy with one free", h{acq(0, 0, 10, stOK, 1), try(1, 20, 30, stRefused, 0)}, porcupine.Illegal},
		{"busy when full", h{acq(0, 0, 10, stOK, 1), acq(1, 0, 10, stOK, 2), try(2, 20, 30, stRefused, 0)}, porcupine.Ok},
		{"phantom fills", h{acq(0, 0, 10, stOK, 1), acq(1, 0, 10, stMaybe, 0), try(2, 20, 30, stRefused, 0), rel(0, 40, 50, stOK, 1), try(2, 60, 70, stOK, 4), try(1, 80, 90, stOK, 5)}, porcupine.Ok},
	}
	for _, c := range cases {
		if got := check(t, semModel, c.recs); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

func TestQueueModel(t *testing.T) {
	a, b, c := queueValue(0, 1), queueValue(0, 2), queueValue(1, 1)
	cases := []struct {
		name string
		recs h
		want porcupine.CheckResult
	}{
		{"fifo", h{put(0, 0, 10, stOK, a), put(0, 20, 30, stOK, b), get(1, 40, 50, stOK, a), get(1, 60, 70, stOK, b), get(1, 80, 90, stRefused, 0)}, porcupine.Ok},
		{"out of order", h{put(0, 0, 10, stOK, a), put(0, 20, 30, stOK, b), get(1, 40, 50, stOK, b)}, porcupine.Illegal},
		{"concurrent puts", h{put(0, 0, 30, stOK, a), put(1, 0, 30, stOK, c), get(2, 40, 50, stOK, c), get(2, 60, 70, stOK, a)}, porcupine.Ok},
		{"lost item", h{put(0, 0, 10, stOK, a), get(1, 20, 30, stRefused, 0)}, porcupine.Illegal},
		{"duplicate", h{put(0, 0, 10, stOK, a), get(1, 20, 30, stOK, a), get(2, 40, 50, stOK, a)}, porcupine.Illegal},
		{"unknown put seen late", h{put(0, 0, 10, stMaybe, a), get(1, 20, 30, stRefused, 0), get(1, 40, 50, stOK, a)}, porcupine.Ok},
		{"unknown put not seen", h{put(0, 0, 10, stMaybe, a), get(1, 20, 30, stRefused, 0)}, porcupine.Ok},
		// A get of unknown outcome may hold the head in flight, then give it
		// back (Nack) to the head of the queue.
		{"phantom get returns the item", h{put(0, 0, 10, stOK, a), put(0, 20, 30, stOK, b), get(1, 40, 50, stMaybe, 0), get(2, 60, 70, stOK, b), get(2, 80, 90, stOK, a)}, porcupine.Ok},
	}
	for _, cs := range cases {
		if got := check(t, queueModel, cs.recs); got != cs.want {
			t.Errorf("%s: %s, want %s", cs.name, got, cs.want)
		}
	}
	if bad := checkQueueItems("queue", h{put(0, 0, 10, stOK, a), get(1, 20, 30, stOK, a), get(2, 40, 50, stOK, a)}); len(bad) != 1 {
		t.Errorf("checkQueueItems: %v", bad)
	}
	kept, dropped := dropUnseenUnknownPuts(h{put(0, 0, 10, stMaybe, a), put(0, 0, 10, stMaybe, b), get(1, 20, 30, stOK, b)})
	if len(kept) != 2 || dropped != 1 {
		t.Errorf("dropUnseenUnknownPuts: kept %d, dropped %d", len(kept), dropped)
	}
}

// An illegal history gets porcupine's visualization, with the failovers
// marked, as the cluster test writes it.
func TestVisualizationOfAViolation(t *testing.T) {
	hist := &history{records: h{acq(0, 0, 10, stOK, 5), try(1, 20, 30, stOK, 7), rel(0, 40, 50, stOK, 5), rel(1, 40, 50, stMaybe, 7)}}
	ops, _ := hist.operations()
	model := lockModel.ToModel()
	res, info := porcupine.CheckOperationsVerbose(model, ops, 10*time.Second)
	if res != porcupine.Illegal {
		t.Fatalf("two holders: %s", res)
	}
	info.AddAnnotations(failoverAnnotations([]failover{{killed: 0, newLeader: 1, killAt: 15, leaderAt: 25, restartAt: 45}}))
	path := filepath.Join(t.TempDir(), "lock-visualization.html")
	if err := porcupine.VisualizePath(model, info, path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"try(c1) → token 7", "kill -9 node 1"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the visualization does not show %q", want)
		}
	}
}
