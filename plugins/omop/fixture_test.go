package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tributary-health/tributary/internal/pgtest"
	"github.com/tributary-health/tributary/internal/testenv"
)

// The shared Eunomia sets, loaded into one PostgreSQL database per test process (by COPY from
// their CSV files) and read by the extractor through a role that may only SELECT:
//
//   - nj: Synthea27Nj, CDM 5.4 (lower-case columns);
//   - gibleed: GiBleed, CDM 5.3.1 (upper-case columns; observation periods of persons not in
//     PERSON);
//   - variant: nj with every mapping rule the shared sets do not exercise put in by UPDATE and
//     INSERT (visits 262 and 581477, admitted-from emergency rooms, descendants through
//     concept_ancestor, unmapped concepts, a visit of a person not in PERSON, open and
//     unusual periods, missing birth months), dumped to a folder of lower-case CSV files for
//     the CSV reader.
const (
	setNJ      = "omop_eunomia_synthea27nj/cdm54"
	setGiBleed = "omop_eunomia_gibleed/cdm531"
)

var loadedTables = []string{"person", "observation_period", "visit_occurrence", "concept_ancestor", "concept", "condition_occurrence"}

type fixture struct {
	db         *pgtest.Database
	admin      *pgx.Conn // superuser connection to the database, for the reference queries
	readOnly   string    // URL of a role with USAGE and SELECT only
	variantDir string    // CSV dump of schema variant
	dirs       map[string]string
}

var (
	fixtureOnce sync.Once
	fixtureData *fixture
	fixtureErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureData != nil {
		fixtureData.admin.Close(context.Background())
		if err := fixtureData.db.Drop(); err != nil {
			fmt.Fprintln(os.Stderr, "drop the test database:", err)
		}
		os.RemoveAll(fixtureData.variantDir)
	}
	os.Exit(code)
}

// cdm returns the loaded database, loading it on first use.
func cdm(t testing.TB) *fixture {
	t.Helper()
	admin := pgtest.URL(t)
	nj, gb := testenv.SharedData(t, setNJ), testenv.SharedData(t, setGiBleed)
	fixtureOnce.Do(func() { fixtureData, fixtureErr = loadFixture(admin, nj, gb) })
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	return fixtureData
}

// schemaDir is the CSV folder holding the same data as a schema.
func (f *fixture) schemaDir(schema string) string { return f.dirs[schema] }

func loadFixture(adminURL, njDir, gbDir string) (*fixture, error) {
	ctx := context.Background()
	db, err := pgtest.NewDatabase(adminURL)
	if err != nil {
		return nil, err
	}
	f := &fixture{db: db, dirs: map[string]string{"nj": njDir, "gibleed": gbDir}}
	fail := func(err error) (*fixture, error) {
		if f.admin != nil {
			f.admin.Close(ctx)
		}
		db.Drop()
		return nil, err
	}
	if f.admin, err = pgx.Connect(ctx, db.AdminURL); err != nil {
		return fail(err)
	}
	for schema, dir := range map[string]string{"nj": njDir, "gibleed": gbDir} {
		if _, err := f.admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
			return fail(err)
		}
		for _, table := range loadedTables {
			if err := copyTable(ctx, f.admin, schema, table, dir); err != nil {
				return fail(err)
			}
		}
		// As the OHDSI DDL's indexes: the reference queries look descendants up by ancestor.
		if _, err := f.admin.Exec(ctx, "CREATE INDEX ON "+schema+".concept_ancestor (ancestor_concept_id, descendant_concept_id)"); err != nil {
			return fail(err)
		}
	}
	if err := makeVariant(ctx, f.admin); err != nil {
		return fail(err)
	}
	if _, err := f.admin.Exec(ctx, "CREATE INDEX ON variant.concept_ancestor (ancestor_concept_id, descendant_concept_id); ANALYZE"); err != nil {
		return fail(err)
	}
	if f.variantDir, err = os.MkdirTemp("", "tributary-omop-variant-"); err != nil {
		return fail(err)
	}
	f.dirs["variant"] = f.variantDir
	for _, table := range loadedTables {
		if err := dumpTable(ctx, f.admin, "variant", table, filepath.Join(f.variantDir, table+".csv")); err != nil {
			return fail(err)
		}
	}
	// variant without its vocabulary, as a CSV folder: the same files but concept_ancestor.
	novocab := filepath.Join(f.variantDir, "novocab")
	if err := os.Mkdir(novocab, 0o755); err != nil {
		return fail(err)
	}
	for _, table := range loadedTables {
		if table != "concept_ancestor" {
			if err := os.Symlink(filepath.Join(f.variantDir, table+".csv"), filepath.Join(novocab, table+".csv")); err != nil {
				return fail(err)
			}
		}
	}
	f.dirs["variant-novocab"] = novocab
	if f.readOnly, err = db.ReadOnlyRole("nj", "gibleed", "variant"); err != nil {
		return fail(err)
	}
	return f, nil
}

