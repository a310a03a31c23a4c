package linearizability

// Sequential specifications of a lock, a semaphore and a FIFO queue for
// porcupine, with operations whose outcome the client does not know.
//
// An operation is recorded with one of three statuses:
//
//   - stOK: the server answered with success (a grant and its token, a put,
//     a got item, a release);
//   - stRefused: the server answered with a definite refusal (a zero-timeout
//     acquire that would have to wait, a zero-timeout get on an empty queue,
//     a release of what is not held);
//   - stMaybe: the outcome is unknown (UNAVAILABLE, a broken stream,
//     DEADLINE_EXCEEDED of a blocking wait, CANCELLED, the session lost...).
//
// A stMaybe operation is given a return time after every other operation
// (the end of the history), so that it may take effect at any moment after
// its call, or never (porcupine may place it last, where it changes
// nothing that is observed). Its step is nondeterministic: "did not happen"
// or "happened" (NondeterministicModel, checked through ToModel's power set).
//
// A grant the client did not receive (a stMaybe acquire or get) is held by a
// phantom: the client never releases it, but the server or the client
// library may (the library rolls back a grant that crossed a cancel, the
// server rolls back a grant made to an orphaned wait nobody claimed within
// --orphan_grace_ms, a lost session's holdings are released). So before
// every step, any phantom holding may have been released (a phantom queue
// item may have gone back to the head of the queue, as Nack does).

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"strings"

	"github.com/anishathalye/porcupine"
)

type opKind uint8

const (
	kAcquire    opKind = iota // a blocking acquire with a deadline
	kTryAcquire               // a zero-timeout acquire
	kRelease
	kPut
	kGet // a zero-timeout get (TryGet), acknowledged at once
)

type opStatus uint8

const (
	stOK opStatus = iota
	stRefused
	stMaybe
)

// opInput is porcupine's Input: what was asked.
type opInput struct {
	kind   opKind
	client int
	arg    uint64 // the token released, the value put
}

// opOutput is porcupine's Output: what came back.
type opOutput struct {
	st  opStatus
	val uint64 // the token granted, the value got
}

// phantom holds a grant whose token the client never learnt.
const phantom = math.MaxUint64

func (in opInput) String() string {
	switch in.kind {
	case kAcquire:
		return fmt.Sprintf("acquire(c%d)", in.client)
	case kTryAcquire:
		return fmt.Sprintf("try(c%d)", in.client)
	case kRelease:
		return fmt.Sprintf("release(%d)", in.arg)
	case kPut:
		return fmt.Sprintf("put(%s)", valueName(in.arg))
	case kGet:
		return fmt.Sprintf("get(c%d)", in.client)
	}
	return "?"
}

func describeOp(input, output interface{}) string {
	in, out := input.(opInput), output.(opOutput)
	var res string
	switch out.st {
	case stMaybe:
		res = "unknown"
	case stRefused:
		switch in.kind {
		case kRelease:
			res = "not held"
		case kGet:
			res = "empty"
		default:
			res = "busy"
		}
	case stOK:
		switch in.kind {
		case kAcquire, kTryAcquire:
			res = fmt.Sprintf("token %d", out.val)
		case kGet:
			res = valueName(out.val)
		default:
			res = "ok"
		}
	}
	return in.String() + " → " + res
}

// valueName shows a queue value as client.sequence.
func valueName(v uint64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%d.%d", v>>32-1, v&0xffffffff)
}

func tokenName(t uint64) string {
	switch t {
	case 0:
		return "free"
	case phantom:
		return "phantom"
	}
	return fmt.Sprint(t)
}

func hashOf(parts ...uint64) uint64 {
	h := fnv.New64a()
	var b [8]byte
	for _, p := range parts {
		binary.LittleEndian.PutUint64(b[:], p)
		h.Write(b[:])
	}
	return h.Sum64()
}

// --- lock ---

// lockState: the holder's token (0: free, phantom: a grant nobody saw) and
// the largest token granted so far (a new grant must exceed it).
type lockState struct {
	holder uint64
	max    uint64
}

