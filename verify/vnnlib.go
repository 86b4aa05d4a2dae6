package verify

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// Property is a VNN-LIB property (the VNN-COMP format, a subset of SMT-LIB 2:
// https://www.vnnlib.org, Brix et al., "The Fourth International Verification of
// Neural Networks Competition", 2023, §2). The file describes the UNSAFE set: the
// property is "sat" when some input x of some case's box makes the output y satisfy
// every halfspace of one of that case's conjuncts (a counterexample), "unsat" when
// none does.
//
// Inputs are the declared X_0 … X_{NumInputs−1}, outputs Y_0 … Y_{NumOutputs−1},
// both flattened in row-major order of the network's input and output tensors.
type Property struct {
	NumInputs, NumOutputs int
	// Cases are the input boxes with their output conditions; the unsafe set is
	// the union over cases of Box × (Out[0] ∪ Out[1] ∪ …).
	Cases []Case
}

// Case is one input box with a disjunction of conjunctions of output halfspaces.
type Case struct {
	Lo, Hi []float64 // NumInputs each, Lo ≤ Hi
	// Out is the disjunction: y is unsafe when every halfspace of some Out[k]
	// holds. A conjunct without halfspaces holds for every y.
	Out []Conjunct
}

// Conjunct is a conjunction of output halfspaces.
type Conjunct []Halfspace

// Halfspace is C·y + D ≥ 0 (> 0 when Strict), C of length NumOutputs.
type Halfspace struct {
	C      []float64
	D      float64
	Strict bool
}

// Holds reports whether y satisfies h.
func (h Halfspace) Holds(y []float64) bool {
	v := h.D
	for j, c := range h.C {
		v += c * y[j]
	}
	if h.Strict {
		return v > 0
	}
	return v >= 0
}

// Holds reports whether y satisfies every halfspace of c.
func (c Conjunct) Holds(y []float64) bool {
	for _, h := range c {
		if !h.Holds(y) {
			return false
		}
	}
	return true
}

// maxDisjuncts bounds the size of the disjunctive normal form of a property (the
// product of the sizes of the disjunctions of all asserts).
const maxDisjuncts = 1 << 16

// ReadVNNLIB parses the VNN-LIB file at path.
func ReadVNNLIB(path string) (*Property, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("vnnlib: %w", err)
	}
	return ParseVNNLIB(bytes.NewReader(b), path)
}

// ParseVNNLIB parses a VNN-LIB property from r; name (the file name) prefixes
// errors, which also give the line. Supported: (declare-const X_i Real) and
// (declare-const Y_i Real); asserts built from and, or, <=, >=, <, >, and linear
// terms (+, -, *, / by constants) over the declared variables and numbers; ';'
// comments. Each atomic constraint must involve the inputs only through a bound
// on one variable, or else only outputs: an inequality mixing inputs, or relating
// two inputs, is reported as unsupported, as is a strict bound on an input.
func ParseVNNLIB(r io.Reader, name string) (*Property, error) {
	src, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("vnnlib %s: %w", name, err)
	}
	p := &parser{name: name, src: src, line: 1}
	forms, err := p.all()
	if err != nil {
		return nil, err
	}
	d := &decls{x: map[int]bool{}, y: map[int]bool{}}
	var asserts []sexp
	for _, f := range forms {
		if f.list == nil || len(f.list) == 0 || f.list[0].list != nil {
			return nil, p.errf(f.line, "expected a command (declare-const or assert)")
		}
		switch f.list[0].atom {
		case "declare-const":
			if err := d.declare(p, f); err != nil {
				return nil, err
			}
		case "assert":
			if len(f.list) != 2 {
				return nil, p.errf(f.line, "assert takes one formula, got %d", len(f.list)-1)
			}
			asserts = append(asserts, f.list[1])
		default:
			return nil, p.errf(f.line, "unsupported command %q", f.list[0].atom)
		}
	}
	nx, ny, err := d.counts(p)
	if err != nil {
		return nil, err
	}
	// The conjunction of all asserts, in disjunctive normal form.
	dnf := [][]atom{{}}
	for _, a := range asserts {
		f, err := p.formula(a, d)
		if err != nil {
			return nil, err
		}
		if len(dnf) == 1 && len(f) == 1 { // the common case: extend in place
			dnf[0] = append(dnf[0], f[0]...)
			continue
		}
		if len(dnf)*len(f) > maxDisjuncts {
			return nil, p.errf(a.line, "more than %d disjuncts in normal form", maxDisjuncts)
		}
		next := make([][]atom, 0, len(dnf)*len(f))
		for _, c := range dnf {
			for _, g := range f {
				next = append(next, append(append([]atom(nil), c...), g...))
			}
		}
		dnf = next
	}
	prop := &Property{NumInputs: nx, NumOutputs: ny}
	index := map[string]int{}
	for _, conj := range dnf {
		lo, hi, out, ok, err := p.split(conj, nx, ny)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue // an infeasible disjunct
		}
		key := boxKey(lo, hi)
		k, seen := index[key]
		if !seen {
			k = len(prop.Cases)
			index[key] = k
			prop.Cases = append(prop.Cases, Case{Lo: lo, Hi: hi})
		}
		prop.Cases[k].Out = append(prop.Cases[k].Out, out)
	}
	return prop, nil
}

