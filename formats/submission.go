package formats

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// Schema metadata keys written into every file.
const (
	MetaFormatVersion = "tributary.format_version"
	MetaKind          = "tributary.kind"
	MetaPractice      = "tributary.practice"
	MetaRunID         = "tributary.run_id"
	MetaFrom          = "tributary.from" // a run's first month, YYYY-MM
	MetaTo            = "tributary.to"   // its last month
	MetaExtractors    = "tributary.extractors"
	MetaPolicy        = "tributary.policy"
)

// KindSubmission is the MetaKind of a practice's monthly submission file.
const KindSubmission = "submission"

// Cell is one published value: a measure in a period, for an age band and sex (either may
// be All, for a margin), after disclosure control.
type Cell struct {
	Period  Period
	Measure string
	AgeBand string // an AgeBands label, or All
	Sex     string // a Sexes label, or All
	Protected
}

// label names a cell in an error message.
func (c Cell) label() string {
	return c.Period.String() + " " + shown(c.Measure) + " " + shown(c.AgeBand) + " " + shown(c.Sex)
}

// Submission is one practice's figures from one run: for every period of the run's months
// (PeriodsOf(From, To)) and every measure supplied, every shape (fine cells, margins by age
// band and by sex, total), each through the disclosure policy on its own. It holds aggregate
// counts only: it is what may leave the practice.
type Submission struct {
	Practice   string
	RunID      string
	From, To   Month    // the run's months, inclusive
	Extractors []string // "name@version" of each extractor that contributed
	Policy     string   // disclosure policy name
	Cells      []Cell
}

// MaxRunMonths bounds a run's span (50 years).
const MaxRunMonths = 600