func lockStep(state, input, output interface{}) []interface{} {
	s, in, out := state.(lockState), input.(opInput), output.(opOutput)
	pre := []lockState{s}
	if s.holder == phantom {
		pre = append(pre, lockState{0, s.max})
	}
	var next []interface{}
	for _, p := range pre {
		switch in.kind {
		case kAcquire, kTryAcquire:
			switch out.st {
			case stOK:
				if p.holder == 0 && out.val > p.max {
					next = append(next, lockState{out.val, out.val})
				}
			case stRefused: // a zero-timeout acquire found the lock held
				if p.holder != 0 {
					next = append(next, p)
				}
			case stMaybe:
				next = append(next, p)
				if p.holder == 0 {
					next = append(next, lockState{phantom, p.max})
				}
			}
		case kRelease:
			switch out.st {
			case stOK:
				if p.holder == in.arg {
					next = append(next, lockState{0, p.max})
				}
			case stRefused:
				if p.holder != in.arg {
					next = append(next, p)
				}
			case stMaybe:
				next = append(next, p)
				if p.holder == in.arg {
					next = append(next, lockState{0, p.max})
				}
			}
		}
	}
	return next
}

var lockModel = porcupine.NondeterministicModel{
	Init:              func() []interface{} { return []interface{}{lockState{}} },
	Step:              lockStep,
	Hash:              func(s interface{}) uint64 { l := s.(lockState); return hashOf(l.holder, l.max) },
	DescribeOperation: describeOp,
	DescribeState: func(s interface{}) string {
		l := s.(lockState)
		return fmt.Sprintf("holder %s, max token %d", tokenName(l.holder), l.max)
	},
	DescribeOperationMetadata: describeMeta,
}

// --- semaphore ---

const semCapacity = 2

// semState: the tokens of the holdings (one permit each), sorted, 0 for a
// free permit, phantom for a grant nobody saw; and the largest token
// granted so far.
type semState struct {
	h   [semCapacity]uint64
	max uint64
}

func (s semState) count() int {
	n := 0
	for _, t := range s.h {
		if t != 0 {
			n++
		}
	}
	return n
}

func (s semState) has(t uint64) bool {
	for _, x := range s.h {
		if x == t && t != 0 {
			return true
		}
	}
	return false
}

// with returns s with t added (there must be room), sorted.
func (s semState) with(t uint64) semState {
	for i := range s.h {
		if s.h[i] == 0 {
			s.h[i] = t
			break
		}
	}
	s.sort()
	return s
}

// without returns s with one holding t removed.
func (s semState) without(t uint64) semState {
	for i := range s.h {
		if s.h[i] == t {
			s.h[i] = 0
			break
		}
	}
	s.sort()
	return s
}

func (s *semState) sort() {
	// 0 (free) first, then tokens ascending, phantom (max uint64) last.
	for i := 1; i < len(s.h); i++ {
		for j := i; j > 0 && s.h[j] < s.h[j-1]; j-- {
			s.h[j], s.h[j-1] = s.h[j-1], s.h[j]
		}
	}
}

func semStep(state, input, output interface{}) []interface{} {
	s, in, out := state.(semState), input.(opInput), output.(opOutput)
	// Any phantom holding may have been released before this step.
	pre := []semState{s}
	for k := 0; k < len(pre); k++ {
		if pre[k].has(phantom) {
			r := pre[k].without(phantom)
			dup := false
			for _, q := range pre {
				dup = dup || q == r
			}
			if !dup {
				pre = append(pre, r)
			}
		}
	}
	var next []interface{}
	for _, p := range pre {
		switch in.kind {
		case kAcquire, kTryAcquire:
			switch out.st {
			case stOK:
				if p.count() < semCapacity && out.val > p.max {
					n := p.with(out.val)
					n.max = out.val
					next = append(next, n)
				}
			case stRefused:
				if p.count() == semCapacity {
					next = append(next, p)
				}
			case stMaybe:
				next = append(next, p)
				if p.count() < semCapacity {
					next = append(next, p.with(phantom))
				}
			}
		case kRelease:
			switch out.st {
			case stOK:
				if p.has(in.arg) {
					next = append(next, p.without(in.arg))
				}
			case stRefused:
				if !p.has(in.arg) {
					next = append(next, p)
				}
			case stMaybe:
				next = append(next, p)
				if p.has(in.arg) {
					next = append(next, p.without(in.arg))
				}
			}
		}
	}
	return next
}

var semModel = porcupine.NondeterministicModel{
	Init: func() []interface{} { return []interface{}{semState{}} },
	Step: semStep,
	Hash: func(s interface{}) uint64 {
		x := s.(semState)
		return hashOf(append(x.h[:], x.max)...)
	},
	DescribeOperation: describeOp,
	DescribeState: func(s interface{}) string {
		x := s.(semState)
		var held []string
		for _, t := range x.h {
			if t != 0 {
				held = append(held, tokenName(t))
			}
		}
		return fmt.Sprintf("held [%s] of %d, max token %d", strings.Join(held, " "), semCapacity, x.max)
	},
	DescribeOperationMetadata: describeMeta,
}

