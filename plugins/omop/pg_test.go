package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/plugins/sdk"
	"github.com/tributary-health/tributary/plugins/sdk/sdktest"
)

const testSalt = "omop test salt"

// testRanges are the month ranges every comparison runs over: everything, a year and a half
// with many stays, and one month.
var testRanges = [][2]string{{"1900-01", "2030-12"}, {"2015-01", "2016-06"}, {"2019-03", "2019-03"}}

// testCase is a schema read with a vocabulary schema (its own when empty); variant-novocab
// reads variant with nj's empty concept_ancestor, so only the root concepts map and the
// admitted-from rule must know 8870 without the vocabulary.
type testCase struct{ name, schema, vocab string }

var testCases = []testCase{{"nj", "nj", ""}, {"gibleed", "gibleed", ""}, {"variant", "variant", ""}, {"variant-novocab", "variant", "nj"}}

func month(t testing.TB, s string) formats.Month {
	t.Helper()
	m, err := formats.ParseMonth(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// pgConfig is the configuration that reads schema through the read-only role.
func (f *fixture) pgConfig(schema string) map[string]string {
	return map[string]string{keyDatabaseURL: f.readOnly, keySchema: schema, keyKeySalt: testSalt}
}

func (f *fixture) caseConfig(tc testCase) map[string]string {
	c := f.pgConfig(tc.schema)
	if tc.vocab != "" {
		c[keyVocabularySchema] = tc.vocab
	}
	return c
}

func (f *fixture) csvConfig(name string) map[string]string {
	return map[string]string{keyDir: f.schemaDir(name), keyKeySalt: testSalt}
}

// refKey is the README's patient key, computed again: HMAC-SHA256 of "omop person", a zero
// byte and the person_id, keyed with the salt, 16 bytes in base64url.
func refKey(id string) string {
	m := hmac.New(sha256.New, []byte(testSalt))
	m.Write([]byte("omop person\x00" + id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// reference is the README's mapping run as SQL directly on the database: it shares no code
// with the extractor.
type reference struct {
	regs, events map[string]int
	orphans      int64    // observation periods in the months of persons not in PERSON
	kinds        []string // event kinds the table's concepts map to
	recorded     bool     // some admission is a 262 or records where it was admitted from
}

func dayParam(m formats.Month) time.Time { return m.Start() }

func refRead(t testing.TB, c *pgx.Conn, tc testCase, version string, from, to formats.Month) reference {
	t.Helper()
	ctx := context.Background()
	s := func(table string) string {
		if (table == "concept_ancestor" || table == "concept") && tc.vocab != "" {
			return tc.vocab + "." + table
		}
		return tc.schema + "." + table
	}
	af := "admitted_from_concept_id"
	if version == version53 {
		af = "admitting_source_concept_id"
	}
	lo, hi := dayParam(from), dayParam(to+1)
	ref := reference{regs: map[string]int{}, events: map[string]int{}}

	rows, err := c.Query(ctx, `
		WITH r AS (
			SELECT op.person_id::text AS id,
			       CASE p.gender_concept_id WHEN 8532 THEN 'female' WHEN 8507 THEN 'male' ELSE 'unknown' END AS sex,
			       CASE WHEN p.month_of_birth BETWEEN 1 AND 12 THEN make_date(p.year_of_birth, p.month_of_birth, 1)
			            WHEN extract(year FROM p.birth_datetime) = p.year_of_birth THEN date_trunc('month', p.birth_datetime)::date
			            ELSE least(make_date(p.year_of_birth, 7, 1), date_trunc('month', op.observation_period_start_date)::date)
			       END AS birth,
			       op.observation_period_start_date AS f, op.observation_period_end_date + 1 AS t
			FROM `+s("observation_period")+` op JOIN `+s("person")+` p ON p.person_id = op.person_id
			WHERE op.observation_period_start_date < $2
			  AND (op.observation_period_end_date IS NULL OR op.observation_period_end_date >= $1))
		SELECT id, sex, to_char(birth, 'YYYY-MM'), to_char(f, 'YYYY-MM-DD'), coalesce(to_char(t, 'YYYY-MM-DD'), 'open')
		FROM r WHERE birth <= f + interval '1 month'`, lo, hi)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, sex, birth, f, to string
		if err := rows.Scan(&id, &sex, &birth, &f, &to); err != nil {
			t.Fatal(err)
		}
		ref.regs[strings.Join([]string{refKey(id), sex, birth, f, to}, " ")]++
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	if err := c.QueryRow(ctx, `SELECT count(*) FROM `+s("observation_period")+` op
		WHERE NOT EXISTS (SELECT 1 FROM `+s("person")+` p WHERE p.person_id = op.person_id)
		  AND op.observation_period_start_date < $2
		  AND (op.observation_period_end_date IS NULL OR op.observation_period_end_date >= $1)`, lo, hi).Scan(&ref.orphans); err != nil {
		t.Fatal(err)
	}

	// Each visit's flags: the concept is a root, or descends from one in concept_ancestor.
	under := func(roots string) string {
		return `(v.visit_concept_id IN (` + roots + `) OR EXISTS (SELECT 1 FROM ` + s("concept_ancestor") +
			` ca WHERE ca.ancestor_concept_id IN (` + roots + `) AND ca.descendant_concept_id = v.visit_concept_id))`
	}
	// The primary diagnosis of each visit, ranked by row_number over its SNOMED conditions.
	dx := `SELECT NULL::integer AS visit_occurrence_id, NULL::text AS concept_code WHERE false`
	var hasConditions bool
	if err := c.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", s("condition_occurrence")).Scan(&hasConditions); err != nil {
		t.Fatal(err)
	}
	if hasConditions {
		dx = `SELECT visit_occurrence_id, concept_code FROM (
			SELECT co.visit_occurrence_id, c.concept_code, row_number() OVER (PARTITION BY co.visit_occurrence_id ORDER BY
			       CASE WHEN co.condition_status_concept_id = 32902 THEN 0
			            WHEN co.condition_status_concept_id = 32901
			              OR co.condition_type_concept_id IN (44786627, 38000183, 38000199, 38000215, 38000230) THEN 1
			            ELSE 2 END, co.condition_start_date NULLS LAST, co.condition_occurrence_id) AS n
			FROM ` + s("condition_occurrence") + ` co JOIN ` + s("concept") + ` c ON c.concept_id = co.condition_concept_id
			WHERE c.vocabulary_id = 'SNOMED' AND c.standard_concept = 'S') x WHERE n = 1`
	}
	kinds := `
		WITH dx AS (` + dx + `),
		v AS (
			SELECT v.person_id::text AS id, v.visit_start_date AS st, v.visit_end_date AS en, coalesce(v.` + af + `, 0) AS af,
			       coalesce(dx.concept_code, '-') AS code,
			       p.person_id IS NOT NULL AS known,
			       ` + under("581477") + ` AS cons, ` + under("262") + ` AS erip, ` + under("9203") + ` AS er,
			       ` + under("9201") + ` AS ip, ` + under("9202") + ` AS op
			FROM ` + s("visit_occurrence") + ` v LEFT JOIN ` + s("person") + ` p ON p.person_id = v.person_id
			LEFT JOIN dx ON dx.visit_occurrence_id = v.visit_occurrence_id),
		k AS (
			SELECT *, CASE WHEN cons THEN 'consultation' WHEN erip OR (er AND ip) THEN 'erip'
			               WHEN er THEN 'ae_attendance' WHEN ip THEN 'admission' WHEN op THEN 'outpatient_attendance' END AS kind
			FROM v)`
	rows, err = c.Query(ctx, kinds+`
		SELECT id, 'ae_attendance', '-', st, NULL::date, code FROM k WHERE known AND kind = 'erip' AND st >= $1 AND st < $2
		UNION ALL
		SELECT id, 'admission',
		       CASE WHEN kind = 'erip' OR af IN (9203, 262, 8870) OR EXISTS (SELECT 1 FROM `+s("concept_ancestor")+` ca
		                 WHERE ca.ancestor_concept_id IN (9203, 262) AND ca.descendant_concept_id = af)
		            THEN 'emergency' ELSE 'unknown' END, st, en, code
		FROM k WHERE known AND kind IN ('erip', 'admission') AND ((st >= $1 AND st < $2) OR (en >= $1 AND en < $2))
		UNION ALL
		SELECT id, kind, '-', st, NULL, code FROM k
		WHERE known AND kind IN ('consultation', 'ae_attendance', 'outpatient_attendance') AND st >= $1 AND st < $2`, lo, hi)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, kind, method, code string
		var st time.Time
		var en *time.Time
		if err := rows.Scan(&id, &kind, &method, &st, &en, &code); err != nil {
			t.Fatal(err)
		}
		end := "-"
		if en != nil {
			end = en.Format(time.DateOnly)
		}
		ref.events[strings.Join([]string{refKey(id), kind, method, st.Format(time.DateOnly), end, code}, " ")]++
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	rows, err = c.Query(ctx, kinds+`
		SELECT DISTINCT x FROM k, unnest(CASE kind WHEN 'erip' THEN ARRAY['ae_attendance', 'admission'] ELSE ARRAY[kind] END) x
		WHERE kind IS NOT NULL ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	if ref.kinds, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	if err := c.QueryRow(ctx, kinds+`SELECT EXISTS (SELECT 1 FROM k WHERE kind = 'erip' OR (kind = 'admission' AND af <> 0))`).Scan(&ref.recorded); err != nil {
		t.Fatal(err)
	}
	return ref
}

func regCounts(rec *sdktest.Recording) map[string]int {
	m := map[string]int{}
	for _, r := range rec.Registrations {
		to := "open"
		if r.To != formats.NoEnd {
			to = r.To.String()
		}
		m[strings.Join([]string{r.PatientKey, r.Sex, r.BirthMonth.String(), r.From.String(), to}, " ")]++
	}
	return m
}

func eventCounts(rec *sdktest.Recording) map[string]int {
	m := map[string]int{}
	for _, e := range rec.Events {
		method, end := "-", "-"
		if e.Method != "" {
			method = e.Method
		}
		if e.End != formats.NoEnd {
			end = e.End.String()
		}
		code := "-"
		if e.DiagnosisCode != "" {
			code = e.DiagnosisCode
			if e.DiagnosisSystem != formats.DiagnosisSNOMED {
				code += "/" + e.DiagnosisSystem
			}
		}
		m[strings.Join([]string{e.PatientKey, e.Kind, method, e.Start.String(), end, code}, " ")]++
	}
	return m
}

// diff lists the keys whose counts differ, at most 20 of them.
func diff(got, want map[string]int) []string {
	var out []string
	for k, w := range want {
		if got[k] != w {
			out = append(out, fmt.Sprintf("%s: got %d, want %d", k, got[k], w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			out = append(out, fmt.Sprintf("%s: got %d, want 0", k, g))
		}
	}
	sort.Strings(out)
	if len(out) > 20 {
		out = append(out[:20], "...")
	}
	return out
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func versionOfSchema(schema string) string {
	if schema == "gibleed" {
		return version53
	}
	return version54
}

// TestPostgresMatchesReference compares what the extractor sends, reading PostgreSQL through
// a role that may only SELECT, with the README's mapping run as SQL on the same database.
func TestPostgresMatchesReference(t *testing.T) {
	f := cdm(t)
	for _, tc := range testCases {
		for _, rg := range testRanges {
			t.Run(tc.name+"/"+rg[0]+"_"+rg[1], func(t *testing.T) {
				from, to := month(t, rg[0]), month(t, rg[1])
				rec, err := sdktest.Run(context.Background(), Extractor{}, sdk.Request{From: from, To: to, Config: f.caseConfig(tc)})
				if err != nil {
					t.Fatal(err)
				}
				ref := refRead(t, f.admin, tc, versionOfSchema(tc.schema), from, to)
				if d := diff(regCounts(rec), ref.regs); len(d) > 0 {
					t.Errorf("registrations differ from the SQL reference:\n%s", strings.Join(d, "\n"))
				}
				if d := diff(eventCounts(rec), ref.events); len(d) > 0 {
					t.Errorf("events differ from the SQL reference:\n%s", strings.Join(d, "\n"))
				}
				if got := orphansLogged(rec.Log); got != ref.orphans {
					t.Errorf("observation periods of persons not in person: the log says %d, the reference counts %d\nlog:\n%s", got, ref.orphans, rec.Log)
				}
				if !slices.Equal(sorted(rec.Supplies.EventKinds), ref.kinds) || rec.Supplies.Methods != ref.recorded {
					t.Errorf("supplies %v, methods %v; the reference's kinds %v, methods %v", rec.Supplies.EventKinds, rec.Supplies.Methods, ref.kinds, ref.recorded)
				}
				if n := rec.Stats.TotalSkipped(); n != 0 {
					t.Errorf("skipped %d rows: %s", n, rec.Stats.SkippedSummary())
				}
				if u := rec.Uncounted(); len(u) > 0 {
					t.Errorf("%d events the agent will not count were sent", len(u))
				}
				if rg[0] == "1900-01" && (len(rec.Events) == 0 || len(rec.Registrations) == 0) {
					t.Errorf("%d events and %d registrations from the whole set", len(rec.Events), len(rec.Registrations))
				}
				t.Logf("%d registrations, %d events (%v), %d orphan periods: as the SQL reference", total(ref.regs), total(ref.events), rec.EventCounts(), ref.orphans)
			})
		}
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// orphansLogged reads the count of the log line on observation periods of persons not in
// person.
func orphansLogged(log string) int64 {
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "observation periods of persons not in person") {
			continue
		}
		var n int64
		if i := strings.Index(line, "count="); i >= 0 {
			fmt.Sscanf(line[i+len("count="):], "%d", &n)
		}
		return n
	}
	return 0
}

// TestPostgresAndCSVIdentical: the same data read from PostgreSQL and from its CSV files gives
// the same rows, keys included, the same counts and the same log.
func TestPostgresAndCSVIdentical(t *testing.T) {
	f := cdm(t)
	for _, tc := range testCases {
		for _, rg := range testRanges {
			t.Run(tc.name+"/"+rg[0]+"_"+rg[1], func(t *testing.T) {
				from, to := month(t, rg[0]), month(t, rg[1])
				pg, err := sdktest.Run(context.Background(), Extractor{}, sdk.Request{From: from, To: to, Config: f.caseConfig(tc)})
				if err != nil {
					t.Fatal(err)
				}
				cv, err := sdktest.Run(context.Background(), Extractor{}, sdk.Request{From: from, To: to, Config: f.csvConfig(tc.name)})
				if err != nil {
					t.Fatal(err)
				}
				if d := diff(regCounts(cv), regCounts(pg)); len(d) > 0 {
					t.Errorf("registrations from CSV differ from PostgreSQL's:\n%s", strings.Join(d, "\n"))
				}
				if d := diff(eventCounts(cv), eventCounts(pg)); len(d) > 0 {
					t.Errorf("events from CSV differ from PostgreSQL's:\n%s", strings.Join(d, "\n"))
				}
				if fmt.Sprint(pg.Supplies) != fmt.Sprint(cv.Supplies) {
					t.Errorf("supplies: PostgreSQL %+v, CSV %+v", pg.Supplies, cv.Supplies)
				}
				if fmt.Sprint(pg.Stats) != fmt.Sprint(cv.Stats) {
					t.Errorf("stats: PostgreSQL %+v, CSV %+v", pg.Stats, cv.Stats)
				}
				if a, b := logWithoutSource(pg.Log), logWithoutSource(cv.Log); a != b {
					t.Errorf("logs differ:\nPostgreSQL:\n%s\nCSV:\n%s", a, b)
				}
				t.Logf("identical: %d registrations, %d events %v, log %q", len(pg.Registrations), len(pg.Events), pg.EventCounts(), logWithoutSource(pg.Log))
			})
		}
	}
}

func logWithoutSource(log string) string {
	return strings.NewReplacer("source=postgresql", "source=-", "source=csv", "source=-").Replace(log)
}

// TestGiBleedOrphanPeriods: GiBleed has 2,649 observation periods of persons not in PERSON.
// They are counted, said in the log (a count, never a value), and not sent.
func TestGiBleedOrphanPeriods(t *testing.T) {
	f := cdm(t)
	for _, cfg := range []map[string]string{f.pgConfig("gibleed"), f.csvConfig("gibleed")} {
		rec, err := sdktest.Run(context.Background(), Extractor{}, sdk.Request{From: month(t, "1900-01"), To: month(t, "2030-12"), Config: cfg})
		if err != nil {
			t.Fatal(err)
		}
		if got := orphansLogged(rec.Log); got != 2649 {
			t.Errorf("the log says %d observation periods of persons not in person, want 2649:\n%s", got, rec.Log)
		}
		if !strings.Contains(rec.Log, "[WARN]") {
			t.Errorf("the orphan periods are not a warning:\n%s", rec.Log)
		}
		var persons int
		if err := f.admin.QueryRow(context.Background(), "SELECT count(*) FROM gibleed.person").Scan(&persons); err != nil {
			t.Fatal(err)
		}
		keys := map[string]bool{}
		for _, r := range rec.Registrations {
			keys[r.PatientKey] = true
		}
		if len(keys) != persons {
			t.Errorf("registrations of %d persons, PERSON has %d", len(keys), persons)
		}
	}
}

// TestReadOnlyRole: the role the tests read through may not write (the control), and a role
// without SELECT on a table is told which grant it lacks.
func TestReadOnlyRole(t *testing.T) {
	f := cdm(t)
	ro := connect(t, f.readOnly)
	if _, err := ro.Exec(context.Background(), "INSERT INTO nj.person (person_id, gender_concept_id, year_of_birth) VALUES (77777, 8532, 1970)"); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("the read-only role could insert: %v", err)
	}
	if _, err := ro.Exec(context.Background(), "CREATE TABLE nj.scratch (x int)"); err == nil {
		t.Fatal("the read-only role could create a table")
	}
	partial, err := f.db.Role(func(role string) []string {
		return []string{"GRANT USAGE ON SCHEMA nj TO " + role, "GRANT SELECT ON nj.person, nj.observation_period, nj.concept_ancestor TO " + role}
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := f.pgConfig("nj")
	cfg[keyDatabaseURL] = partial
	_, err = sdk.ValidateConfig(Extractor{}, cfg)
	if err == nil || !strings.Contains(err.Error(), "may not read nj.visit_occurrence") || strings.Contains(err.Error(), partial) {
		t.Errorf("a role without SELECT on visit_occurrence: got %v", err)
	}
	cfg = f.pgConfig("no_such_schema")
	if _, err := sdk.ValidateConfig(Extractor{}, cfg); err == nil || !strings.Contains(err.Error(), "schema no_such_schema has no person table") {
		t.Errorf("a wrong schema: got %v", err)
	}
	cfg = f.pgConfig("variant")
	cfg[keyVocabularySchema] = "nj" // nj's concept_ancestor is empty: no descendants
	rec, err := sdktest.Run(context.Background(), Extractor{}, sdk.Request{From: month(t, "1900-01"), To: month(t, "2030-12"), Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rec.Log, "vocabulary=\"not loaded\"") || !strings.Contains(rec.Log, "visit_concept_id_8717=") {
		t.Errorf("with the vocabulary of another schema, descendants should be unmapped:\n%s", rec.Log)
	}
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}