// findFile is dir's file for table, whatever the case of its name.
func findFile(dir, table string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if strings.EqualFold(e.Name(), table+".csv") {
			return filepath.Join(dir, e.Name()), nil
		}
	}
	return "", os.ErrNotExist
}

// columnType types a CDM column by its name, as the OHDSI DDL does: ids and concept ids are
// integers (but for the vocabulary's text ids), *_date dates, *_datetime timestamps, the
// birth fields integers, anything else text.
func columnType(col string) string {
	switch {
	case col == "domain_id", col == "vocabulary_id", col == "concept_class_id", col == "relationship_id":
		return "varchar(20)"
	case strings.HasSuffix(col, "_datetime"):
		return "timestamp"
	case strings.HasSuffix(col, "_date"):
		return "date"
	case strings.HasSuffix(col, "_id"), strings.HasSuffix(col, "_of_birth"), strings.HasSuffix(col, "_of_separation"):
		return "integer"
	}
	return "varchar(255)"
}

// copyTable creates schema.table with the columns of the CSV file's header, in lower case
// (GiBleed's are upper case), and loads the file with COPY.
func copyTable(ctx context.Context, c *pgx.Conn, schema, table, dir string) error {
	path, err := findFile(dir, table)
	if os.IsNotExist(err) {
		return nil // GiBleed has no condition_occurrence
	}
	if err != nil {
		return err
	}
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	header, err := csv.NewReader(bufio.NewReader(fh)).Read()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var cols, defs []string
	for _, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		cols = append(cols, h)
		defs = append(defs, h+" "+columnType(h))
	}
	name := pgx.Identifier{schema, table}.Sanitize()
	if _, err := c.Exec(ctx, "CREATE TABLE "+name+" ("+strings.Join(defs, ", ")+")"); err != nil {
		return err
	}
	if _, err := fh.Seek(0, 0); err != nil {
		return err
	}
	_, err = c.PgConn().CopyFrom(ctx, fh, "COPY "+name+" ("+strings.Join(cols, ", ")+") FROM STDIN WITH (FORMAT csv, HEADER true)")
	if err != nil {
		return fmt.Errorf("COPY %s from %s: %w", name, path, err)
	}
	return nil
}

// dumpTable writes schema.table as a CSV file with a header, as a site's export would.
func dumpTable(ctx context.Context, c *pgx.Conn, schema, table, path string) error {
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	_, err = c.PgConn().CopyTo(ctx, fh, "COPY "+pgx.Identifier{schema, table}.Sanitize()+" TO STDOUT WITH (FORMAT csv, HEADER true)")
	return err
}