// boxKey identifies a box exactly.
func boxKey(lo, hi []float64) string {
	var b strings.Builder
	for i := range lo {
		fmt.Fprintf(&b, "%x:%x,", math.Float64bits(lo[i]), math.Float64bits(hi[i]))
	}
	return b.String()
}

// sexp is an atom (list == nil) or a list, with the line it starts on.
type sexp struct {
	atom string
	list []sexp
	line int
}

type parser struct {
	name string
	src  []byte
	pos  int
	line int
}

func (p *parser) errf(line int, format string, args ...any) error {
	return fmt.Errorf("vnnlib %s:%d: %s", p.name, line, fmt.Sprintf(format, args...))
}

// maxDepth bounds the nesting of parentheses, so that hostile input cannot
// exhaust the stack.
const maxDepth = 1000

// all reads every top-level s-expression.
func (p *parser) all() ([]sexp, error) {
	var out []sexp
	for {
		p.space()
		if p.pos >= len(p.src) {
			return out, nil
		}
		e, err := p.read(0)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
}

// space skips white space and comments.
func (p *parser) space() {
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == '\n':
			p.line++
			p.pos++
		case c == ' ' || c == '\t' || c == '\r':
			p.pos++
		case c == ';':
			for p.pos < len(p.src) && p.src[p.pos] != '\n' {
				p.pos++
			}
		default:
			return
		}
	}
}

func (p *parser) read(depth int) (sexp, error) {
	if depth > maxDepth {
		return sexp{}, p.errf(p.line, "nesting deeper than %d", maxDepth)
	}
	p.space()
	if p.pos >= len(p.src) {
		return sexp{}, p.errf(p.line, "unexpected end of file")
	}
	line := p.line
	switch p.src[p.pos] {
	case ')':
		return sexp{}, p.errf(line, "unexpected ')'")
	case '(':
		p.pos++
		list := []sexp{}
		for {
			p.space()
			if p.pos >= len(p.src) {
				return sexp{}, p.errf(line, "'(' not closed")
			}
			if p.src[p.pos] == ')' {
				p.pos++
				return sexp{list: list, line: line}, nil
			}
			e, err := p.read(depth + 1)
			if err != nil {
				return sexp{}, err
			}
			list = append(list, e)
		}
	}
	start := p.pos
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c == '(' || c == ')' || c == ';' || c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			break
		}
		p.pos++
	}
	return sexp{atom: string(p.src[start:p.pos]), line: line}, nil
}

// decls are the declared variables.
type decls struct{ x, y map[int]bool }

var varName = regexp.MustCompile(`^([XY])_(0|[1-9][0-9]{0,8})$`)

// variable parses X_i / Y_i.
func variable(s string) (out bool, i int, ok bool) {
	m := varName.FindStringSubmatch(s)
	if m == nil {
		return false, 0, false
	}
	i, err := strconv.Atoi(m[2])
	if err != nil {
		return false, 0, false
	}
	return m[1] == "Y", i, true
}

func (d *decls) declare(p *parser, f sexp) error {
	if len(f.list) != 3 || f.list[1].list != nil || f.list[2].list != nil {
		return p.errf(f.line, "want (declare-const NAME Real)")
	}
	if f.list[2].atom != "Real" {
		return p.errf(f.line, "variable %s of sort %q: only Real is supported", f.list[1].atom, f.list[2].atom)
	}
	out, i, ok := variable(f.list[1].atom)
	if !ok {
		return p.errf(f.line, "variable %q: want X_i (inputs) or Y_i (outputs)", f.list[1].atom)
	}
	m := d.x
	if out {
		m = d.y
	}
	if m[i] {
		return p.errf(f.line, "%s declared twice", f.list[1].atom)
	}
	m[i] = true
	return nil
}

