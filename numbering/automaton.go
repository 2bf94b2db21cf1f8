package numbering

import (
	"errors"
	"fmt"
	"regexp/syntax"
	"slices"
)

// digitDFA is a deterministic automaton over the digits '0'-'9' that runs
// up to 16 regular expressions at once: after a digit string has been fed
// through it, bit k of the state's accept mask says whether expression k
// matches the whole string. It is the subset construction of the
// expressions' Thompson NFAs (regexp/syntax programs), built completely when
// it is compiled and read-only afterwards, so it is safe for concurrent use.
//
// Only whole-string matching is needed: libphonenumber matches its national
// number patterns as "^(?:pattern)$", and a prefix test "^(?:pattern)" on a
// digit string is the whole-string match of "(?:pattern)[0-9]*".
type digitDFA struct {
	next   []uint32 // next[state*10+digit]; state 0 is the dead state
	accept []uint16 // accept[state]: bit k set when expression k matches
}

// dfaStart is the start state of every digitDFA.
const dfaStart = 1

// maxDFAStates bounds the automaton of one numbering plan. The largest plan
// (all of a region's patterns at once) needs a few thousand states; a plan
// that would need more is left to libphonenumber.
const maxDFAStates = 1 << 16

var errDFATooBig = errors.New("automaton too large")

// run feeds digits through the automaton and returns the accept mask of
// the state it ends in (0 when it died). digits holds '0'-'9' only.
func (d *digitDFA) run(digits string) uint16 {
	s := uint32(dfaStart)
	for i := 0; i < len(digits); i++ {
		s = d.next[s*10+uint32(digits[i]-'0')]
		if s == 0 {
			return 0
		}
	}
	return d.accept[s]
}

// nfa is the union of the compiled expressions: insts is every program's
// instructions, renumbered into one address space.
type nfa struct {
	insts  []nfaInst
	starts []uint32 // entry point of expression k
}

type nfaInst struct {
	op        syntax.InstOp
	out, arg  uint32
	digits    uint16 // for rune instructions: which of '0'-'9' it accepts
	pattern   uint8  // the expression this instruction belongs to
	consuming bool   // a rune instruction (or a match): kept in DFA states
}

// compileDFA builds the automaton for patterns, in Go regexp (RE2, Perl
// flags) syntax as regexp.MustCompile reads them; pattern k sets accept bit
// k. An empty-width assertion (^, $, \b) in a pattern is an error: these
// never occur in libphonenumber's national number patterns and the
// automaton does not model them.
func compileDFA(patterns []string) (*digitDFA, error) {
	if len(patterns) > 16 {
		return nil, fmt.Errorf("%d patterns: at most 16", len(patterns))
	}
	var m nfa
	for k, p := range patterns {
		re, err := syntax.Parse(p, syntax.Perl)
		if err != nil {
			return nil, fmt.Errorf("pattern %q: %w", p, err)
		}
		prog, err := syntax.Compile(re.Simplify())
		if err != nil {
			return nil, fmt.Errorf("pattern %q: %w", p, err)
		}
		base := uint32(len(m.insts))
		for _, in := range prog.Inst {
			ni := nfaInst{op: in.Op, out: base + in.Out, arg: base + in.Arg, pattern: uint8(k)}
			switch in.Op {
			case syntax.InstRune, syntax.InstRune1:
				for d := range 10 {
					if in.MatchRune(rune('0' + d)) {
						ni.digits |= 1 << d
					}
				}
				ni.consuming = true
			case syntax.InstRuneAny, syntax.InstRuneAnyNotNL:
				ni.digits = 1<<10 - 1
				ni.consuming = true
			case syntax.InstMatch:
				ni.consuming = true
			case syntax.InstEmptyWidth:
				return nil, fmt.Errorf("pattern %q: empty-width assertion not supported", p)
			case syntax.InstAlt, syntax.InstAltMatch, syntax.InstCapture, syntax.InstNop, syntax.InstFail:
			default:
				return nil, fmt.Errorf("pattern %q: instruction %v not supported", p, in.Op)
			}
			m.insts = append(m.insts, ni)
		}
		m.starts = append(m.starts, base+uint32(prog.Start))
	}

	d := &digitDFA{next: make([]uint32, 20), accept: make([]uint16, 2)}
	index := map[string]uint32{}
	var sets [][]uint32 // sets[state]: its consuming instructions, sorted
	sets = append(sets, nil, nil)
	seen := make([]uint32, len(m.insts)) // seen[pc] == gen: visited in this closure
	gen := uint32(0)
	var stack []uint32
	// closure adds the consuming instructions reachable from pcs without
	// reading a digit.
	closure := func(set []uint32, pcs ...uint32) []uint32 {
		gen++
		stack = append(stack[:0], pcs...)
		for len(stack) > 0 {
			pc := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[pc] == gen {
				continue
			}
			seen[pc] = gen
			in := &m.insts[pc]
			switch {
			case in.consuming:
				set = append(set, pc)
			case in.op == syntax.InstAlt || in.op == syntax.InstAltMatch:
				stack = append(stack, in.arg, in.out)
			case in.op == syntax.InstCapture || in.op == syntax.InstNop:
				stack = append(stack, in.out)
			}
		}
		slices.Sort(set)
		return set
	}
	key := func(set []uint32) string {
		b := make([]byte, 0, 4*len(set))
		for _, pc := range set {
			b = append(b, byte(pc), byte(pc>>8), byte(pc>>16), byte(pc>>24))
		}
		return string(b)
	}
	mask := func(set []uint32) uint16 {
		var a uint16
		for _, pc := range set {
			if in := &m.insts[pc]; in.op == syntax.InstMatch {
				a |= 1 << in.pattern
			}
		}
		return a
	}
	start := closure(nil, m.starts...)
	if len(start) == 0 {
		return d, nil // nothing ever matches
	}
	sets[dfaStart] = start
	index[key(start)] = dfaStart
	d.accept[dfaStart] = mask(start)
	for s := uint32(dfaStart); int(s) < len(sets); s++ {
		for digit := range 10 {
			var targets []uint32
			for _, pc := range sets[s] {
				if in := &m.insts[pc]; in.op != syntax.InstMatch && in.digits&(1<<digit) != 0 {
					targets = append(targets, in.out)
				}
			}
			if len(targets) == 0 {
				continue // dead
			}
			set := closure(nil, targets...)
			if len(set) == 0 {
				continue
			}
			k := key(set)
			t, ok := index[k]
			if !ok {
				if len(sets) >= maxDFAStates {
					return nil, errDFATooBig
				}
				t = uint32(len(sets))
				index[k] = t
				sets = append(sets, set)
				d.next = append(d.next, make([]uint32, 10)...)
				d.accept = append(d.accept, mask(set))
			}
			d.next[s*10+uint32(digit)] = t
		}
	}
	return d, nil
}