// makeVariant copies nj into schema variant and puts in the rules the shared data lacks.
func makeVariant(ctx context.Context, c *pgx.Conn) error {
	stmts := []string{"CREATE SCHEMA variant"}
	for _, t := range loadedTables {
		stmts = append(stmts, "CREATE TABLE variant."+t+" AS TABLE nj."+t)
	}
	// Pick visits by id, so the variant is the same on every run.
	nth := func(concept, mod, rem int) string {
		return fmt.Sprintf("visit_occurrence_id IN (SELECT visit_occurrence_id FROM nj.visit_occurrence WHERE visit_concept_id = %d AND visit_occurrence_id %% %d = %d)", concept, mod, rem)
	}
	stmts = append(stmts,
		// The vocabulary, as OMOP's has it: 262 under both 9201 and 9203, Office Visit under
		// Outpatient Visit, and place-of-service concepts under the visit concepts.
		`INSERT INTO variant.concept_ancestor VALUES
			(9201, 262, 1, 1), (9203, 262, 1, 1), (9202, 581477, 1, 1),
			(9201, 8717, 1, 1), (9203, 8870, 1, 1), (9202, 8756, 1, 1), (581477, 38004207, 1, 1),
			(9201, 9201, 0, 0), (9202, 9202, 0, 0), (9203, 9203, 0, 0), (262, 262, 0, 0)`,
		// Emergency admissions: 262, and 9201 admitted from an emergency room.
		"UPDATE variant.visit_occurrence SET visit_concept_id = 262 WHERE "+nth(9201, 3, 0),
		"UPDATE variant.visit_occurrence SET admitted_from_concept_id = 9203 WHERE "+nth(9201, 3, 1),
		"UPDATE variant.visit_occurrence SET admitted_from_concept_id = 8870 WHERE "+nth(9201, 6, 4),
		"UPDATE variant.visit_occurrence SET admitted_from_concept_id = 8717 WHERE "+nth(9201, 6, 5), // another hospital: not ER
		// Descendants: Inpatient Hospital, ER - Hospital, Outpatient Hospital, a clinic under
		// Office Visit.
		"UPDATE variant.visit_occurrence SET visit_concept_id = 8717 WHERE "+nth(9201, 6, 2),
		"UPDATE variant.visit_occurrence SET visit_concept_id = 8870 WHERE "+nth(9203, 4, 0),
		"UPDATE variant.visit_occurrence SET visit_concept_id = 8756 WHERE "+nth(9202, 10, 1),
		// Office visits (consultations) and a clinic under them.
		"UPDATE variant.visit_occurrence SET visit_concept_id = 581477 WHERE "+nth(9202, 3, 0),
		"UPDATE variant.visit_occurrence SET visit_concept_id = 38004207 WHERE "+nth(9202, 10, 4),
		// Concepts no measure counts: Laboratory Visit and no matching concept.
		"UPDATE variant.visit_occurrence SET visit_concept_id = 32036 WHERE "+nth(9202, 20, 7),
		"UPDATE variant.visit_occurrence SET visit_concept_id = 0 WHERE "+nth(9202, 20, 17),
		// A person not in PERSON, with a visit and an observation period.
		`INSERT INTO variant.visit_occurrence (visit_occurrence_id, person_id, visit_concept_id, visit_start_date, visit_end_date)
			VALUES (990001, 9999, 9202, '2015-03-04', '2015-03-04'), (990002, 9999, 9201, '2015-03-04', '2015-03-09')`,
		`INSERT INTO variant.observation_period VALUES (990001, 9999, '2010-01-01', '2020-01-01', 44814724)`,
		// An open observation period, and a person's second, later one.
		`UPDATE variant.observation_period SET observation_period_end_date = NULL WHERE person_id = 2`,
		`INSERT INTO variant.observation_period VALUES (990002, 3, '2023-01-01', '2023-06-30', 44814724)`,
		// Birth months: month missing (birth_datetime's month), both missing (July, or the
		// period's start), and a sex no measure names.
		`UPDATE variant.person SET month_of_birth = NULL WHERE person_id = 4`,
		`UPDATE variant.person SET month_of_birth = NULL, birth_datetime = NULL WHERE person_id IN (5, 6)`,
		`UPDATE variant.person SET gender_concept_id = 8551 WHERE person_id = 7`,
		// Primary diagnoses: by status, by a legacy primary type, and an ICD-10-CM concept
		// (not SNOMED CT) marked primary, which must be passed over.
		`UPDATE variant.condition_occurrence SET condition_status_concept_id = 32902 WHERE condition_occurrence_id % 5 = 0`,
		`UPDATE variant.condition_occurrence SET condition_type_concept_id = 38000199 WHERE condition_occurrence_id % 7 = 3`,
		`INSERT INTO variant.concept (concept_id, concept_name, domain_id, vocabulary_id, concept_class_id, standard_concept, concept_code, valid_start_date, valid_end_date)
			VALUES (45576876, 'Cholera', 'Condition', 'ICD10CM', '3-char nonbill code', NULL, 'A00', '1970-01-01', '2099-12-31')`,
		`INSERT INTO variant.condition_occurrence (condition_occurrence_id, person_id, condition_concept_id, condition_start_date, condition_type_concept_id, condition_status_concept_id, visit_occurrence_id)
			SELECT 990000 + condition_occurrence_id, person_id, 45576876, condition_start_date - 1, 32020, 32902, visit_occurrence_id
			FROM nj.condition_occurrence WHERE condition_occurrence_id % 11 = 0`,
	)
	for _, s := range stmts {
		if _, err := c.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}
