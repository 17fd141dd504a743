package formats

import (
	"bytes"
	"errors"
	"fmt"
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

// secretDiagnosis is a diagnosis code no error may contain either.
const secretDiagnosis = "Q8784"

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
		{PatientKey: "PK-2", Kind: KindAdmission, Start: day("2024-02-29"), End: day("2024-03-03"), Method: MethodEmergency, DiagnosisCode: "I219", DiagnosisSystem: DiagnosisICD10},
		{PatientKey: "PK-3", Kind: KindAdmission, Start: day("2024-03-30"), End: NoEnd, Method: MethodUnknown},
		{PatientKey: "PK-3", Kind: KindConsultation, Start: day("2024-03-31"), End: NoEnd, DiagnosisCode: "195662009", DiagnosisSystem: DiagnosisSNOMED},
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
		{"events missing admission_method", RowEvents, ev[:4], [][]any{k, {KindConsultation}, d, {nil}}, []string{"events", "4 fields", "the contract has 5", "or 7 with the optional diagnosis_code and diagnosis_system", "missing field admission_method"}},
		{"events with diagnosis_code but not diagnosis_system", RowEvents, ev[:6], [][]any{k, {KindConsultation}, d, {nil}, {nil}, {nil}}, []string{"events", "6 fields", "the contract has 7", "missing field diagnosis_system"}},
		{"events with the diagnosis columns swapped", RowEvents, []arrow.Field{ev[0], ev[1], ev[2], ev[3], ev[4], ev[6], ev[5]}, [][]any{k, {KindConsultation}, d, {nil}, {nil}, {nil}, {nil}}, []string{"events", "field 5 is diagnosis_system, the contract has diagnosis_code"}},
		{"events with diagnosis_code as int64", RowEvents, withField(EventsSchema, 5, arrow.Field{Name: FieldDiagnosisCode, Type: arrow.PrimitiveTypes.Int64, Nullable: true}), [][]any{k, {KindConsultation}, d, {nil}, {nil}, {nil}, {nil}}, []string{"events", "field diagnosis_code has type int64"}},
		{"events with start as int64", RowEvents, withField(EventsSchema, 2, arrow.Field{Name: FieldStart, Type: arrow.PrimitiveTypes.Int64}), [][]any{k, {KindConsultation}, {int64(3)}, {nil}, {nil}, {nil}, {nil}}, []string{"events", "field start has type int64"}},
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
		return [][]any{append(slices.Clone(ok), key), {KindConsultation, kind}, {from, start}, {nil, end}, {nil, method}, {nil, nil}, {nil, nil}}
	}
	// dx is an A&E attendance of the secret patient with a diagnosis.
	dx := func(code, system any) [][]any {
		c := ev(secretKey, KindAE, from, nil, nil)
		c[5][1], c[6][1] = code, system
		return c
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
		{"diagnosis code without a system", RowEvents, dx(secretDiagnosis, nil), []string{"row 1", "fields diagnosis_code and diagnosis_system must both be set or both be null"}},
		{"diagnosis system without a code", RowEvents, dx(nil, DiagnosisICD10), []string{"row 1", "fields diagnosis_code and diagnosis_system must both be set or both be null"}},
		{"unknown diagnosis system", RowEvents, dx(secretDiagnosis, "icd9"), []string{"row 1", "field diagnosis_system must be icd10 or snomedct"}},
		{"ICD-10 code with its dot", RowEvents, dx("J45.9", DiagnosisICD10), []string{"row 1", "field diagnosis_code is not an ICD-10 code in canonical form"}},
		{"ICD-10 code in lower case", RowEvents, dx("j459", DiagnosisICD10), []string{"row 1", "field diagnosis_code is not an ICD-10 code"}},
		{"SNOMED CT code as an ICD-10 code", RowEvents, dx("195662009", DiagnosisICD10), []string{"row 1", "field diagnosis_code is not an ICD-10 code"}},
		{"ICD-10 code as a SNOMED CT code", RowEvents, dx(secretDiagnosis, DiagnosisSNOMED), []string{"row 1", "field diagnosis_code is not a SNOMED CT concept id"}},
		{"SNOMED CT code with a wrong check digit", RowEvents, dx("195662008", DiagnosisSNOMED), []string{"row 1", "field diagnosis_code is not a SNOMED CT concept id"}},
		{"SNOMED CT description id", RowEvents, dx("2967032012", DiagnosisSNOMED), []string{"row 1", "field diagnosis_code is not a SNOMED CT concept id"}},
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
			for _, v := range []string{secretKey, "2015-01-01", "2012-01-01", "1984-07", secretDiagnosis, "J45", "j45", "19566200", "2967032012"} {
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

// TestEventsWithoutDiagnosisColumns reads a batch of rows version 1 (no diagnosis columns), as
// a plugin built before diagnoses sends it: its events have no diagnosis.
func TestEventsWithoutDiagnosisColumns(t *testing.T) {
	k, d := []any{secretKey, "PK-2"}, []any{day("2020-01-01"), day("2020-01-02")}
	rec := rowRecord(t, EventsSchemaV1.Fields(), k, []any{KindConsultation, KindAdmission}, d, []any{nil, day("2020-01-05")}, []any{nil, MethodElective})
	defer rec.Release()
	var got []Event
	roundTrip(t, rec, func(rec arrow.Record) error {
		if err := CheckSchema(RowEvents, rec.Schema()); err != nil {
			return err
		}
		return DecodeEvents(rec, func(e Event) error { got = append(got, e); return nil })
	})
	want := []Event{
		{PatientKey: secretKey, Kind: KindConsultation, Start: day("2020-01-01"), End: NoEnd},
		{PatientKey: "PK-2", Kind: KindAdmission, Start: day("2020-01-02"), End: day("2020-01-05"), Method: MethodElective},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if ContractSchema(RowEvents, rec.Schema()) != EventsSchemaV1 || ContractSchema(RowEvents, EventsSchema) != EventsSchema {
		t.Error("ContractSchema does not tell the two events schemas apart")
	}
	if v, _ := EventsSchema.Metadata().GetValue(MetaRowsVersion); v != "2" {
		t.Errorf("events schema metadata %s = %q, want 2", MetaRowsVersion, v)
	}
}

func TestNormalizeDiagnosis(t *testing.T) {
	cases := []struct {
		system, in, want string
		ok               bool
	}{
		{DiagnosisICD10, "I21.9", "I219", true},
		{DiagnosisICD10, " i219 ", "I219", true},
		{DiagnosisICD10, "I10X", "I10", true},
		{DiagnosisICD10, "I10", "I10", true},
		{DiagnosisICD10, "K358-", "K358", true},
		{DiagnosisICD10, "U07.1", "U071", true},
		{DiagnosisICD10, "S72.001A", "S72001A", true}, // ICD-10-CM, seven characters
		{DiagnosisICD10, "C4A", "C4A", true},
		{DiagnosisICD10, "A1111", "A1111", true}, // the shape of a code, if not a real one
		{DiagnosisICD10, "", "", false},
		{DiagnosisICD10, "I2", "I2", false},
		{DiagnosisICD10, "12.34", "12.34", false},
		{DiagnosisICD10, "I21.93456", "I2193456", false},
		{DiagnosisICD10, "I21 9", "I21 9", false},
		{DiagnosisICD10, "195662009", "195662009", false},
		{DiagnosisSNOMED, "195662009", "195662009", true},
		{DiagnosisSNOMED, "38341003", "38341003", true},
		{DiagnosisSNOMED, " 44054006 ", "44054006", true},
		{DiagnosisSNOMED, "1551000119108", "1551000119108", true}, // extension concept (partition 10)
		{DiagnosisSNOMED, "195662008", "195662008", false},        // check digit
		{DiagnosisSNOMED, "2967032012", "2967032012", false},      // a description id (partition 01)
		{DiagnosisSNOMED, "012345", "012345", false},
		{DiagnosisSNOMED, "12345", "12345", false},
		{DiagnosisSNOMED, "I219", "I219", false},
		{"icd9", "250.00", "250.00", false},
	}
	for _, c := range cases {
		got, ok := NormalizeDiagnosis(c.system, c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("NormalizeDiagnosis(%s, %q) = %q, %v; want %q, %v", c.system, c.in, got, ok, c.want, c.ok)
		}
		e := Event{PatientKey: "PK", Kind: KindConsultation, Start: day("2020-01-01"), End: NoEnd, DiagnosisCode: got, DiagnosisSystem: c.system}
		if err := ValidateEvent(e); (err == nil) != c.ok && got != "" {
			t.Errorf("ValidateEvent with %s %q: %v, want accepted = %v", c.system, got, err, c.ok)
		}
	}
}

// TestSchemaErrorIsShort: the compact submission schema has 82 fields; a file with a few
// of them once produced a 1,400-byte error listing every name twice (found by
// FuzzReadSubmission). The message stays short and still says what is wrong.
func TestSchemaErrorIsShort(t *testing.T) {
	got := arrow.NewSchema(SubmissionSchema.Fields()[:3], nil)
	err := compareFields("read submission", KindSubmission, SubmissionSchema, got)
	if err == nil {
		t.Fatal("a 3-field submission schema was accepted")
	}
	msg := err.Error()
	if len(msg) > 400 {
		t.Errorf("error is %d bytes: %s", len(msg), msg)
	}
	for _, want := range []string{"3 fields", fmt.Sprintf("the contract has %d", SubmissionSchema.NumFields()), "missing field " + SubmissionSchema.Field(3).Name, "more"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
}
