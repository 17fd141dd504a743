package formats

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// secretKey is a patient key no error may ever contain.
const secretKey = "PK-7f3a9c2e41"

func day(s string) Date {
	d, err := ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

var (
	sampleRegistrations = []Registration{
		{PatientKey: secretKey, Sex: "female", BirthMonth: MonthFor(1984, time.July), From: day("2010-05-17"), To: NoEnd},
		{PatientKey: "PK-2", Sex: "male", BirthMonth: MonthFor(2019, time.February), From: day("2019-02-20"), To: day("2023-08-01")},
		{PatientKey: "PK-3", Sex: "unknown", BirthMonth: MonthFor(1920, time.January), From: day("1990-01-01"), To: day("1990-01-01")},
	}
	sampleEvents = []Event{
		{PatientKey: secretKey, Kind: KindConsultation, Start: day("2024-03-04"), End: NoEnd},
		{PatientKey: secretKey, Kind: KindOutpatient, Start: day("2024-03-05"), End: NoEnd},
		{PatientKey: "PK-2", Kind: KindAE, Start: day("2024-02-29"), End: day("2024-02-29")},
		{PatientKey: "PK-2", Kind: KindAdmission, Start: day("2024-02-29"), End: day("2024-03-03"), Method: MethodEmergency},
		{PatientKey: "PK-3", Kind: KindAdmission, Start: day("2024-03-30"), End: NoEnd, Method: MethodUnknown},
	}
)

func TestRowsRoundTrip(t *testing.T) {
	rb := NewRegistrationBuilder(nil)
	defer rb.Release()
	for _, r := range sampleRegistrations {
		if err := rb.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	if rb.Len() != len(sampleRegistrations) {
		t.Fatalf("Len = %d", rb.Len())
	}
	var regs []Registration
	roundTrip(t, rb.NewRecord(), func(rec arrow.Record) error {
		return DecodeRegistrations(rec, func(r Registration) error { regs = append(regs, r); return nil })
	})
	if !slices.Equal(regs, sampleRegistrations) {
		t.Errorf("registrations came back as\n%+v\nwant\n%+v", regs, sampleRegistrations)
	}
	if rb.Len() != 0 {
		t.Errorf("NewRecord did not reset the builder")
	}

	eb := NewEventBuilder(memory.NewGoAllocator())
	defer eb.Release()
	for _, e := range sampleEvents {
		if err := eb.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	var events []Event
	roundTrip(t, eb.NewRecord(), func(rec arrow.Record) error {
		return DecodeEvents(rec, func(e Event) error { events = append(events, e); return nil })
	})
	if !slices.Equal(events, sampleEvents) {
		t.Errorf("events came back as\n%+v\nwant\n%+v", events, sampleEvents)
	}
}

// roundTrip sends rec through EncodeBatch and DecodeBatch and decodes what arrives.
func roundTrip(t *testing.T, rec arrow.Record, decode func(arrow.Record) error) {
	t.Helper()
	defer rec.Release()
	b, err := EncodeBatch(rec)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeBatch(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Release()
	if !got.Schema().Equal(rec.Schema()) {
		t.Errorf("schema changed in transit: %v", got.Schema())
	}
	if err := decode(got); err != nil {
		t.Fatal(err)
	}
}

// rowRecord builds one record of any fields; each column gets the values given, nil for null.
func rowRecord(t *testing.T, fields []arrow.Field, cols ...[]any) arrow.Record {
	t.Helper()
	b := array.NewRecordBuilder(memory.NewGoAllocator(), arrow.NewSchema(fields, nil))
	defer b.Release()
	for i, col := range cols {
		for _, v := range col {
			fb := b.Field(i)
			switch v := v.(type) {
			case nil:
				fb.AppendNull()
			case string:
				fb.(*array.StringBuilder).Append(v)
			case Date:
				fb.(*array.Date32Builder).Append(arrow.Date32(v))
			case int64:
				fb.(*array.Int64Builder).Append(v)
			default:
				t.Fatalf("rowRecord: %T", v)
			}
		}
	}
	return b.NewRecord()
}

func withField(s *arrow.Schema, i int, f arrow.Field) []arrow.Field {
	fields := s.Fields()
	fields[i] = f
	return fields
}

func TestDecodeRejectsSchema(t *testing.T) {
	k, d := []any{secretKey}, []any{day("2020-01-01")}
	reg := RegistrationsSchema.Fields()
	ev := EventsSchema.Fields()
	cases := []struct {
		name   string
		kind   string
		fields []arrow.Field
		cols   [][]any
		want   []string
	}{
		{"registrations missing registered_to", RowRegistrations, reg[:4], [][]any{k, {"female"}, d, d}, []string{"registrations", "4 fields", "missing field registered_to"}},
		{"registrations with an extra field", RowRegistrations, append(slices.Clone(reg), arrow.Field{Name: "nhs_number", Type: arrow.BinaryTypes.String}), [][]any{k, {"female"}, d, d, {nil}, {"x"}}, []string{"registrations", "6 fields", "unexpected field nhs_number"}},
		{"registrations with sex renamed", RowRegistrations, withField(RegistrationsSchema, 1, arrow.Field{Name: "gender", Type: arrow.BinaryTypes.String}), [][]any{k, {"female"}, d, d, {nil}}, []string{"registrations", "field 1 is gender, the contract has sex"}},
		{"registrations with birth_month as a string", RowRegistrations, withField(RegistrationsSchema, 2, arrow.Field{Name: FieldBirthMonth, Type: arrow.BinaryTypes.String}), [][]any{k, {"female"}, {"1984-07"}, d, {nil}}, []string{"registrations", "field birth_month has type utf8", "date32"}},
		{"registrations with a nullable patient_key", RowRegistrations, withField(RegistrationsSchema, 0, arrow.Field{Name: FieldPatientKey, Type: arrow.BinaryTypes.String, Nullable: true}), [][]any{k, {"female"}, d, d, {nil}}, []string{"registrations", "field patient_key is nullable"}},
		{"events missing admission_method", RowEvents, ev[:4], [][]any{k, {KindConsultation}, d, {nil}}, []string{"events", "4 fields", "missing field admission_method"}},
		{"events with start as int64", RowEvents, withField(EventsSchema, 2, arrow.Field{Name: FieldStart, Type: arrow.PrimitiveTypes.Int64}), [][]any{k, {KindConsultation}, {int64(3)}, {nil}, {nil}}, []string{"events", "field start has type int64"}},
		{"events in the order of registrations", RowEvents, reg, [][]any{k, {"female"}, d, d, {nil}}, []string{"events", "field 1 is sex, the contract has kind"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := rowRecord(t, c.fields, c.cols...)
			defer rec.Release()
			var err error
			if c.kind == RowRegistrations {
				err = DecodeRegistrations(rec, func(Registration) error { t.Fatal("a row was decoded"); return nil })
			} else {
				err = DecodeEvents(rec, func(Event) error { t.Fatal("a row was decoded"); return nil })
			}
			checkError(t, err, ErrSchema, c.want...)
			if strings.Contains(err.Error(), secretKey) {
				t.Errorf("the error carries a patient key: %v", err)
			}
		})
	}
	checkError(t, CheckSchema("visits", RegistrationsSchema), ErrSchema, "unknown row kind visits")
}

func TestDecodeRejectsValues(t *testing.T) {
	ok, born, from, until := []any{"PK-1"}, day("1984-07-01"), day("2010-05-17"), day("2012-01-01")
	reg := func(key, sex, birth, regFrom, regTo any) [][]any {
		return [][]any{append(slices.Clone(ok), key), {"male", sex}, {born, birth}, {from, regFrom}, {nil, regTo}}
	}
	ev := func(key, kind, start, end, method any) [][]any {
		return [][]any{append(slices.Clone(ok), key), {KindConsultation, kind}, {from, start}, {nil, end}, {nil, method}}
	}
	cases := []struct {
		name string
		kind string
		cols [][]any
		want []string
	}{
		{"null patient key", RowRegistrations, reg(nil, "female", born, from, nil), []string{"row 1", "field patient_key is null"}},
		{"empty patient key", RowRegistrations, reg("", "female", born, from, nil), []string{"row 1", "field patient_key is empty"}},
		{"bad sex", RowRegistrations, reg(secretKey, "F", born, from, nil), []string{"row 1", "field sex must be one of"}},
		{"null sex", RowRegistrations, reg(secretKey, nil, born, from, nil), []string{"row 1", "field sex is null"}},
		{"registration ends before it starts", RowRegistrations, reg(secretKey, "female", born, until, from), []string{"row 1", "field registered_to is before registered_from"}},
		{"born after registering", RowRegistrations, reg(secretKey, "female", day("2015-01-01"), from, nil), []string{"row 1", "field birth_month is after registered_from"}},
		{"null registered_from", RowRegistrations, reg(secretKey, "female", born, nil, nil), []string{"row 1", "field registered_from is null"}},
		{"unknown event kind", RowEvents, ev(secretKey, "home_visit", from, nil, nil), []string{"row 1", "field kind must be one of"}},
		{"event ends before it starts", RowEvents, ev(secretKey, KindAdmission, until, from, MethodElective), []string{"row 1", "field end is before start"}},
		{"admission without a method", RowEvents, ev(secretKey, KindAdmission, from, until, nil), []string{"row 1", "field admission_method must be"}},
		{"admission with an NHS code for a method", RowEvents, ev(secretKey, KindAdmission, from, until, "21"), []string{"row 1", "field admission_method must be"}},
		{"method on a consultation", RowEvents, ev(secretKey, KindConsultation, from, nil, MethodEmergency), []string{"row 1", "field admission_method must be null for a consultation"}},
		{"birth year 1", RowRegistrations, reg(secretKey, "female", day("0001-01-01"), from, nil), []string{"row 1", "field birth_month is outside the years 1800-9999"}},
		{"registered in year 10000", RowRegistrations, reg(secretKey, "female", born, from, Date(maxDate+1)), []string{"row 1", "registered_to is outside the years"}},
		{"event in year 1", RowEvents, ev(secretKey, KindAE, day("0001-01-01"), nil, nil), []string{"row 1", "field start or end is outside the years"}},
		{"null start", RowEvents, ev(secretKey, KindAE, nil, nil, nil), []string{"row 1", "field start is null"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rows := 0
			var err error
			if c.kind == RowRegistrations {
				rec := rowRecord(t, RegistrationsSchema.Fields(), c.cols...)
				defer rec.Release()
				err = DecodeRegistrations(rec, func(Registration) error { rows++; return nil })
			} else {
				rec := rowRecord(t, EventsSchema.Fields(), c.cols...)
				defer rec.Release()
				err = DecodeEvents(rec, func(Event) error { rows++; return nil })
			}
			checkError(t, err, ErrValue, append([]string{c.kind}, c.want...)...)
			if rows != 1 {
				t.Errorf("%d rows decoded before the bad one, want 1", rows)
			}
			for _, v := range []string{secretKey, "2015-01-01", "2012-01-01", "1984-07"} {
				if strings.Contains(err.Error(), v) {
					t.Errorf("the error carries the patient-level value %q: %v", v, err)
				}
			}
		})
	}
}

func TestBuilderRejects(t *testing.T) {
	rb := NewRegistrationBuilder(nil)
	defer rb.Release()
	err := rb.Append(Registration{PatientKey: secretKey, Sex: "f", BirthMonth: MonthFor(1984, 7), From: day("2010-05-17"), To: NoEnd})
	checkError(t, err, ErrValue, "registrations row", "field sex")
	eb := NewEventBuilder(nil)
	defer eb.Release()
	err = eb.Append(Event{PatientKey: secretKey, Kind: KindAdmission, Start: day("2024-01-02"), End: NoEnd})
	checkError(t, err, ErrValue, "events row", "field admission_method")
	for _, err := range []error{err} {
		if strings.Contains(err.Error(), secretKey) {
			t.Errorf("the error carries a patient key: %v", err)
		}
	}
	if rb.Len() != 0 || eb.Len() != 0 {
		t.Errorf("a refused row was appended")
	}
	// A callback's error stops decoding and comes back unchanged.
	stop := errors.New("stop")
	for _, r := range sampleRegistrations {
		if err := rb.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	rec := rb.NewRecord()
	defer rec.Release()
	n := 0
	if err := DecodeRegistrations(rec, func(Registration) error { n++; return stop }); err != stop || n != 1 {
		t.Errorf("DecodeRegistrations returned %v after %d rows, want the callback's error after 1", err, n)
	}
}

func TestDecodeBatchRejects(t *testing.T) {
	rb := NewRegistrationBuilder(nil)
	defer rb.Release()
	for i := 0; i < 1000; i++ {
		r := sampleRegistrations[i%len(sampleRegistrations)]
		if err := rb.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	rec := rb.NewRecord()
	defer rec.Release()
	good, err := EncodeBatch(rec)
	if err != nil {
		t.Fatal(err)
	}
	var two bytes.Buffer
	w := ipc.NewWriter(&two, ipc.WithSchema(rec.Schema()))
	for i := 0; i < 2; i++ {
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var none bytes.Buffer
	if err := ipc.NewWriter(&none, ipc.WithSchema(rec.Schema())).Close(); err != nil {
		t.Fatal(err)
	}
	// A string column whose offsets run backwards: Arrow's reader takes it, and reading row 1
	// would panic in the caller.
	keys := array.NewData(arrow.BinaryTypes.String, 3, []*memory.Buffer{nil,
		memory.NewBufferBytes(arrow.Int32Traits.CastToBytes([]int32{0, 4, 1, 5})),
		memory.NewBufferBytes([]byte("PK-1A"))}, nil, 0, 0)
	defer keys.Release()
	bad := array.NewRecord(arrow.NewSchema([]arrow.Field{{Name: FieldPatientKey, Type: arrow.BinaryTypes.String}}, nil), []arrow.Array{array.MakeFromData(keys)}, 3)
	defer bad.Release()
	backwards, err := EncodeBatch(bad)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		b    []byte
		max  int64
		kind error
		want string
	}{
		{"nothing", nil, 0, ErrCorrupt, "not an Arrow IPC stream"},
		{"garbage", []byte("PK-1,female,1984-07,2010-05-17\n"), 0, ErrCorrupt, "decode batch"},
		{"truncated", good[:len(good)-100], 0, ErrCorrupt, "decode batch"},
		{"two batches", two.Bytes(), 0, ErrCorrupt, "more than one record batch"},
		{"no batch", none.Bytes(), 0, ErrCorrupt, "no record batch"},
		{"over the memory limit", good, 4 << 10, ErrTooLarge, "limit"},
		{"string offsets running backwards", backwards, 0, ErrCorrupt, "column patient_key: offsets out of order"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec, err := DecodeBatch(c.b, c.max)
			if rec != nil {
				rec.Release()
			}
			checkError(t, err, c.kind, c.want)
			if strings.Contains(err.Error(), secretKey) {
				t.Errorf("the error carries a patient key: %v", err)
			}
		})
	}
}