// SubmissionSchema is the Arrow schema of a submission, without its file-specific metadata.
var SubmissionSchema = arrow.NewSchema([]arrow.Field{
	{Name: "period", Type: arrow.BinaryTypes.String},
	{Name: "measure", Type: arrow.BinaryTypes.String},
	{Name: "age_band", Type: arrow.BinaryTypes.String},
	{Name: "sex", Type: arrow.BinaryTypes.String},
	{Name: "count", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "status", Type: arrow.BinaryTypes.String},
	{Name: "lower", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "upper", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
}, nil)

// ValidateRunMonths checks a run's month range.
func ValidateRunMonths(from, to Month) error {
	const op = "validate run months"
	if from.Year() < 1900 || to.Year() > 9999 {
		return errorf(op, ErrValue, "months %s to %s are out of range", from, to)
	}
	if to < from {
		return errorf(op, ErrValue, "the run's last month %s is before its first %s", to, from)
	}
	if int(to-from) >= MaxRunMonths {
		return errorf(op, ErrValue, "the run spans %d months; at most %d", int(to-from)+1, MaxRunMonths)
	}
	return nil
}

// Validate checks a submission against the contract: identifiers, the policy it names, every
// cell's labels, that every cell is one the policy could have produced, that only margins
// are withheld, and that every measure carries every shape of every period of the run
// exactly once, so a missing value can never be read as a zero.
func (s *Submission) Validate() error {
	const op = "validate submission"
	if err := ValidatePracticeID(s.Practice); err != nil {
		return err
	}
	if err := ValidateRunID(s.RunID); err != nil {
		return err
	}
	if err := ValidateRunMonths(s.From, s.To); err != nil {
		return err
	}
	pol, err := PolicyByName(s.Policy)
	if err != nil {
		return err
	}
	for _, x := range s.Extractors {
		if !extractorPattern.MatchString(x) {
			return errorf(op, ErrValue, "extractor %s must be name@version", shown(x))
		}
	}
	periods := PeriodsOf(s.From, s.To)
	periodIndex := make(map[Period]int, len(periods))
	for i, p := range periods {
		periodIndex[p] = i
	}
	// seen[measure] marks each period × shape once.
	seen := map[string][]bool{}
	for i, c := range s.Cells {
		marks := seen[c.Measure]
		if marks == nil {
			if !MeasureNamePattern.MatchString(c.Measure) {
				return errorf(op, ErrValue, "cell %d: measure name %s is not valid; a name is lower-case letters, digits and '_'", i, shown(c.Measure))
			}
			marks = make([]bool, len(periods)*NumShapes)
			seen[c.Measure] = marks
		}
		pi, ok := periodIndex[c.Period]
		if !ok {
			return errorf(op, ErrValue, "cell %d: period %s is not one a run over %s to %s publishes", i, c.Period, s.From, s.To)
		}
		shape := ShapeIndex(c.AgeBand, c.Sex)
		if shape < 0 {
			return errorf(op, ErrValue, "cell %d: age band %s and sex %s are not labels of the contract; expected %s … %s or %s, and female, male, unknown or %s", i, shown(c.AgeBand), shown(c.Sex), AgeBands[0], AgeBands[NumBands-1], All, All)
		}
		k := pi*NumShapes + shape
		if marks[k] {
			return errorf(op, ErrValue, "cell %d: %s appears twice; each period, measure, age band and sex may appear once", i, c.label())
		}
		marks[k] = true
		if c.Status == StatusWithheld && c.Period.Kind == KindMonth && IsFineShape(shape) {
			return errorf(op, ErrValue, "cell %d (%s): a month's age band × sex cell is withheld; only margins and quarter or year values may be", i, c.label())
		}
		if err := pol.Check(c.Protected); err != nil {
			return at(op, fmt.Sprintf("cell %d (%s)", i, c.label()), err)
		}
	}
	for m, marks := range seen {
		if n := countTrue(marks); n != len(marks) {
			return errorf(op, ErrValue, "measure %s carries %d of its %d values (%d periods × %d shapes); a measure supplied carries them all", shown(m), n, len(marks), len(periods), NumShapes)
		}
	}
	return nil
}

func countTrue(b []bool) int {
	n := 0
	for _, v := range b {
		if v {
			n++
		}
	}
	return n
}

// Sort puts the cells in the canonical order: period (months, then quarters, then years),
// then catalogue measures in catalogue order and others by name, then shape (fine cells band
// by band, band margins, sex margins, total).
func (s *Submission) Sort() {
	slices.SortFunc(s.Cells, compareCells)
}

func compareCells(a, b Cell) int {
	if c := ComparePeriods(a.Period, b.Period); c != 0 {
		return c
	}
	if c := compareMeasures(a.Measure, b.Measure); c != 0 {
		return c
	}
	return ShapeIndex(a.AgeBand, a.Sex) - ShapeIndex(b.AgeBand, b.Sex)
}

func compareMeasures(a, b string) int {
	ia, ib := slices.Index(Measures, a), slices.Index(Measures, b)
	switch {
	case ia >= 0 && ib >= 0:
		return ia - ib
	case ia >= 0:
		return -1
	case ib >= 0:
		return 1
	}
	return strings.Compare(a, b)
}

// CompareMeasures orders measure names: the catalogue's in catalogue order, then others by
// name.
func CompareMeasures(a, b string) int { return compareMeasures(a, b) }

func (s *Submission) metadata() arrow.Metadata {
	return arrow.NewMetadata(
		[]string{MetaFormatVersion, MetaKind, MetaPractice, MetaRunID, MetaFrom, MetaTo, MetaExtractors, MetaPolicy},
		[]string{strconv.Itoa(FormatVersion), KindSubmission, s.Practice, s.RunID, s.From.String(), s.To.String(), strings.Join(s.Extractors, ","), s.Policy},
	)
}

// WriteSubmission validates s and writes it as an Arrow IPC file (zstd) in canonical order.
// The same submission always gives the same bytes.
func WriteSubmission(w io.Writer, s *Submission) error {
	if err := s.Validate(); err != nil {
		return err
	}
	c := *s
	c.Cells = slices.Clone(s.Cells)
	c.Sort()
	md := c.metadata()
	schema := arrow.NewSchema(SubmissionSchema.Fields(), &md)
	b := array.NewRecordBuilder(memory.NewGoAllocator(), schema)
	defer b.Release()
	b.Reserve(len(c.Cells))
	period := b.Field(0).(*array.StringBuilder)
	measure := b.Field(1).(*array.StringBuilder)
	band := b.Field(2).(*array.StringBuilder)
	sex := b.Field(3).(*array.StringBuilder)
	count := b.Field(4).(*array.Int64Builder)
	status := b.Field(5).(*array.StringBuilder)
	lower := b.Field(6).(*array.Int64Builder)
	upper := b.Field(7).(*array.Int64Builder)
	var lastPeriod Period
	var periodLabel string
	for i, cell := range c.Cells {
		if i == 0 || cell.Period != lastPeriod {
			lastPeriod, periodLabel = cell.Period, cell.Period.String()
		}
		period.Append(periodLabel)
		measure.Append(cell.Measure)
		band.Append(cell.AgeBand)
		sex.Append(cell.Sex)
		switch cell.Status {
		case StatusSuppressed:
			count.AppendNull()
			lower.Append(cell.Lower)
			upper.Append(cell.Upper)
		case StatusWithheld:
			count.AppendNull()
			lower.AppendNull()
			upper.AppendNull()
		default:
			count.Append(cell.Count)
			lower.Append(cell.Lower)
			upper.Append(cell.Upper)
		}
		status.Append(cell.Status)
	}
	rec := b.NewRecord()
	defer rec.Release()
	return writeIPCFile(w, rec)
}

// MarshalSubmission is WriteSubmission into a byte slice.
func MarshalSubmission(s *Submission) ([]byte, error) {
	var buf bytes.Buffer
	if err := WriteSubmission(&buf, s); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ReadSubmission parses and validates a submission file within lim. It never panics: bytes
// the Arrow library cannot read give ErrCorrupt, oversized ones ErrTooLarge.
func ReadSubmission(data []byte, lim Limits) (*Submission, error) {
	const op = "read submission"
	var s *Submission
	batches := 0
	err := readIPCFile(op, data, lim, func(schema *arrow.Schema) (err error) {
		s, err = submissionFromMetadata(schema)
		return err
	}, func(rec arrow.Record) error {
		batches++
		return appendCells(s, rec)
	})
	if err != nil {
		return nil, err
	}
	if batches == 0 {
		return nil, errorf(op, ErrCorrupt, "the file holds no record batch")
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

func submissionFromMetadata(schema *arrow.Schema) (*Submission, error) {
	const op = "read submission"
	md := schema.Metadata()
	get := func(k string) string {
		if i := md.FindKey(k); i >= 0 {
			return md.Values()[i]
		}
		return ""
	}
	v := get(MetaFormatVersion)
	if v != strconv.Itoa(FormatVersion) {
		if v == "" {
			return nil, errorf(op, ErrFormatVersion, "no %s in the schema metadata; this is not a Tributary file", MetaFormatVersion)
		}
		return nil, errorf(op, ErrFormatVersion, "format version %s, this coordinator reads version %d; upgrade the coordinator or the agent so they agree", shown(v), FormatVersion)
	}
	if k := get(MetaKind); k != KindSubmission {
		return nil, errorf(op, ErrSchema, "file kind %s, expected %s", shown(k), KindSubmission)
	}
	if err := compareFields(op, KindSubmission, SubmissionSchema, schema); err != nil {
		return nil, err
	}
	from, err1 := ParseMonth(get(MetaFrom))
	to, err2 := ParseMonth(get(MetaTo))
	if err1 != nil || err2 != nil {
		return nil, errorf(op, ErrValue, "%s and %s must be months (YYYY-MM)", MetaFrom, MetaTo)
	}
	s := &Submission{
		Practice: get(MetaPractice),
		RunID:    get(MetaRunID),
		From:     from,
		To:       to,
		Policy:   get(MetaPolicy),
	}
	if x := get(MetaExtractors); x != "" {
		s.Extractors = strings.Split(x, ",")
	}
	return s, nil
}

func appendCells(s *Submission, rec arrow.Record) error {
	const op = "read submission"
	period := rec.Column(0).(*array.String)
	measure := rec.Column(1).(*array.String)
	band := rec.Column(2).(*array.String)
	sex := rec.Column(3).(*array.String)
	count := rec.Column(4).(*array.Int64)
	status := rec.Column(5).(*array.String)
	lower := rec.Column(6).(*array.Int64)
	upper := rec.Column(7).(*array.Int64)
	var lastLabel string
	var lastPeriod Period
	for i := 0; i < int(rec.NumRows()); i++ {
		for c, col := range []arrow.Array{period, measure, band, sex, status} {
			if col.IsNull(i) {
				return errorf(op, ErrValue, "row %d: field %s is null", i, []string{"period", "measure", "age_band", "sex", "status"}[c])
			}
		}
		if label := period.Value(i); i == 0 || label != lastLabel {
			p, err := ParsePeriod(label)
			if err != nil {
				return errorf(op, ErrValue, "row %d: period %s is not a month, quarter or year", i, shown(label))
			}
			lastLabel, lastPeriod = strings.Clone(label), p
		}
		c := Cell{Period: lastPeriod, Measure: measure.Value(i), AgeBand: band.Value(i), Sex: sex.Value(i)}
		c.Status = status.Value(i)
		hasBounds := lower.IsValid(i) && upper.IsValid(i)
		switch {
		case c.Status == StatusWithheld:
			if count.IsValid(i) || lower.IsValid(i) || upper.IsValid(i) {
				return errorf(op, ErrValue, "row %d (%s): a withheld value carries a count or bounds; it must carry none", i, c.label())
			}
		case !hasBounds:
			return errorf(op, ErrValue, "row %d (%s): lower or upper is null; only a withheld value has no bounds", i, c.label())
		case count.IsValid(i):
			if c.Status == StatusSuppressed {
				return errorf(op, ErrValue, "row %d (%s): a suppressed cell carries a value; suppressed counts must be null", i, c.label())
			}
			c.Count = count.Value(i)
			if c.Count < 0 {
				return errorf(op, ErrValue, "row %d (%s): negative count; counts are zero or more, so the file was not written by a Tributary agent", i, c.label())
			}
		case c.Status != StatusSuppressed:
			return errorf(op, ErrValue, "row %d (%s): count is null but status is %s; only a suppressed or withheld value has no count", i, c.label(), shown(c.Status))
		}
		if hasBounds {
			c.Lower, c.Upper = lower.Value(i), upper.Value(i)
		}
		s.Cells = append(s.Cells, c)
	}
	return nil
}