// counts checks that X_0…X_{n−1} and Y_0…Y_{m−1} are all declared.
func (d *decls) counts(p *parser) (nx, ny int, err error) {
	for _, v := range []struct {
		m    map[int]bool
		name string
	}{{d.x, "X"}, {d.y, "Y"}} {
		for i := 0; i < len(v.m); i++ {
			if !v.m[i] {
				return 0, 0, p.errf(p.line, "%s_%d not declared but %d %s variables are", v.name, i, len(v.m), v.name)
			}
		}
	}
	if len(d.x) == 0 || len(d.y) == 0 {
		return 0, 0, p.errf(p.line, "%d inputs and %d outputs declared: want at least one of each", len(d.x), len(d.y))
	}
	return len(d.x), len(d.y), nil
}

// lin is a linear form Σ x_i·X_i + Σ y_j·Y_j + c.
type lin struct {
	x, y map[int]float64
	c    float64
}

func (l lin) scale(a float64) lin {
	out := lin{x: map[int]float64{}, y: map[int]float64{}, c: l.c * a}
	for i, v := range l.x {
		out.x[i] = v * a
	}
	for i, v := range l.y {
		out.y[i] = v * a
	}
	return out
}

func (l lin) add(m lin) lin {
	out := l.scale(1)
	out.c += m.c
	for i, v := range m.x {
		out.x[i] += v
	}
	for i, v := range m.y {
		out.y[i] += v
	}
	return out
}

func (l lin) constant() bool {
	for _, v := range l.x {
		if v != 0 {
			return false
		}
	}
	for _, v := range l.y {
		if v != 0 {
			return false
		}
	}
	return true
}

// atom is the constraint e ≥ 0 (> 0 when strict).
type atom struct {
	e      lin
	strict bool
	line   int
}

// formula returns f in disjunctive normal form.
func (p *parser) formula(f sexp, d *decls) ([][]atom, error) {
	if f.list == nil {
		switch f.atom {
		case "true":
			return [][]atom{{}}, nil
		case "false":
			return nil, nil
		}
		return nil, p.errf(f.line, "expected a formula, got %q", f.atom)
	}
	if len(f.list) == 0 || f.list[0].list != nil {
		return nil, p.errf(f.line, "expected a formula")
	}
	args := f.list[1:]
	switch op := f.list[0].atom; op {
	case "and":
		out := [][]atom{{}}
		for _, a := range args {
			g, err := p.formula(a, d)
			if err != nil {
				return nil, err
			}
			if len(out)*len(g) > maxDisjuncts {
				return nil, p.errf(f.line, "more than %d disjuncts in normal form", maxDisjuncts)
			}
			next := make([][]atom, 0, len(out)*len(g))
			for _, c := range out {
				for _, h := range g {
					next = append(next, append(append([]atom(nil), c...), h...))
				}
			}
			out = next
		}
		return out, nil
	case "or":
		var out [][]atom
		for _, a := range args {
			g, err := p.formula(a, d)
			if err != nil {
				return nil, err
			}
			if len(out)+len(g) > maxDisjuncts {
				return nil, p.errf(f.line, "more than %d disjuncts in normal form", maxDisjuncts)
			}
			out = append(out, g...)
		}
		return out, nil
	case "<=", ">=", "<", ">":
		if len(args) < 2 {
			return nil, p.errf(f.line, "%s takes at least two terms, got %d", op, len(args))
		}
		terms := make([]lin, len(args))
		for i, a := range args {
			t, err := p.term(a, d, 0)
			if err != nil {
				return nil, err
			}
			terms[i] = t
		}
		// A chain (<= a b c) is a ≤ b ∧ b ≤ c.
		var conj []atom
		for i := 0; i+1 < len(terms); i++ {
			lo, hi := terms[i], terms[i+1]
			if op == ">=" || op == ">" {
				lo, hi = hi, lo
			}
			conj = append(conj, atom{e: hi.add(lo.scale(-1)), strict: op == "<" || op == ">", line: f.line})
		}
		return [][]atom{conj}, nil
	}
	return nil, p.errf(f.line, "unsupported formula %q", f.list[0].atom)
}

