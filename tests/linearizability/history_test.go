package linearizability

// Recorded operations, how a client error is classified, the conversion to
// porcupine's operations, and the direct checks (tokens in real-time order,
// never more holders than permits, no duplicated, invented or lost item).

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
	baton "github.com/baton/baton/clients/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// clock gives monotonic nanoseconds since the start of the test.
type clock struct{ base time.Time }

func (c clock) now() int64 { return int64(time.Since(c.base)) }

type record struct {
	key       int // the round: which lock, semaphore or queue
	in        opInput
	out       opOutput
	call, ret int64
	err       string // the error, for unknown and refused outcomes
	synthetic bool   // added by the test, not a call (a lost session's release)
	replayed  bool   // a grant that came back as GRANT_OUTCOME_REPLAYED
	waited    bool   // a grant after waiting in line (GRANT_OUTCOME_AFTER_WAIT)
}

// errTally counts errors by code and keeps those no failover explains.
type errTally struct {
	mu         sync.Mutex
	byCode     map[string]int
	unexpected []string
}

func (e *errTally) add(what string, err error, expected bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.byCode == nil {
		e.byCode = map[string]int{}
	}
	e.byCode[status.Code(err).String()]++
	if !expected {
		e.unexpected = append(e.unexpected, fmt.Sprintf("%s: %v", what, err))
	}
}

