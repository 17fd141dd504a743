package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/plugins/sdk"
)

// pgSource reads the CDM from PostgreSQL inside one read-only, repeatable-read transaction,
// so every query of a run sees the same snapshot and nothing can be written: all a role
// needs is USAGE on the schemas and SELECT on person, observation_period, visit_occurrence
// (and concept_ancestor, where it is loaded). Every query streams its rows: the server sends
// them as the extractor reads them, and nothing is held but the row being mapped.
type pgSource struct {
	conn    *pgx.Conn
	tx      pgx.Tx
	schema  string
	vocab   string
	has     map[string]bool // readable tables, by name; the vocabulary's under "vocab."
	version string

	conditionStatus bool // condition_occurrence has condition_status_concept_id
}

// connectTimeout bounds connecting when the URL sets no connect_timeout.
const connectTimeout = 30 * time.Second

func openPostgres(ctx context.Context, cfg config) (*pgSource, error) {
	pc, err := pgx.ParseConfig(cfg.url)
	if err != nil {
		// pgx's parse errors can quote the URL, password included: say what, not which.
		return nil, errors.New("database_url is not a PostgreSQL connection URL pgx can read; write it as postgres://user@host:5432/database?sslmode=require")
	}
	if cfg.passwordFile != "" {
		if pc.Password, err = readPassword(cfg.passwordFile); err != nil {
			return nil, err
		}
	}
	if pc.ConnectTimeout == 0 {
		pc.ConnectTimeout = connectTimeout
	}
	if pc.RuntimeParams == nil {
		pc.RuntimeParams = map[string]string{}
	}
	pc.RuntimeParams["application_name"] = "tributary-omop"
	pc.RuntimeParams["default_transaction_read_only"] = "on"
	conn, err := pgx.ConnectConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to the database of database_url (host %s, database %s, user %s): %s; check the URL, the password and that the server accepts this machine", pc.Host, pc.Database, pc.User, pgReason(err))
	}
	s := &pgSource{conn: conn, schema: cfg.schema, vocab: cfg.vocabSchema}
	if err := s.open(ctx, cfg); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return s, nil
}

// pgReason is a connection or query error without anything the server might echo of the
// query's parameters.
func pgReason(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return fmt.Sprintf("%s (SQLSTATE %s)", pe.Message, pe.Code)
	}
	return err.Error()
}

func (s *pgSource) open(ctx context.Context, cfg config) error {
	tx, err := s.conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("cannot start a read-only transaction: %s", pgReason(err))
	}
	s.tx = tx
	// pg_class and pg_namespace are readable by every role; has_table_privilege says whether
	// this one may read each table, so a missing grant is named rather than failing later.
	rows, err := tx.Query(ctx, `
		SELECT n.nspname = $1, c.relname, has_table_privilege(c.oid, 'SELECT'), has_schema_privilege(n.oid, 'USAGE')
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f')
		  AND ((n.nspname = $1 AND c.relname = ANY($3)) OR (n.nspname = $2 AND c.relname = ANY($4)))`,
		s.schema, s.vocab, []string{tablePerson, tablePeriod, tableVisit, tableCondition}, []string{tableAncestor, tableConcept})
	if err != nil {
		return fmt.Errorf("cannot list the CDM tables: %s", pgReason(err))
	}
	s.has = map[string]bool{}
	var denied []string
	for rows.Next() {
		var cdm, sel, usage bool
		var name string
		if err := rows.Scan(&cdm, &name, &sel, &usage); err != nil {
			rows.Close()
			return fmt.Errorf("cannot list the CDM tables: %s", pgReason(err))
		}
		schema := s.schema
		if !cdm || name == tableAncestor || name == tableConcept {
			name, schema = "vocab."+name, s.vocab
		}
		if !sel || !usage {
			denied = append(denied, schema+"."+strings.TrimPrefix(name, "vocab."))
			continue
		}
		s.has[name] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot list the CDM tables: %s", pgReason(err))
	}
	if len(denied) > 0 {
		return fmt.Errorf("the database role may not read %s; grant it USAGE on the schema and SELECT on the table (GRANT SELECT ON ... TO ...)", strings.Join(denied, ", "))
	}
	if !s.has[tablePerson] {
		return fmt.Errorf("schema %s has no person table; set schema to the schema holding the OMOP CDM tables", s.schema)
	}
	if !s.has[tablePeriod] && !s.has[tableVisit] {
		return fmt.Errorf("schema %s has neither observation_period nor visit_occurrence, so there is nothing to read; set schema to the schema holding the OMOP CDM tables", s.schema)
	}
	s.version = "unknown"
	if s.has[tableVisit] {
		cols, err := s.columns(ctx, tableVisit)
		if err != nil {
			return err
		}
		s.version, err = versionOf(cfg.version, func(c string) bool { return cols[c] }, s.schema+".visit_occurrence")
		if err != nil {
			return err
		}
	}
	if s.has[tableCondition] {
		cols, err := s.columns(ctx, tableCondition)
		if err != nil {
			return err
		}
		s.conditionStatus = cols["condition_status_concept_id"]
	}
	return nil
}

