package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/plugins/sdk"
)

// source is where the CDM is read from: a PostgreSQL database or a folder of CSV files. Both
// hand the extractor the same rows, so the mapping (extractor.go) is one piece of code and the
// figures of the two are identical for the same data.
type source interface {
	Kind() string    // "postgresql" or "csv", for the log
	Version() string // the CDM version: 5.3, 5.4, or "unknown" without an admitted-from column
	Tables() tables

	// Ancestors calls fn for every concept_ancestor row whose ancestor is one of ids; none
	// when the source has no concept_ancestor.
	Ancestors(ctx context.Context, ids []int64, fn func(ancestor, descendant int64)) error
	// VisitConcepts calls fn for every distinct visit_concept_id of visit_occurrence, with
	// whether some visit of it records where the patient was admitted from.
	VisitConcepts(ctx context.Context, fn func(concept int64, admittedFrom bool)) error
	// Periods calls fn for every observation period that may overlap the days from..to
	// (exclusive), with its person; rows it cannot read it skips through w.
	Periods(ctx context.Context, from, to formats.Date, w *sdk.Writer, fn func(period) error) error
	// Visits calls fn for every visit that may start or end in the days from..to (exclusive).
	Visits(ctx context.Context, from, to formats.Date, w *sdk.Writer, fn func(visit) error) error
	Close() error
}

// tables says which of the tables the extractor reads the source has (person it must have).
type tables struct {
	periods   bool // observation_period
	visits    bool // visit_occurrence
	diagnoses bool // condition_occurrence and concept, for the visits' primary diagnoses
}

// The CDM tables read. concept_ancestor may be in the vocabulary schema.
const (
	tablePerson    = "person"
	tablePeriod    = "observation_period"
	tableVisit     = "visit_occurrence"
	tableAncestor  = "concept_ancestor"
	tableCondition = "condition_occurrence"
	tableConcept   = "concept"
)

// The primary diagnosis of a visit (see the README): among its condition_occurrence rows
// whose concept is a standard SNOMED CT concept, the first by rank (primaryRank), then
// condition_start_date (missing last), then condition_occurrence_id.
const (
	statusPrimary          = 32902 // Condition Status: Primary diagnosis
	statusPrimaryAdmission = 32901 // Condition Status: Primary admission diagnosis
)

// primaryTypes are the legacy condition_type_concept_ids that mean a primary (first-position)
// diagnosis, from before condition_status_concept_id: Primary Condition; Inpatient detail and
// header - primary; Outpatient detail and header - 1st position.
var primaryTypes = []int64{44786627, 38000183, 38000199, 38000215, 38000230}

// primaryRank ranks a condition of a visit: 0 a primary diagnosis by status, 1 a primary
// admission diagnosis or a primary legacy type, 2 any other.
func primaryRank(status, typ int64) int {
	switch {
	case status == statusPrimary:
		return 0
	case status == statusPrimaryAdmission || slices.Contains(primaryTypes, typ):
		return 1
	}
	return 2
}

// admittedFromColumn is visit_occurrence's column for where the patient came from: renamed in
// CDM 5.4.
func admittedFromColumn(version string) string {
	if version == version53 {
		return "admitting_source_concept_id"
	}
	return "admitted_from_concept_id"
}

// versionOf picks the CDM version from which admitted-from column visit_occurrence has, and
// checks it against the configured one.
func versionOf(configured string, has func(column string) bool, where string) (string, error) {
	has54, has53 := has(admittedFromColumn(version54)), has(admittedFromColumn(version53))
	switch configured {
	case version54:
		if !has54 {
			return "", fmt.Errorf("%s has no %s column, which CDM 5.4 has; set cdm_version = \"auto\" or \"5.3\"", where, admittedFromColumn(version54))
		}
		return version54, nil
	case version53:
		if !has53 {
			return "", fmt.Errorf("%s has no %s column, which CDM 5.3 has; set cdm_version = \"auto\" or \"5.4\"", where, admittedFromColumn(version53))
		}
		return version53, nil
	}
	switch {
	case has54:
		return version54, nil
	case has53:
		return version53, nil
	}
	return "unknown", nil
}

// openSource opens the configured source and checks it has what the extractor reads.
func openSource(ctx context.Context, cfg config) (source, error) {
	if cfg.url != "" {
		return openPostgres(ctx, cfg)
	}
	return openCSV(cfg)
}
