package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/agent"
	"github.com/tributary-health/tributary/agent/aggregate"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/procstat"
	"github.com/tributary-health/tributary/internal/synthgen"
	"github.com/tributary-health/tributary/internal/testenv"
	"github.com/tributary-health/tributary/plugins/sdk"
)

// countQuery counts a practice's encounters by month × encounter class × age band × sex,
// joining encounters.csv to patients.csv for the age and sex, with the rules by which the
// synthea plugin and the agent count (plugins/synthea/README.md, agent/aggregate): the day is
// START's calendar day in Europe/London; the age is in completed years at that day from the
// first of the birth month (formats.AgeInYears), banded 0-4 … 85-89, 90+; GENDER F and M are
// female and male, anything else unknown; a Death Certification is no contact, and an
// encounter before BIRTHDATE or after DEATHDATE is outside the patient's registration.
// %[1]s and %[2]s are the two files; %[3]s and %[4]s the first days of the first month and of
// the month after the last.
const countQuery = `
WITH p AS (
	SELECT Id, CAST(BIRTHDATE AS DATE) AS birth, CAST(DEATHDATE AS DATE) AS death,
		CASE GENDER WHEN 'F' THEN 'female' WHEN 'M' THEN 'male' ELSE 'unknown' END AS sex
	FROM read_csv('%[1]s', header = true, all_varchar = true)
), e AS (
	SELECT PATIENT, lower(trim(ENCOUNTERCLASS)) AS class, CODE, DESCRIPTION,
		CAST(timezone('Europe/London', CAST(START AS TIMESTAMPTZ)) AS DATE) AS day
	FROM read_csv('%[2]s', header = true, all_varchar = true)
), a AS (
	SELECT e.day, e.class, p.sex,
		year(e.day) - year(p.birth) - CASE WHEN month(e.day) < month(p.birth) THEN 1 ELSE 0 END AS age
	FROM e JOIN p ON e.PATIENT = p.Id
	WHERE e.day >= DATE '%[3]s' AND e.day < DATE '%[4]s'
		AND e.day >= p.birth AND (p.death IS NULL OR e.day <= p.death)
		AND NOT (e.CODE = '308646001' OR e.DESCRIPTION = 'Death Certification')
)
SELECT strftime(day, '%%Y-%%m') AS month, class, least(age // 5, 18) AS band, sex, count(*) AS n
FROM a GROUP BY ALL`

// duckKey is one of countQuery's groups.
type duckKey struct {
	month, class, sex string
	band              int
}

// duckCounts runs countQuery on the practice in dir and returns every group's count.
func duckCounts(ctx context.Context, tb testing.TB, db *sql.DB, dir string) map[duckKey]int64 {
	tb.Helper()
	q := fmt.Sprintf(countQuery, filepath.ToSlash(filepath.Join(dir, "patients.csv")), filepath.ToSlash(filepath.Join(dir, "encounters.csv")),
		benchFrom.Start().Format(time.DateOnly), (benchTo + 1).Start().Format(time.DateOnly))
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	out := map[duckKey]int64{}
	for rows.Next() {
		var k duckKey
		var n int64
		if err := rows.Scan(&k.month, &k.class, &k.band, &k.sex, &n); err != nil {
			tb.Fatal(err)
		}
		out[k] = n
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// classMeasure is the measure each Synthea encounter class counts in under the synthea
// plugin's defaults (plugins/synthea/README.md, "Encounter classes to event kinds").
var classMeasure = map[string]string{
	synthgen.ClassAmbulatory: formats.Consultations,
	synthgen.ClassWellness:   formats.Consultations,
	synthgen.ClassVirtual:    formats.Consultations,
	synthgen.ClassUrgentCare: formats.Consultations,
	synthgen.ClassOutpatient: formats.OutpatientAttendances,
	synthgen.ClassEmergency:  formats.AEAttendances,
	synthgen.ClassInpatient:  formats.Admissions,
}

// TestDuckDBCountsMatchAgent checks that BenchmarkAgentVsDuckDB compares the same work: for a
// generated practice, DuckDB's groups summed over the classes of each measure equal the
// agent's true counts (before disclosure control) of consultations, outpatient and A&E
// attendances and admissions in every month × age band × sex of ten years, and the agent's
// published cells are DuckDB's counts under the policy.
func TestDuckDBCountsMatchAgent(t *testing.T) {
	ctx := context.Background()
	plugin := testenv.Binary(t, "github.com/tributary-health/tributary/plugins/synthea")
	data := filepath.Join(t.TempDir(), "P001")
	st, err := synthgen.Write(data, synthgen.Config{Seed: 29, Patients: 1500, Rates: synthgen.EnglandRates})
	if err != nil {
		t.Fatal(err)
	}
	var res *aggregate.Result
	rep, _ := runAgent(ctx, t, plugin, data, t.TempDir(), "P001", func(r *aggregate.Result) { res = r })
	if res == nil {
		t.Fatal("the agent's run did not show its counts")
	}

	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	want := map[string]int64{} // measure month band sex -> DuckDB's count
	var classes, total int64
	for k, n := range duckCounts(ctx, t, db, data) {
		m, ok := classMeasure[k.class]
		if !ok {
			continue // hospice and snf count in no measure
		}
		want[strings.Join([]string{m, k.month, formats.AgeBands[k.band], k.sex}, " ")] += n
		classes += n
	}
	measures := []string{formats.Consultations, formats.OutpatientAttendances, formats.AEAttendances, formats.Admissions}
	var cells int
	for _, m := range measures {
		for month := benchFrom; month <= benchTo; month++ {
			for _, band := range formats.AgeBands {
				for _, sex := range []string{"female", "male", "unknown"} {
					key := strings.Join([]string{m, month.String(), band, sex}, " ")
					got := res.Count(month, m, band, sex)
					if got != want[key] {
						t.Errorf("%s: the agent counted %d, DuckDB %d", key, got, want[key])
					}
					total += got
					if got > 0 {
						cells++
					}
				}
			}
		}
	}
	if total != classes || total == 0 {
		t.Errorf("the agent counted %d events in the four measures, DuckDB %d", total, classes)
	}
	t.Logf("%d encounters; %d counted in %d cells of four measures, the same in the agent and in DuckDB (%d events sent by the plugin)",
		st.Encounters, total, cells, rep.Plugins[0].Events)
}

// peakSource is an agent.Source that notes its plugin process's peak RSS and CPU seconds
// when it closes.
type peakSource struct {
	agent.Source
	exe string
	use *measured
}

// Supplies and Skipped pass on what the host source says, so that the agent sees the same
// source through the wrapper.
func (s *peakSource) Supplies(ctx context.Context, config map[string]string) (sdk.Supplies, error) {
	return s.Source.(agent.SupplySource).Supplies(ctx, config)
}

func (s *peakSource) Skipped() map[string]int64 { return s.Source.(agent.SkipReporter).Skipped() }

func (s *peakSource) Close() error {
	if pid := procstat.Child(os.Getpid(), s.exe); pid > 0 {
		s.use.peak = max(s.use.peak, float64(procstat.PeakRSS(pid)))
		s.use.cpu += procstat.CPUSeconds(pid)
	}
	return s.Source.Close()
}