// term parses a linear term.
func (p *parser) term(t sexp, d *decls, depth int) (lin, error) {
	if depth > maxDepth {
		return lin{}, p.errf(t.line, "term nested deeper than %d", maxDepth)
	}
	zero := lin{x: map[int]float64{}, y: map[int]float64{}}
	if t.list == nil {
		if out, i, ok := variable(t.atom); ok {
			m, name := d.x, "X"
			if out {
				m, name = d.y, "Y"
			}
			if !m[i] {
				return lin{}, p.errf(t.line, "%s_%d used but not declared", name, i)
			}
			if out {
				zero.y[i] = 1
			} else {
				zero.x[i] = 1
			}
			return zero, nil
		}
		v, err := strconv.ParseFloat(t.atom, 64)
		if err != nil || math.IsInf(v, 0) || math.IsNaN(v) || !isNumeral(t.atom) {
			return lin{}, p.errf(t.line, "%q is neither a declared variable nor a finite number", t.atom)
		}
		zero.c = v
		return zero, nil
	}
	if len(t.list) < 2 || t.list[0].list != nil {
		return lin{}, p.errf(t.line, "expected a term (an operator with arguments)")
	}
	args := make([]lin, len(t.list)-1)
	for i, a := range t.list[1:] {
		v, err := p.term(a, d, depth+1)
		if err != nil {
			return lin{}, err
		}
		args[i] = v
	}
	switch op := t.list[0].atom; op {
	case "+":
		out := zero
		for _, a := range args {
			out = out.add(a)
		}
		return out, nil
	case "-":
		if len(args) == 1 {
			return args[0].scale(-1), nil
		}
		out := args[0]
		for _, a := range args[1:] {
			out = out.add(a.scale(-1))
		}
		return out, nil
	case "*":
		out := args[0]
		for _, a := range args[1:] {
			switch {
			case a.constant():
				out = out.scale(a.c)
			case out.constant():
				out = a.scale(out.c)
			default:
				return lin{}, p.errf(t.line, "product of two non-constant terms: not linear")
			}
		}
		return out, nil
	case "/":
		out := args[0]
		for _, a := range args[1:] {
			if !a.constant() || a.c == 0 {
				return lin{}, p.errf(t.line, "division by a non-constant or zero term")
			}
			out = out.scale(1 / a.c)
		}
		return out, nil
	default:
		return lin{}, p.errf(t.line, "unsupported term operator %q", op)
	}
}

// isNumeral accepts decimal numbers (an optional sign, digits, a point, an
// exponent), rejecting what ParseFloat also takes ("inf", "0x1p3", "1_000").
func isNumeral(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E') {
			return false
		}
	}
	return true
}

// split turns one conjunction of atoms into an input box and output halfspaces;
// ok is false when the conjunction is infeasible on its face (an empty box, a
// false constant constraint).
func (p *parser) split(conj []atom, nx, ny int) (lo, hi []float64, out Conjunct, ok bool, err error) {
	lo, hi = make([]float64, nx), make([]float64, nx)
	for i := range lo {
		lo[i], hi[i] = math.Inf(-1), math.Inf(1)
	}
	ok = true
	for _, a := range conj {
		var xs []int
		for i, v := range a.e.x {
			if v != 0 {
				xs = append(xs, i)
			}
		}
		ys := 0
		for _, v := range a.e.y {
			if v != 0 {
				ys++
			}
		}
		switch {
		case len(xs) == 0 && ys == 0:
			if a.e.c < 0 || (a.strict && a.e.c == 0) {
				ok = false
			}
		case len(xs) == 1 && ys == 0:
			if a.strict {
				return nil, nil, nil, false, p.errf(a.line, "strict bound on X_%d: unsupported", xs[0])
			}
			i := xs[0]
			b := -a.e.c / a.e.x[i] // a·x + c ≥ 0
			if math.IsInf(b, 0) || math.IsNaN(b) {
				return nil, nil, nil, false, p.errf(a.line, "bound on X_%d is %g", i, b)
			}
			if a.e.x[i] > 0 {
				lo[i] = math.Max(lo[i], b)
			} else {
				hi[i] = math.Min(hi[i], b)
			}
		case len(xs) == 0:
			h := Halfspace{C: make([]float64, ny), D: a.e.c, Strict: a.strict}
			for j, v := range a.e.y {
				h.C[j] = v
			}
			out = append(out, h)
		default:
			return nil, nil, nil, false, p.errf(a.line, "constraint relating several inputs, or inputs and outputs: unsupported")
		}
	}
	for i := range lo {
		if lo[i] > hi[i] {
			ok = false
		}
	}
	if !ok {
		return nil, nil, nil, false, nil
	}
	for i := range lo {
		if math.IsInf(lo[i], 0) || math.IsInf(hi[i], 0) {
			return nil, nil, nil, false, p.errf(p.line, "X_%d is unbounded in a disjunct ([%g, %g]): every input needs a lower and an upper bound", i, lo[i], hi[i])
		}
	}
	return lo, hi, out, true, nil
}