// columns lists a CDM table's columns (pg_attribute is readable by every role).
func (s *pgSource) columns(ctx context.Context, table string) (map[string]bool, error) {
	cols := map[string]bool{}
	rows, err := s.tx.Query(ctx, `
		SELECT a.attname FROM pg_catalog.pg_attribute a
		WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`,
		pgx.Identifier{s.schema, table}.Sanitize())
	if err != nil {
		return nil, fmt.Errorf("cannot list %s's columns: %s", table, pgReason(err))
	}
	defer rows.Close()
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("cannot list %s's columns: %s", table, pgReason(err))
		}
		cols[c] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot list %s's columns: %s", table, pgReason(err))
	}
	return cols, nil
}

func (s *pgSource) Kind() string    { return "postgresql" }
func (s *pgSource) Version() string { return s.version }

func (s *pgSource) Tables() tables {
	return tables{periods: s.has[tablePeriod], visits: s.has[tableVisit],
		diagnoses: s.has[tableCondition] && s.has["vocab."+tableConcept]}
}

func (s *pgSource) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if s.tx != nil {
		s.tx.Rollback(ctx) // read-only: nothing to keep
	}
	return s.conn.Close(ctx)
}

func (s *pgSource) table(name string) string { return pgx.Identifier{s.schema, name}.Sanitize() }

// admittedFrom is the SQL expression of the admitted-from concept, 0 when the version has no
// such column.
func (s *pgSource) admittedFrom() string {
	if s.version == "unknown" {
		return "0::bigint"
	}
	return "coalesce(v." + pgx.Identifier{admittedFromColumn(s.version)}.Sanitize() + ", 0)::bigint"
}

func (s *pgSource) Ancestors(ctx context.Context, ids []int64, fn func(ancestor, descendant int64)) error {
	if !s.has["vocab."+tableAncestor] {
		return nil
	}
	rows, err := s.tx.Query(ctx, `SELECT ancestor_concept_id::bigint, descendant_concept_id::bigint FROM `+
		pgx.Identifier{s.vocab, tableAncestor}.Sanitize()+` WHERE ancestor_concept_id = ANY($1)`, ids)
	if err != nil {
		return fmt.Errorf("cannot read concept_ancestor: %s", pgReason(err))
	}
	defer rows.Close()
	var a, d int64
	for rows.Next() {
		if err := rows.Scan(&a, &d); err != nil {
			return fmt.Errorf("cannot read concept_ancestor: %s", pgReason(err))
		}
		fn(a, d)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot read concept_ancestor: %s", pgReason(err))
	}
	return nil
}

func (s *pgSource) VisitConcepts(ctx context.Context, fn func(concept int64, admittedFrom bool)) error {
	rows, err := s.tx.Query(ctx, `SELECT coalesce(v.visit_concept_id, 0)::bigint, bool_or(`+s.admittedFrom()+` <> 0) FROM `+
		s.table(tableVisit)+` v GROUP BY 1 ORDER BY 1`)
	if err != nil {
		return fmt.Errorf("cannot read visit_occurrence's concepts: %s", pgReason(err))
	}
	defer rows.Close()
	var c int64
	var from bool
	for rows.Next() {
		if err := rows.Scan(&c, &from); err != nil {
			return fmt.Errorf("cannot read visit_occurrence's concepts: %s", pgReason(err))
		}
		fn(c, from)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot read visit_occurrence's concepts: %s", pgReason(err))
	}
	return nil
}

// date turns a scanned date into a formats.Date; ok is false for NULL or ±infinity.
func date(d pgtype.Date) (formats.Date, bool) {
	if !d.Valid || d.InfinityModifier != pgtype.Finite {
		return formats.NoEnd, false
	}
	return formats.DateOf(d.Time), true
}