// unknownCodes are the outcomes that leave an operation's effect open:
// the call was cut (a broken stream or connection, a node going away), its
// wait ended on the client's side (a deadline, a cancel, a grant that
// crossed it being rolled back), or its session ended.
func unknownCode(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.Aborted:
		return true
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// classifyAcquire: a grant is definite; a zero-timeout acquire (or get)
// that would have to wait is a definite refusal (the client tags it
// ErrWouldBlock only when the server said so before ctx ended). Anything
// else is unknown: the client library resends a wait with its request_id
// across failovers, so a timeout of a blocking wait is either the server's
// (nothing granted) or the client's cancel, whose crossing grant the
// library rolls back (then released at an unknown time): both fit a
// phantom grant that is released later.
func classifyAcquire(err error, try bool, tally *errTally, what string) opStatus {
	if err == nil {
		return stOK
	}
	if try && errors.Is(err, baton.ErrWouldBlock) {
		return stRefused
	}
	tally.add(what, err, unknownCode(err))
	return stMaybe
}

// classifyRelease: FAILED_PRECONDITION (ErrNotHeld) is a definite "not
// held"; a broken stream (UNAVAILABLE: "it may or may not have taken
// effect") and the other cut-call codes are unknown.
func classifyRelease(err error, tally *errTally, what string) opStatus {
	if err == nil {
		return stOK
	}
	if errors.Is(err, baton.ErrNotHeld) || status.Code(err) == codes.FailedPrecondition {
		tally.add(what, err, true)
		return stRefused
	}
	tally.add(what, err, unknownCode(err))
	return stMaybe
}

// classifyPut: a put has no request_id, so any failure is unknown.
func classifyPut(err error, tally *errTally, what string) opStatus {
	if err == nil {
		return stOK
	}
	tally.add(what, err, unknownCode(err))
	return stMaybe
}

// history is what one model checks: the operations on one object.
type history struct {
	name    string // e.g. "lock round 0"
	kind    string // lock, semaphore, queue
	model   porcupine.NondeterministicModel
	records []record
}

// operations converts the records: an unknown outcome returns after every
// other operation (horizon), so that it may take effect at any time after
// its call, or never.
func (h *history) operations() (ops []porcupine.Operation, horizon int64) {
	for _, r := range h.records {
		if r.ret > horizon {
			horizon = r.ret
		}
	}
	horizon += int64(time.Second)
	for _, r := range h.records {
		ret := r.ret
		if r.out.st == stMaybe {
			ret = horizon
		}
		ops = append(ops, porcupine.Operation{
			ClientId: r.in.client, Input: r.in, Output: r.out, Call: r.call, Return: ret,
			Metadata: opMeta{err: r.err, synthetic: r.synthetic},
		})
	}
	return ops, horizon
}

type counts struct {
	ops, ok, refused, unknown, synthetic, replayed, waited int
}

func (h *history) counts() counts {
	var c counts
	for _, r := range h.records {
		c.ops++
		switch r.out.st {
		case stOK:
			c.ok++
		case stRefused:
			c.refused++
		case stMaybe:
			c.unknown++
		}
		if r.synthetic {
			c.synthetic++
		}
		if r.replayed {
			c.replayed++
		}
		if r.waited {
			c.waited++
		}
	}
	return c
}

// dropUnseenUnknownPuts removes the puts of unknown outcome whose value no
// get returned. Keeping one changes nothing: if it took effect, its value
// sat in the queue behind everything got after it and was never got, so the
// same history without it is linearizable too (and "it never happened" is
// one of its outcomes). Dropping them keeps porcupine's search small.
func dropUnseenUnknownPuts(recs []record) (kept []record, dropped int) {
	got := map[uint64]bool{}
	for _, r := range recs {
		if r.in.kind == kGet && r.out.st == stOK {
			got[r.out.val] = true
		}
	}
	for _, r := range recs {
		if r.in.kind == kPut && r.out.st == stMaybe && !got[r.in.arg] {
			dropped++
			continue
		}
		kept = append(kept, r)
	}
	return kept, dropped
}

// --- direct checks ---

type grantRec struct {
	token     uint64
	call, ret int64
	client    int
	relCall   int64 // call of its first successful release, -1 if none
}

func grantsOf(recs []record) []grantRec {
	rel := map[uint64]int64{}
	for _, r := range recs {
		if r.in.kind == kRelease && r.out.st == stOK {
			if c, ok := rel[r.in.arg]; !ok || r.call < c {
				rel[r.in.arg] = r.call
			}
		}
	}
	var gs []grantRec
	for _, r := range recs {
		if (r.in.kind == kAcquire || r.in.kind == kTryAcquire) && r.out.st == stOK {
			g := grantRec{token: r.out.val, call: r.call, ret: r.ret, client: r.in.client, relCall: -1}
			if c, ok := rel[r.out.val]; ok {
				g.relCall = c
			}
			gs = append(gs, g)
		}
	}
	return gs
}

// checkTokenOrder: a grant that returned before another was asked for has
// the smaller token; no token is granted twice.
func checkTokenOrder(what string, recs []record) []string {
	gs := grantsOf(recs)
	var bad []string
	seen := map[uint64]int{}
	for _, g := range gs {
		seen[g.token]++
		if seen[g.token] == 2 {
			bad = append(bad, fmt.Sprintf("%s: token %d granted twice", what, g.token))
		}
	}
	byRet := append([]grantRec(nil), gs...)
	sort.Slice(byRet, func(i, j int) bool { return byRet[i].ret < byRet[j].ret })
	byCall := append([]grantRec(nil), gs...)
	sort.Slice(byCall, func(i, j int) bool { return byCall[i].call < byCall[j].call })
	k := 0
	var maxTok grantRec
	for _, b := range byCall {
		for k < len(byRet) && byRet[k].ret < b.call {
			if byRet[k].token > maxTok.token {
				maxTok = byRet[k]
			}
			k++
		}
		if maxTok.token != 0 && b.token <= maxTok.token {
			bad = append(bad, fmt.Sprintf(
				"%s: token %d (client %d, call %s) is not greater than token %d granted earlier (client %d, returned %s)",
				what, b.token, b.client, ms(b.call), maxTok.token, maxTok.client, ms(maxTok.ret)))
		}
	}
	return bad
}

// checkHolders: between a grant's return and the call of its successful
// release the holding certainly exists; more than capacity such intervals
// at one time means more holders than permits.
func checkHolders(what string, recs []record, capacity int) []string {
	type ev struct {
		t     int64
		delta int
		g     grantRec
	}
	var evs []ev
	for _, g := range grantsOf(recs) {
		if g.relCall > g.ret {
			evs = append(evs, ev{g.ret, +1, g}, ev{g.relCall, -1, g})
		}
	}
	// Ends before starts at the same time: intervals are open.
	sort.Slice(evs, func(i, j int) bool {
		if evs[i].t != evs[j].t {
			return evs[i].t < evs[j].t
		}
		return evs[i].delta < evs[j].delta
	})
	var bad []string
	active := map[uint64]grantRec{}
	for _, e := range evs {
		if e.delta < 0 {
			delete(active, e.g.token)
			continue
		}
		active[e.g.token] = e.g
		if len(active) > capacity {
			var desc []string
			for _, g := range active {
				desc = append(desc, fmt.Sprintf("token %d (client %d, held %s..%s)", g.token, g.client, ms(g.ret), ms(g.relCall)))
			}
			sort.Strings(desc)
			bad = append(bad, fmt.Sprintf("%s: %d holders at %s, capacity %d: %v", what, len(active), ms(e.t), capacity, desc))
		}
	}
	return bad
}

// checkQueueItems: no item got twice, none got that was never put, and
// none of the certainly put items missing at the end (the test drains the
// queue before it stops).
func checkQueueItems(what string, recs []record) []string {
	put := map[uint64]opStatus{}
	for _, r := range recs {
		if r.in.kind == kPut {
			if st, ok := put[r.in.arg]; !ok || r.out.st == stOK || st == stRefused {
				put[r.in.arg] = r.out.st
			}
		}
	}
	var bad []string
	got := map[uint64]record{}
	unknownGets := 0
	for _, r := range recs {
		if r.in.kind == kGet && r.out.st == stMaybe {
			unknownGets++
		}
		if r.in.kind != kGet || r.out.st != stOK {
			continue
		}
		if first, ok := got[r.out.val]; ok {
			bad = append(bad, fmt.Sprintf("%s: item %s got twice: by client %d at %s..%s and by client %d at %s..%s",
				what, valueName(r.out.val), first.in.client, ms(first.call), ms(first.ret), r.in.client, ms(r.call), ms(r.ret)))
			continue
		}
		got[r.out.val] = r
		if _, ok := put[r.out.val]; !ok {
			bad = append(bad, fmt.Sprintf("%s: item %s got (client %d at %s) was never put", what, valueName(r.out.val), r.in.client, ms(r.call)))
		}
	}
	var lost []string
	for v, st := range put {
		if st == stOK {
			if _, ok := got[v]; !ok {
				lost = append(lost, valueName(v))
			}
		}
	}
	// A get of unknown outcome may hold an item in flight that nobody saw.
	if len(lost) > unknownGets {
		sort.Strings(lost)
		if len(lost) > 20 {
			lost = append(lost[:20], "…")
		}
		bad = append(bad, fmt.Sprintf("%s: %d acknowledged puts never got (after draining the queue): %v", what, len(lost), lost))
	}
	return bad
}

func ms(t int64) string { return fmt.Sprintf("%.3fs", float64(t)/1e9) }
