package formats

import (
	"bytes"
	"fmt"
	"io"
	"math"
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
// counts only: it is what may leave the practice. Writers fill Cells in any order;
// ReadSubmission fills them in canonical order, and ReadBlocks gives the same values
// grouped, without making a Cell of each.
type Submission struct {
	Practice   string
	RunID      string
	From, To   Month    // the run's months, inclusive
	Extractors []string // "name@version" of each extractor that contributed
	Policy     string   // disclosure policy name
	Cells      []Cell
}

// Block is one period and measure of a submission: its values in shape order (FineShape,
// BandShape, SexShape, TotalShape): one row of the file.
type Block struct {
	Period  Period
	Measure string
	Values  [NumShapes]Protected
}

// MaxRunMonths bounds a run's span (50 years).
const MaxRunMonths = 600

// Value codes in a submission file's shape columns: a published value is itself (0 or
// more, its bounds implied by the policy); a suppressed one is codeSuppressed (bounds 1 to
// the policy's SuppressMax), a withheld one codeWithheld (no count, no bounds).
const (
	codeSuppressed = -1
	codeWithheld   = -2
)

// ShapeName is the column name of shape i in a submission file: "<age band>/<sex>", with
// "all" for a margin (e.g. "0-4/female", "0-4/all", "all/female", "all/all").
func ShapeName(i int) string {
	b, x := ShapeLabels(i)
	return b + "/" + x
}

// SubmissionSchema is the Arrow schema of a submission, without its file-specific metadata:
// one row per period and measure, then one int32 column per shape (see ShapeName), in shape
// order.
var SubmissionSchema = func() *arrow.Schema {
	fields := []arrow.Field{
		{Name: "period", Type: arrow.BinaryTypes.String},
		{Name: "measure", Type: arrow.BinaryTypes.String},
	}
	for i := range NumShapes {
		fields = append(fields, arrow.Field{Name: ShapeName(i), Type: arrow.PrimitiveTypes.Int32})
	}
	return arrow.NewSchema(fields, nil)
}()

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
// and quarter or year values are withheld, and that every measure carries every shape of
// every period of the run exactly once, so a missing value can never be read as a zero.
func (s *Submission) Validate() error {
	_, err := s.Blocks()
	return err
}

// Blocks validates s and returns its values grouped by period and measure, in canonical
// order (periods as PeriodsOf gives them, then measures as CompareMeasures orders them).
func (s *Submission) Blocks() ([]Block, error) {
	const op = "validate submission"
	if err := s.validateHeader(); err != nil {
		return nil, err
	}
	periods := PeriodsOf(s.From, s.To)
	periodIndex := make(map[Period]int, len(periods))
	for i, p := range periods {
		periodIndex[p] = i
	}
	type slot struct {
		block  *Block
		filled [NumShapes]bool
		n      int
	}
	byMeasure := map[string][]slot{}
	for i, c := range s.Cells {
		slots := byMeasure[c.Measure]
		if slots == nil {
			if !MeasureNamePattern.MatchString(c.Measure) {
				return nil, errorf(op, ErrValue, "cell %d: measure name %s is not valid; a name is lower-case letters, digits and '_'", i, shown(c.Measure))
			}
			slots = make([]slot, len(periods))
			byMeasure[c.Measure] = slots
		}
		pi, ok := periodIndex[c.Period]
		if !ok {
			return nil, errorf(op, ErrValue, "cell %d: period %s is not one a run over %s to %s publishes", i, c.Period, s.From, s.To)
		}
		shape := ShapeIndex(c.AgeBand, c.Sex)
		if shape < 0 {
			return nil, errorf(op, ErrValue, "cell %d: age band %s and sex %s are not labels of the contract; expected %s … %s or %s, and female, male, unknown or %s", i, shown(c.AgeBand), shown(c.Sex), AgeBands[0], AgeBands[NumBands-1], All, All)
		}
		sl := &slots[pi]
		if sl.block == nil {
			sl.block = &Block{Period: c.Period, Measure: c.Measure}
		}
		if sl.filled[shape] {
			return nil, errorf(op, ErrValue, "cell %d: %s appears twice; each period, measure, age band and sex may appear once", i, c.label())
		}
		sl.filled[shape] = true
		sl.n++
		sl.block.Values[shape] = c.Protected
	}
	measures := make([]string, 0, len(byMeasure))
	for m := range byMeasure {
		measures = append(measures, m)
	}
	slices.SortFunc(measures, compareMeasures)
	blocks := make([]Block, 0, len(periods)*len(measures))
	for pi := range periods {
		for _, m := range measures {
			sl := byMeasure[m][pi]
			if sl.n != NumShapes {
				return nil, errorf(op, ErrValue, "measure %s carries %d of its %d values in %s; a measure supplied carries every shape of every period of the run", shown(m), sl.n, NumShapes, periods[pi])
			}
			blocks = append(blocks, *sl.block)
		}
	}
	return blocks, s.validateValues(blocks)
}

func (s *Submission) validateHeader() error {
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
	if _, err := PolicyByName(s.Policy); err != nil {
		return err
	}
	for _, x := range s.Extractors {
		if !extractorPattern.MatchString(x) {
			return errorf(op, ErrValue, "extractor %s must be name@version", shown(x))
		}
	}
	return nil
}

// validateValues checks every value of canonical blocks against the policy, and where a
// value may be withheld.
func (s *Submission) validateValues(blocks []Block) error {
	const op = "validate submission"
	pol, _ := PolicyByName(s.Policy) // checked with the header
	for _, b := range blocks {
		for shape, v := range b.Values {
			if v.Status == StatusWithheld && b.Period.Kind == KindMonth && IsFineShape(shape) {
				return errorf(op, ErrValue, "%s: a month's age band × sex cell is withheld; only margins and quarter or year values may be", blockLabel(b, shape))
			}
			if err := pol.Check(v); err != nil {
				return at(op, blockLabel(b, shape), err)
			}
		}
	}
	return nil
}

func blockLabel(b Block, shape int) string {
	return b.Period.String() + " " + shown(b.Measure) + " " + ShapeName(shape)
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

// EncodeValue is a published value's code in a file of shape columns (a submission, or the
// coordinator's practice tables): the count itself, -1 suppressed, -2 withheld. Its bounds
// are not kept: DecodeValue gives them back from the policy.
func EncodeValue(v Protected) int32 { return encode(v) }

// DecodeValue turns a code written by EncodeValue back into the value pol published, with the
// bounds pol implies; a code pol cannot have produced is an ErrValue.
func DecodeValue(pol Policy, code int32) (Protected, error) { return decode(pol, code) }

// encode is a value's code in the file.
func encode(v Protected) int32 {
	switch v.Status {
	case StatusSuppressed:
		return codeSuppressed
	case StatusWithheld:
		return codeWithheld
	}
	return int32(v.Count)
}

// WriteSubmission validates s and writes it as an Arrow IPC file (zstd): one row per
// period and measure in canonical order, one int32 column per shape. The same submission
// always gives the same bytes.
func WriteSubmission(w io.Writer, s *Submission) error {
	blocks, err := s.Blocks()
	if err != nil {
		return err
	}
	for _, b := range blocks {
		for shape, v := range b.Values {
			if v.Count > math.MaxInt32 {
				return errorf("write submission", ErrValue, "%s: a count over 2^31 cannot be written", blockLabel(b, shape))
			}
		}
	}
	md := s.metadata()
	schema := arrow.NewSchema(SubmissionSchema.Fields(), &md)
	rb := array.NewRecordBuilder(memory.NewGoAllocator(), schema)
	defer rb.Release()
	rb.Reserve(len(blocks))
	period := rb.Field(0).(*array.StringBuilder)
	measure := rb.Field(1).(*array.StringBuilder)
	var cols [NumShapes]*array.Int32Builder
	for i := range cols {
		cols[i] = rb.Field(2 + i).(*array.Int32Builder)
	}
	for _, b := range blocks {
		period.Append(b.Period.String())
		measure.Append(b.Measure)
		for i, v := range b.Values {
			cols[i].Append(encode(v))
		}
	}
	rec := rb.NewRecord()
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

// ReadSubmission parses and validates a submission file within lim, with every value as a
// Cell in canonical order. It never panics: bytes the Arrow library cannot read give
// ErrCorrupt, oversized ones ErrTooLarge.
func ReadSubmission(data []byte, lim Limits) (*Submission, error) {
	s, blocks, err := ReadBlocks(data, lim)
	if err != nil {
		return nil, err
	}
	s.setCells(blocks)
	return s, nil
}

// setCells fills s.Cells from canonical blocks.
func (s *Submission) setCells(blocks []Block) {
	s.Cells = make([]Cell, 0, len(blocks)*NumShapes)
	for _, b := range blocks {
		for shape, v := range b.Values {
			band, sex := ShapeLabels(shape)
			s.Cells = append(s.Cells, Cell{Period: b.Period, Measure: b.Measure, AgeBand: band, Sex: sex, Protected: v})
		}
	}
}

// ReadBlocks parses and validates a submission file within lim and returns its header (Cells
// nil) and its values by period and measure, in canonical order: what a reader of many files
// needs, without a Cell for each value. It never panics.
func ReadBlocks(data []byte, lim Limits) (*Submission, []Block, error) {
	const op = "read submission"
	var s *Submission
	var pol Policy
	var blocks []Block
	batches := 0
	err := readIPCFile(op, data, lim, func(schema *arrow.Schema) (err error) {
		if s, err = submissionFromMetadata(schema); err != nil {
			return err
		}
		if err := s.validateHeader(); err != nil {
			return err
		}
		pol, _ = PolicyByName(s.Policy)
		return nil
	}, func(rec arrow.Record) error {
		batches++
		var err error
		blocks, err = appendBlocks(blocks, pol, rec)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	if batches == 0 {
		return nil, nil, errorf(op, ErrCorrupt, "the file holds no record batch")
	}
	if err := s.checkBlocks(blocks); err != nil {
		return nil, nil, err
	}
	return s, blocks, nil
}

// checkBlocks checks that blocks read from a file are exactly the run's periods × measures,
// each once, in canonical order, with valid values.
func (s *Submission) checkBlocks(blocks []Block) error {
	const op = "read submission"
	periods := PeriodsOf(s.From, s.To)
	var measures []string
	for _, b := range blocks {
		if b.Period != periods[0] {
			break
		}
		measures = append(measures, b.Measure)
	}
	if len(measures) == 0 {
		return errorf(op, ErrValue, "the file holds no values of its first period %s", periods[0])
	}
	for i, m := range measures {
		if !MeasureNamePattern.MatchString(m) {
			return errorf(op, ErrValue, "row %d: measure name %s is not valid; a name is lower-case letters, digits and '_'", i, shown(m))
		}
		if i > 0 && compareMeasures(measures[i-1], m) >= 0 {
			return errorf(op, ErrValue, "row %d: measure %s is out of order or repeated; each period lists its measures once, in canonical order", i, shown(m))
		}
	}
	if want := len(periods) * len(measures); len(blocks) != want {
		return errorf(op, ErrValue, "the file holds %d rows; a run over %s to %s with %d measures has %d (every period × measure once): a value missing is never read as 0", len(blocks), s.From, s.To, len(measures), want)
	}
	for i, b := range blocks {
		if b.Period != periods[i/len(measures)] || b.Measure != measures[i%len(measures)] {
			return errorf(op, ErrValue, "row %d holds %s %s where %s %s belongs; every period lists the same measures, in canonical order", i, b.Period, shown(b.Measure), periods[i/len(measures)], shown(measures[i%len(measures)]))
		}
	}
	return s.validateValues(blocks)
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

// appendBlocks decodes a record's rows into blocks, each value through pol: a code the
// policy cannot have produced is refused here.
func appendBlocks(blocks []Block, pol Policy, rec arrow.Record) ([]Block, error) {
	const op = "read submission"
	period := rec.Column(0).(*array.String)
	measure := rec.Column(1).(*array.String)
	var cols [NumShapes][]int32
	for i := range cols {
		c := rec.Column(2 + i).(*array.Int32)
		if c.NullN() > 0 {
			return nil, errorf(op, ErrValue, "column %s holds a null: a value is missing, and a missing value is never read as 0", ShapeName(i))
		}
		cols[i] = c.Int32Values()
	}
	var lastPeriodLabel, lastMeasure string
	var lastPeriod Period
	for j := 0; j < int(rec.NumRows()); j++ {
		if period.IsNull(j) || measure.IsNull(j) {
			return nil, errorf(op, ErrValue, "row %d: period or measure is null", len(blocks))
		}
		if label := period.Value(j); j == 0 || label != lastPeriodLabel {
			p, err := ParsePeriod(label)
			if err != nil {
				return nil, errorf(op, ErrValue, "row %d: period %s is not a month, quarter or year", len(blocks), shown(label))
			}
			lastPeriodLabel, lastPeriod = strings.Clone(label), p
		}
		if m := measure.Value(j); j == 0 || m != lastMeasure {
			lastMeasure = strings.Clone(m)
		}
		b := Block{Period: lastPeriod, Measure: lastMeasure}
		for i := range NumShapes {
			v, err := decode(pol, cols[i][j])
			if err != nil {
				return nil, at(op, fmt.Sprintf("row %d (%s)", len(blocks), blockLabel(b, i)), err)
			}
			b.Values[i] = v
		}
		blocks = append(blocks, b)
	}
	return blocks, nil
}

// decode turns a code of the file into the published value, with the bounds the policy
// implies.
func decode(pol Policy, code int32) (Protected, error) {
	switch {
	case code == codeWithheld:
		return Protected{Status: StatusWithheld}, nil
	case code == codeSuppressed:
		if pol.SuppressMax == 0 {
			return Protected{}, errorf("decode value", ErrValue, "a suppressed value under %s, which suppresses nothing", pol.Name)
		}
		return Protected{Status: StatusSuppressed, Lower: 1, Upper: pol.SuppressMax}, nil
	case code < 0:
		return Protected{}, errorf("decode value", ErrValue, "code %d is neither a count nor a code of the contract (-1 suppressed, -2 withheld)", code)
	}
	v, ok := pol.boundsOf(int64(code))
	if !ok {
		return Protected{}, errorf("decode value", ErrValue, "count %d cannot come from policy %s; the file was not made by the policy it names", code, pol.Name)
	}
	return v, nil
}