func (s *pgSource) Periods(ctx context.Context, from, to formats.Date, w *sdk.Writer, fn func(period) error) error {
	rows, err := s.tx.Query(ctx, `
		SELECT op.person_id::text, op.observation_period_start_date::date, op.observation_period_end_date::date,
		       p.person_id IS NOT NULL, coalesce(p.gender_concept_id, 0)::bigint,
		       coalesce(p.year_of_birth, 0)::bigint, coalesce(p.month_of_birth, 0)::bigint, p.birth_datetime::date
		FROM `+s.table(tablePeriod)+` op LEFT JOIN `+s.table(tablePerson)+` p ON p.person_id = op.person_id
		WHERE op.observation_period_start_date < $2
		  AND (op.observation_period_end_date IS NULL OR op.observation_period_end_date >= $1)`,
		pgDate(from), pgDate(to))
	if err != nil {
		return fmt.Errorf("cannot read observation_period: %s", pgReason(err))
	}
	defer rows.Close()
	var (
		id                pgtype.Text
		start, end, birth pgtype.Date
		known             bool
		gender, year, mon int64
	)
	for rows.Next() {
		if err := rows.Scan(&id, &start, &end, &known, &gender, &year, &mon, &birth); err != nil {
			return fmt.Errorf("cannot read observation_period: %s", pgReason(err))
		}
		p := period{personID: id.String, person: person{known: known, gender: gender, year: int(year), birth: formats.NoEnd}}
		var ok bool
		switch {
		case !id.Valid || id.String == "":
			w.Skip(skipPeriodPerson)
			continue
		default:
			if p.start, ok = date(start); !ok {
				w.Skip(skipPeriodStart)
				continue
			}
		}
		p.end, _ = date(end)
		if mon >= 1 && mon <= 12 {
			p.person.month = int(mon)
		}
		if b, ok := date(birth); ok {
			p.person.birth = b
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot read observation_period: %s", pgReason(err))
	}
	return nil
}

func (s *pgSource) Visits(ctx context.Context, from, to formats.Date, w *sdk.Writer, fn func(visit) error) error {
	// The visits of the months, each with its primary diagnosis (source.go's rule) where the
	// CDM has conditions and concepts: the server ranks the conditions of those visits only.
	dx, dxJoin, dxOn := "NULL::text", "", ""
	if s.Tables().diagnoses {
		dxOn = ` LEFT JOIN dx ON dx.visit_occurrence_id = v.visit_occurrence_id`
		status := "NULL::bigint"
		if s.conditionStatus {
			status = "co.condition_status_concept_id"
		}
		dx, dxJoin = "dx.concept_code::text", `,
		dx AS (
			SELECT DISTINCT ON (co.visit_occurrence_id) co.visit_occurrence_id, c.concept_code
			FROM `+s.table(tableCondition)+` co
			JOIN `+pgx.Identifier{s.vocab, tableConcept}.Sanitize()+` c ON c.concept_id = co.condition_concept_id
			WHERE co.visit_occurrence_id IN (SELECT visit_occurrence_id FROM v)
			  AND c.vocabulary_id = 'SNOMED' AND c.standard_concept = 'S'
			ORDER BY co.visit_occurrence_id,
			         CASE WHEN `+status+` = `+fmt.Sprint(statusPrimary)+` THEN 0
			              WHEN `+status+` = `+fmt.Sprint(statusPrimaryAdmission)+`
			                OR co.condition_type_concept_id = ANY($3) THEN 1 ELSE 2 END,
			         co.condition_start_date NULLS LAST, co.condition_occurrence_id)`
	}
	rows, err := s.tx.Query(ctx, `
		WITH v AS (
			SELECT v.visit_occurrence_id, v.person_id, v.visit_concept_id, v.visit_start_date, v.visit_end_date,
			       `+s.admittedFrom()+` AS admitted_from
			FROM `+s.table(tableVisit)+` v
			WHERE (v.visit_start_date >= $1 AND v.visit_start_date < $2)
			   OR (v.visit_end_date >= $1 AND v.visit_end_date < $2))`+dxJoin+`
		SELECT v.person_id::text, p.person_id IS NOT NULL, v.visit_concept_id::bigint,
		       v.visit_start_date::date, v.visit_end_date::date, v.admitted_from, `+dx+`
		FROM v LEFT JOIN `+s.table(tablePerson)+` p ON p.person_id = v.person_id`+dxOn,
		queryArgs(from, to, dxJoin != "")...)
	if err != nil {
		return fmt.Errorf("cannot read visit_occurrence: %s", pgReason(err))
	}
	defer rows.Close()
	var (
		id           pgtype.Text
		known        bool
		concept      pgtype.Int8
		start, end   pgtype.Date
		admittedFrom int64
		diagnosis    pgtype.Text
	)
	for rows.Next() {
		if err := rows.Scan(&id, &known, &concept, &start, &end, &admittedFrom, &diagnosis); err != nil {
			return fmt.Errorf("cannot read visit_occurrence: %s", pgReason(err))
		}
		v := visit{personID: id.String, personKnown: known, admittedFrom: admittedFrom, diagnosis: diagnosis.String}
		var ok bool
		if v.start, ok = date(start); !ok {
			w.Skip(skipVisitStart)
			continue
		}
		v.end, _ = date(end)
		if !concept.Valid {
			w.Skip(skipVisitConcept)
			continue
		}
		v.concept = concept.Int64
		if !id.Valid || id.String == "" {
			w.Skip(skipVisitPerson)
			continue
		}
		if err := fn(v); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot read visit_occurrence: %s", pgReason(err))
	}
	return nil
}

// queryArgs are the visits query's parameters: the days, and the primary condition types
// when it ranks diagnoses.
func queryArgs(from, to formats.Date, diagnoses bool) []any {
	args := []any{pgDate(from), pgDate(to)}
	if diagnoses {
		args = append(args, primaryTypes)
	}
	return args
}

func pgDate(d formats.Date) pgtype.Date { return pgtype.Date{Time: d.Time(), Valid: true} }
