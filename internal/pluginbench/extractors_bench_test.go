package pluginbench_test

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/pgtest"
	"github.com/tributary-health/tributary/internal/pluginbench"
	"github.com/tributary-health/tributary/internal/testenv"
	"github.com/tributary-health/tributary/plugins/sdk"
)

// BenchmarkExtractors streams one generated practice of about a million encounters through
// every extractor's real plugin binary, through the real host (go-plugin, gRPC, the host's
// contract checks on every batch), each reading the practice in its own shape, and prints
// events per CPU-second of the plugin process and the plugin's peak RSS, with the Synthea
// extractor first and every other's CPU per event against it:
//
//	go test -run '^$' -bench BenchmarkExtractors -benchtime 3x -timeout 60m ./internal/pluginbench/
//
// synthea reads the Synthea CSV; fhir the same practice as bulk NDJSON, plain and gzip; omop
// as OMOP CDM CSV files and, when a PostgreSQL server is named by TRIBUTARY_TEST_PG_URL (bash
// .ci/postgres.sh start), loaded into it; csv the Synthea CSV through a configuration, as a
// practice's own export; ukgp as ehrQL's tables, consultations from clinical_events as patient
// days. TRIBUTARY_BENCH_ENCOUNTERS (default 1000000) and
// TRIBUTARY_BENCH_PATIENTS (default 17241) set the size; the inputs are kept between runs (see
// pluginbench.Generate).
func BenchmarkExtractors(b *testing.B) {
	encounters := testenv.EnvInt(b, "TRIBUTARY_BENCH_ENCOUNTERS", 1000000)
	patients := testenv.EnvInt(b, "TRIBUTARY_BENCH_PATIENTS", 17241)
	p := pluginbench.Generate(b, encounters, patients)
	req := func(c map[string]string) sdk.Request {
		c["key_salt"] = "bench"
		return sdk.Request{From: formats.MonthFor(2015, 1), To: formats.MonthFor(2025, 1), Config: c}
	}
	var table pluginbench.Table
	run := func(name, pkg string, config func(b *testing.B) map[string]string) {
		b.Run(name, func(b *testing.B) {
			bin := testenv.Binary(b, pkg)
			table.Add(pluginbench.Host(b, name, bin, req(config(b))))
		})
	}
	run("synthea, Synthea CSV", "./plugins/synthea", func(*testing.B) map[string]string { return map[string]string{"dir": p.CSV} })
	run("fhir, bulk NDJSON", "./plugins/fhir", func(*testing.B) map[string]string { return map[string]string{"dir": p.FHIR} })
	run("fhir, bulk NDJSON.gz", "./plugins/fhir", func(*testing.B) map[string]string { return map[string]string{"dir": p.FHIRGz} })
	run("omop, CDM CSV folder", "./plugins/omop", func(*testing.B) map[string]string { return map[string]string{"dir": p.OMOP} })
	run("omop, PostgreSQL", "./plugins/omop", func(b *testing.B) map[string]string {
		return map[string]string{"database_url": loadOMOP(b, p.OMOP), "schema": "cdm"}
	})
	run("csv, configured on Synthea CSV", "./plugins/csv", func(*testing.B) map[string]string {
		return map[string]string{
			"dir": p.CSV, "patients_file": "patients.csv", "events_file": "encounters.csv",
			"date_format": "YYYY-MM-DD", "patient_column": "Id", "sex_column": "GENDER", "birth_date_column": "BIRTHDATE",
			"registered_from_column": "BIRTHDATE", "registered_to_column": "DEATHDATE", "event_patient_column": "PATIENT",
			"event_date_column": "START", "event_end_column": "STOP", "event_type_column": "ENCOUNTERCLASS",
			"kinds":          "ambulatory=consultation; wellness=consultation; virtual=consultation; urgentcare=consultation; outpatient=outpatient_attendance; emergency=ae_attendance; inpatient=admission",
			"unmapped_types": "ignore", "diagnosis_column": "REASONCODE", "diagnosis_system": "snomedct",
		}
	})
	run("ukgp, ehrQL tables", "./plugins/ukgp", func(*testing.B) map[string]string {
		return map[string]string{"dir": p.UKGP, "practice_code": "1", "clinical_events": "patient_days"}
	})
	fmt.Printf("BenchmarkExtractors: %d encounters of %d patients, 2015-01 to 2025-01, through the real host:\n%s", encounters, patients, table.String())
}

// loadOMOP loads the OMOP CSV folder into schema cdm of a database of its own on the test
// server, with the OHDSI DDL's indexes on the dates the extractor filters on, and returns the
// URL of a role that may only read it.
func loadOMOP(b *testing.B, dir string) string {
	b.Helper()
	pgtest.URL(b) // skips without a server
	db := pgtest.NewTestDatabase(b)
	ctx := context.Background()
	c := pgtest.Connect(b, db.AdminURL)
	pgtest.Exec(b, c, "CREATE SCHEMA cdm")
	for _, table := range []string{"person", "observation_period", "visit_occurrence", "condition_occurrence", "concept"} {
		if err := copyTable(ctx, c, table, filepath.Join(dir, table+".csv")); err != nil {
			b.Fatal(err)
		}
	}
	pgtest.Exec(b, c,
		"CREATE INDEX ON cdm.visit_occurrence (visit_start_date)",
		"CREATE INDEX ON cdm.visit_occurrence (visit_occurrence_id)",
		"CREATE INDEX ON cdm.observation_period (observation_period_start_date)",
		"CREATE INDEX ON cdm.condition_occurrence (visit_occurrence_id)",
		"CREATE INDEX ON cdm.concept (concept_id)",
		"ANALYZE")
	u, err := db.ReadOnlyRole("cdm")
	if err != nil {
		b.Fatal(err)
	}
	return u
}

// copyTable creates cdm.table with the file's columns, typed as the OHDSI DDL types them, and
// loads it with COPY.
func copyTable(ctx context.Context, c *pgx.Conn, table, path string) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	header, err := csv.NewReader(bufio.NewReader(fh)).Read()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var defs []string
	for _, h := range header {
		typ := "varchar(255)"
		switch {
		case h == "domain_id", h == "vocabulary_id", h == "concept_class_id":
			typ = "varchar(20)"
		case strings.HasSuffix(h, "_datetime"):
			typ = "timestamp"
		case strings.HasSuffix(h, "_date"):
			typ = "date"
		case strings.HasSuffix(h, "_id"), strings.HasSuffix(h, "_of_birth"):
			typ = "bigint"
		}
		defs = append(defs, h+" "+typ)
	}
	name := "cdm." + table
	if _, err := c.Exec(ctx, "CREATE TABLE "+name+" ("+strings.Join(defs, ", ")+")"); err != nil {
		return err
	}
	if _, err := fh.Seek(0, 0); err != nil {
		return err
	}
	if _, err := c.PgConn().CopyFrom(ctx, fh, "COPY "+name+" FROM STDIN WITH (FORMAT csv, HEADER true)"); err != nil {
		return fmt.Errorf("COPY %s: %w", name, err)
	}
	return nil
}
