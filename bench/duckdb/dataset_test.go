package duckdb

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/loadgen"
	"github.com/tributary-health/tributary/coordinator/query"
	"github.com/tributary-health/tributary/internal/objstore"
)

// TestDatasetMatchesQuery combines a loadgen federation, then reads the combine's
// month-partitioned Parquet dataset with DuckDB, with no Tributary code, and finds the same
// numbers as query: every month's totals and every month's age band × sex cells, each
// measure's count (null when suppressed), bounds, status, list size and rate.
func TestDatasetMatchesQuery(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	storeDir := filepath.Join(dir, "store")
	st, err := objstore.NewDir(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	const practices, months = 12, 15
	g, err := loadgen.New(loadgen.Options{Practices: practices, Months: months, Seed: 5, Workdir: filepath.Join(dir, "work")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Write(ctx, st); err != nil {
		t.Fatal(err)
	}
	res, err := combine.Run(ctx, st, g.Coordinator().Public().(ed25519.PublicKey), combine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// One file per month, and nothing else, under the output's dataset folder.
	var files int
	for name := range res.Pointer.Objects {
		if strings.HasPrefix(name, combine.DatasetDir) {
			files++
		}
	}
	if files != months {
		t.Fatalf("the pointer names %d dataset files, want %d", files, months)
	}
	glob := filepath.Join(storeDir, filepath.FromSlash(res.Pointer.Prefix+combine.DatasetDir), "*", "*.parquet")

	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c, err := query.Open(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		by    []string
		where string
	}{
		{[]string{query.ByMonth}, "age_band = 'all' AND sex = 'all'"},
		{[]string{query.ByMonth, query.ByAgeBand, query.BySex}, "age_band <> 'all' AND sex <> 'all'"},
	} {
		want, err := c.Run(query.Request{By: tc.by})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		rows, err := db.Query(fmt.Sprintf(`SELECT month, period, measure, age_band, sex, count, lower, upper, status, list_size, rate_per_1000
			FROM read_parquet('%s', hive_partitioning = true) WHERE %s`, glob, tc.where))
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var month, period, measure, band, sex, status string
			var count, listSize sql.NullInt64
			var lower, upper int64
			var rate sql.NullFloat64
			if err := rows.Scan(&month, &period, &measure, &band, &sex, &count, &lower, &upper, &status, &listSize, &rate); err != nil {
				t.Fatal(err)
			}
			if month != period {
				t.Errorf("a row of %s lies in partition month=%s", period, month)
			}
			key := strings.Join([]string{period, measure, band, sex}, " ")
			if len(tc.by) == 1 {
				key = period + " " + measure + "  "
			}
			got[key] = row(count, lower, upper, status, listSize, rate)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if len(want.Rows) == 0 || len(got) != len(want.Rows) {
			t.Fatalf("by %v: DuckDB read %d rows, query gave %d", tc.by, len(got), len(want.Rows))
		}
		for _, f := range want.Rows {
			key := strings.Join([]string{f.Period, f.Measure, f.AgeBand, f.Sex}, " ")
			var count, listSize sql.NullInt64
			var rate sql.NullFloat64
			if f.Count != nil {
				count = sql.NullInt64{Int64: *f.Count, Valid: true}
			}
			if f.ListSize != nil {
				listSize = sql.NullInt64{Int64: *f.ListSize, Valid: true}
			}
			if f.Rate != nil {
				rate = sql.NullFloat64{Float64: *f.Rate, Valid: true}
			}
			if w := row(count, f.Lower, f.Upper, f.Status, listSize, rate); got[key] != w {
				t.Errorf("%s: DuckDB read %q, query says %q", key, got[key], w)
			}
		}
	}
}

func row(count sql.NullInt64, lower, upper int64, status string, list sql.NullInt64, rate sql.NullFloat64) string {
	s := fmt.Sprintf("count %v lower %d upper %d %s list %v", count, lower, upper, status, list)
	if rate.Valid {
		s += fmt.Sprintf(" rate %.6f", rate.Float64)
	}
	return s
}
