// Package disclosure is the agent's disclosure audit (secondary suppression). It takes a
// run's true month counts and publishes every value of format 2, each through the policy on
// its own, then withholds margins and quarter or year values until no value the policy
// protects can be recovered exactly from the rest of the file.
//
// # Why
//
// Rounded margins beside suppressed cells pin counts down. One month, one age band: female
// 13 -> 15 [13,17], male 8 -> 10 [8,12], unknown 1 -> suppressed [1,7], band margin 22 ->
// 20 [18,22]; then unknown <= 22-13-8 = 1. Across time: months 8, 8, 1 -> 10, 10,
// suppressed, quarter 17 -> 15 [13,17]; the third month is 1.
//
// # The attacker the audit defends against
//
// Base cells are (measure, month, age band × sex) true counts. Every published value is a
// box sum of one measure's base cells. An attacker knows every non-withheld value's bounds,
// that counts are whole and not negative, that admissions >= admissions_emergency +
// admissions_elective and patients_admitted_emergency <= admissions_emergency cell by cell,
// and how this package decides (it is open source). A protected value (pol.Protects: a
// suppressed count, or a 1-6 block under midpoint-6) is pinned if every table the attacker
// cannot rule out gives it the same value.
//
// # The rule, and why the pattern of withheld values reveals nothing
//
// An audit that withholds a margin exactly when the truth would be pinned leaks through the
// pattern itself: "withheld" then means "pinned" (for 8, 8, 1 in one band the total is
// withheld for that table alone, so seeing it withheld gives unknown = 1). So the audit
// decides the non-fine values one at a time, in a fixed order (month totals, sex margins
// and band margins; then year and quarter totals, sex margins and band margins; then
// quarter and year fine cells: the values the federation needs most first), and each
// decision depends on the true table only through the bucket (policy interval) of the
// value being decided:
//
//   - P is the set of tables consistent with the month cells and every decision so far.
//   - For a bucket b of value v, the slice P_b holds the tables of P with v in b. b is bad
//     if some published protected value (or v itself, if b is a protected bucket) takes one
//     value only over P_b. b is impossible if P_b is proved empty (see Propagation): it is
//     no outcome, so neither bad nor anyone's neighbour.
//   - v is published iff neither its own bucket nor the nearest possible bucket either side
//     is bad. Otherwise it is withheld, and the audit treats the attacker as knowing the
//     whole run of withheld possible buckets v lies in, which always holds a good bucket (a
//     run ends at a possible bucket that is not withheld, so its neighbour in the run is
//     not bad) or spans every possible bucket.
//
// Seeing "withheld", an attacker can narrow v only to that run, and inside its good bucket
// every protected value still takes two values or more. Every table consistent with the
// published values leads the audit through the same decisions, so the set of tables an
// attacker cannot rule out is exactly the consistent set, and no protected value is
// constant on it. Month fine cells are never withheld (the coordinator falls back to them).
//
// # Propagation: proofs of impossible buckets and of pins
//
// Every published value is the sum of the values that partition its box (the months or
// quarters of its period; the cells, bands or sexes of its shape), and the relations are
// inequalities on cells. From intervals for all terms of one such equation but one, the
// last is bounded; applying every equation until nothing changes gives, for every group,
// an interval that every table of P puts it in (propagate.go). The audit keeps these
// bounds for P and, to examine a bucket, narrows v to it and propagates again, then undoes
// the change. An empty interval proves P_b empty (b is impossible); a protected value
// whose interval is a single count proves b bad without any search. Both are implied by
// public values, so they leak nothing, and they never conclude "safe": an impossible
// bucket is safe because it cannot happen, not because anything was found in it. The
// bounds also give v's possible range: a value that range places within one bucket (and
// that is not a new protected value) adds nothing and is published without search.
//
// # The search, and why it is all public
//
// Whether a possible slice is bad is decided by search, never by reading the truth: the
// audit keeps
// a canonical table built from the published month buckets (each cell mid-bucket, adjusted
// for the relations) and moves it into each slice it examines (reach: unit steps on the
// cell of the value that leaves every touched group the most room, moving cells whose
// month bucket is a protected one last, so that small counts keep room either way). For
// every protected
// value it keeps a witness: a small move from the canonical table to another consistent
// one in which the value differs. Witnesses are tried as exchange patterns first (the cell
// alone; pairs; rectangles across sex × band, month × sex, month × band; cubes across
// month × band × sex within a quarter, which leave every margin unchanged), then a bounded
// depth-first repair search (take the first broken constraint, try the nearest cells that
// mend it). A new constraint rechecks only the witnesses it can break (an index from groups
// and relation cells to witnesses).
//
// A bucket the search cannot reach, or where a witness is not found, is treated as bad.
// So a weak search costs utility, never safety: every decision is a function of public
// values and of the decided value's own bucket, whatever the search finds.
//
// Values over the same free cells (cells whose month value is not a published zero) are
// one group; their true sums are equal in every consistent table.
//
// # Cost
//
// The work grows with the number of values the audit must decide (those summing a
// suppressed cell) and with how tight the published values make the cells. BenchmarkAudit
// measures a realistic practice.
package disclosure