// --- FIFO queue ---

// queueState: the visible items, head first, and the items a phantom got
// (a get whose answer the client never saw), each of which may go back to
// the head of the queue (a Nack of the library's rollback, a reply the
// server could not deliver). Both are lists of uint64 encoded in strings,
// so that states compare with ==.
//
// Acknowledgements are not modelled: every get is acknowledged at once, and
// the items are owned by the getter's session (no lease), so an item got is
// never delivered again while the session lives, acknowledged or not.
type queueState struct {
	items    string
	phantoms string
}

func u64s(s string) []uint64 {
	out := make([]uint64, 0, len(s)/8)
	for i := 0; i+8 <= len(s); i += 8 {
		out = append(out, binary.LittleEndian.Uint64([]byte(s[i:i+8])))
	}
	return out
}

func enc(v uint64) string {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	return string(b[:])
}

func queueStep(state, input, output interface{}) []interface{} {
	s, in, out := state.(queueState), input.(opInput), output.(opOutput)
	pre := []queueState{s}
	// Any phantom item may have gone back to the head, in any order. There
	// are rarely more than one or two; beyond four only single returns are
	// tried (the model is then stricter than the server).
	if s.phantoms != "" {
		for k := 0; k < len(pre) && k < 64; k++ {
			ph := u64s(pre[k].phantoms)
			if len(ph) > 4 && k > 0 {
				continue
			}
			for j, v := range ph {
				rest := ""
				for i, w := range ph {
					if i != j {
						rest += enc(w)
					}
				}
				r := queueState{items: enc(v) + pre[k].items, phantoms: rest}
				dup := false
				for _, q := range pre {
					dup = dup || q == r
				}
				if !dup {
					pre = append(pre, r)
				}
			}
		}
	}
	var next []interface{}
	for _, p := range pre {
		switch in.kind {
		case kPut:
			switch out.st {
			case stOK:
				next = append(next, queueState{p.items + enc(in.arg), p.phantoms})
			case stMaybe:
				next = append(next, p, queueState{p.items + enc(in.arg), p.phantoms})
			}
			// A put is never refused here (the queue has no maxsize and
			// puts wait); a refusal is recorded as stMaybe.
		case kGet:
			switch out.st {
			case stOK:
				if len(p.items) >= 8 && p.items[:8] == enc(out.val) {
					next = append(next, queueState{p.items[8:], p.phantoms})
				}
			case stRefused:
				if p.items == "" {
					next = append(next, p)
				}
			case stMaybe:
				next = append(next, p)
				if p.items != "" {
					next = append(next, queueState{p.items[8:], p.phantoms + p.items[:8]})
				}
			}
		}
	}
	return next
}

var queueModel = porcupine.NondeterministicModel{
	Init: func() []interface{} { return []interface{}{queueState{}} },
	Step: queueStep,
	Hash: func(s interface{}) uint64 {
		q := s.(queueState)
		h := fnv.New64a()
		h.Write([]byte(q.items))
		h.Write([]byte{0xff})
		h.Write([]byte(q.phantoms))
		return h.Sum64()
	},
	DescribeOperation: describeOp,
	DescribeState: func(s interface{}) string {
		q := s.(queueState)
		var items, ph []string
		for _, v := range u64s(q.items) {
			items = append(items, valueName(v))
		}
		for _, v := range u64s(q.phantoms) {
			ph = append(ph, valueName(v))
		}
		if len(items) > 12 {
			items = append(items[:12], fmt.Sprintf("… (%d items)", len(items)))
		}
		d := "[" + strings.Join(items, " ") + "]"
		if len(ph) > 0 {
			d += " phantom-held [" + strings.Join(ph, " ") + "]"
		}
		return d
	},
	DescribeOperationMetadata: describeMeta,
}

// opMeta is porcupine's Metadata: why an operation is what it is.
type opMeta struct {
	err       string
	synthetic bool
}

func describeMeta(m interface{}) string {
	if m == nil {
		return ""
	}
	x := m.(opMeta)
	if x.synthetic {
		return "synthetic: " + x.err
	}
	return x.err
}
