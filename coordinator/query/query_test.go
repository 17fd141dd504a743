package query_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/internal/fedgen"
	"github.com/tributary-health/tributary/coordinator/query"
	"github.com/tributary-health/tributary/coordinator/registry"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

type cell struct {
	measure, band, sex string
	n                  int64
}

func sub(practice, run, period string, cells ...cell) *formats.Submission {
	m, err := formats.ParseMonth(period)
	if err != nil {
		panic(err)
	}
	s := &formats.Submission{Practice: practice, Period: m, RunID: run, Policy: formats.PolicyUK.Name, Extractors: []string{"hand@1"}}
	for _, c := range cells {
		s.Cells = append(s.Cells, formats.Cell{Measure: c.measure, AgeBand: c.band, Sex: c.sex, Protected: formats.PolicyUK.Apply(c.n)})
	}
	return s
}

// combined makes a store with two practices' hand-made figures, combined:
//
//	A, 2024-01: admissions 0-4 female 12 (10, 8-12), 5-9 male 3 (suppressed, 1-7);
//	            registered 0-4 female 100, 5-9 male 200
//	B, 2024-01: admissions 0-4 female 20 (20, 18-22); registered 0-4 female 50
//	A, 2024-02: admissions 0-4 female 30 (30, 28-32); no registered patients
func combined(t *testing.T) (*query.Combined, objstore.Store) {
	t.Helper()
	ctx := context.Background()
	st, err := objstore.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, coord, _ := formats.GenerateKey()
	adm, rp := formats.Admissions, formats.RegisteredPatients
	runs := map[string][]*formats.Submission{
		"A81001": {
			sub("A81001", "20240301T000000Z-0000000a", "2024-01", cell{adm, "0-4", "female", 12}, cell{adm, "5-9", "male", 3},
				cell{rp, "0-4", "female", 100}, cell{rp, "5-9", "male", 200}),
			sub("A81001", "20240301T000000Z-0000000a", "2024-02", cell{adm, "0-4", "female", 30}),
		},
		"B82002": {
			sub("B82002", "20240302T000000Z-0000000b", "2024-01", cell{adm, "0-4", "female", 20}, cell{rp, "0-4", "female", 50}),
		},
	}
	for p, subs := range runs {
		pub, priv, _ := formats.GenerateKey()
		if _, err := registry.Add(ctx, st, coord, p, "Surgery "+p, pub, time.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := fedgen.WriteSubmissions(ctx, st, priv, time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC), subs...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := combine.Run(ctx, st, coord.Public().(ed25519.PublicKey), combine.Options{}); err != nil {
		t.Fatal(err)
	}
	c, err := query.Open(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	return c, st
}

func month(s string) formats.Month {
	m, _ := formats.ParseMonth(s)
	return m
}

func TestQueryCSV(t *testing.T) {
	c, _ := combined(t)
	tests := []struct {
		name string
		req  query.Request
		want string
	}{
		{"by month", query.Request{Measures: []string{formats.Admissions}, By: []string{query.ByMonth}}, `month,measure,count,lower,upper,estimate,status,list_size,rate_per_1000,rate_lower,rate_upper,practices
2024-01,admissions,30,27,41,34.0,partial,350,97.143,77.143,117.143,2
2024-02,admissions,30,28,32,30.0,rounded,0,,,,1
`},
		{"by practice", query.Request{Measures: []string{formats.Admissions}, From: month("2024-01"), To: month("2024-01"), By: []string{query.ByPractice}},
			`month,measure,practice,count,lower,upper,estimate,status,list_size,rate_per_1000,rate_lower,rate_upper,practices
2024-01,admissions,A81001,10,9,19,14.0,partial,300,46.667,30.000,63.333,1
2024-01,admissions,B82002,20,18,22,20.0,rounded,50,400.000,360.000,440.000,1
`},
		{"suppressed practice cell", query.Request{Measures: []string{formats.Admissions}, From: month("2024-01"), To: month("2024-01"),
			By: []string{query.ByPractice, query.ByAgeBand, query.BySex}}, ""},
		{"list size", query.Request{Measures: []string{formats.RegisteredPatients}, By: []string{query.BySex}},
			`month,measure,sex,count,lower,upper,estimate,status,list_size,rate_per_1000,rate_lower,rate_upper,practices
2024-01,registered_patients,female,150,146,154,150.0,rounded,150,1000.000,973.333,1026.667,2
2024-01,registered_patients,male,200,198,202,200.0,rounded,200,1000.000,990.000,1010.000,2
2024-01,registered_patients,unknown,0,0,0,0.0,rounded,0,,,,2
`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := c.Run(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := res.Write(&buf, query.FormatCSV); err != nil {
				t.Fatal(err)
			}
			if tc.want != "" && buf.String() != tc.want {
				t.Errorf("got\n%s\nwant\n%s", buf.String(), tc.want)
			}
			if tc.name == "suppressed practice cell" {
				line := "2024-01,admissions,A81001,5-9,male,,1,7,,suppressed,200,,5.000,35.000,1"
				if !strings.Contains(buf.String(), line+"\n") {
					t.Errorf("no line %q in\n%s", line, buf.String())
				}
			}
		})
	}
}

func TestQueryFormats(t *testing.T) {
	c, _ := combined(t)
	res, err := c.Run(context.Background(), query.Request{Measures: []string{formats.Admissions}, By: []string{query.ByAgeBand}})
	if err != nil {
		t.Fatal(err)
	}
	var js bytes.Buffer
	if err := res.Write(&js, query.FormatJSON); err != nil {
		t.Fatal(err)
	}
	var back query.Result
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Rows) != 2*len(formats.AgeBands) || back.Combined == "" {
		t.Fatalf("%d JSON rows (combined %q), want %d", len(back.Rows), back.Combined, 2*len(formats.AgeBands))
	}
	// 5-9 in January is A's suppressed cell alone: withheld, with its bounds.
	r := back.Rows[1]
	if r.AgeBand != "5-9" || r.Count != nil || r.Status != formats.StatusSuppressed || r.Lower != 1 || r.Upper != 7 {
		t.Errorf("JSON row %+v, want 5-9 suppressed 1-7 with a null count", r)
	}
	var tbl bytes.Buffer
	if err := res.Write(&tbl, query.FormatTable); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(tbl.String(), "\n"), "\n")
	if len(lines) != 1+len(back.Rows) || !strings.Contains(lines[0], "month") || !strings.Contains(lines[0], "age_band") {
		t.Errorf("table:\n%s", tbl.String())
	}
	if !strings.Contains(lines[2], "suppressed") || !strings.Contains(lines[2], " - ") {
		t.Errorf("table row for the suppressed cell: %q", lines[2])
	}
	if err := res.Write(&tbl, "xml"); err == nil || !strings.Contains(err.Error(), "table, csv, json") {
		t.Errorf("unknown format: %v", err)
	}
}

func TestQueryErrors(t *testing.T) {
	c, _ := combined(t)
	tests := []struct {
		req  query.Request
		want string
	}{
		{query.Request{Measures: []string{"admisions"}}, "choose one of: registered_patients, consultations"},
		{query.Request{By: []string{"region"}}, "choose from: month, age_band, sex, practice"},
		{query.Request{From: month("2024-03"), To: month("2024-01")}, "give the earlier month first"},
	}
	for _, tc := range tests {
		_, err := c.Run(context.Background(), tc.req)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one containing %q", tc.req, err, tc.want)
		}
	}
	empty, err := objstore.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := query.Open(context.Background(), empty); !errors.Is(err, query.ErrNotCombined) {
		t.Errorf("empty store: %v", err)
	}
}
