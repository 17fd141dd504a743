package synthconv

import (
	"encoding/csv"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// OMOPStats says what ToOMOP wrote.
type OMOPStats struct {
	Persons, Visits, Conditions int
	Bytes                       int64
}

// omopVisit is the visit concept each Synthea class becomes, the way an ETL that keeps GP
// visits apart would map them: the clinic's classes are 581477 Office Visit (the omop
// extractor's default consultation concept), outpatient 9202, emergency 9203, inpatient
// 9201. Hospice and skilled nursing stays have no concept the extractor counts.
var omopVisit = map[string]string{
	"ambulatory": "581477", "wellness": "581477", "virtual": "581477", "urgentcare": "581477",
	"outpatient": "9202", "emergency": "9203", "inpatient": "9201", "snf": "42898160", "hospice": "8546",
}

// omopConceptBase numbers the SNOMED CT concepts ToOMOP writes into concept.csv.
const omopConceptBase = 40000000

// ToOMOP writes csvDir's patients.csv and encounters.csv as OMOP CDM 5.4 CSV files into
// outDir, as Eunomia ships them (lower-case names and headers): person.csv (person_id numbered
// from 1, person_source_value the Synthea Id, birth as year, month, day and birth_datetime),
// observation_period.csv (birth to death, open while alive), visit_occurrence.csv (one visit per
// encounter; dates are the UTC day of START and STOP), and for each encounter with a
// REASONCODE a condition_occurrence.csv row linked to the visit, its concept in concept.csv as
// a standard SNOMED concept. Synthea's Death Certification encounter is left out, as an ETL
// would.
func ToOMOP(csvDir, outDir string) (OMOPStats, error) {
	var st OMOPStats
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return st, fmt.Errorf("synthconv: %w", err)
	}
	files := map[string]*out{}
	writers := map[string]*csv.Writer{}
	headers := map[string][]string{
		"person.csv": {"person_id", "gender_concept_id", "year_of_birth", "month_of_birth", "day_of_birth", "birth_datetime",
			"race_concept_id", "ethnicity_concept_id", "person_source_value", "gender_source_value"},
		"observation_period.csv": {"observation_period_id", "person_id", "observation_period_start_date", "observation_period_end_date", "period_type_concept_id"},
		"visit_occurrence.csv": {"visit_occurrence_id", "person_id", "visit_concept_id", "visit_start_date", "visit_start_datetime",
			"visit_end_date", "visit_end_datetime", "visit_type_concept_id", "admitted_from_concept_id", "visit_source_value"},
		"condition_occurrence.csv": {"condition_occurrence_id", "person_id", "condition_concept_id", "condition_start_date",
			"condition_type_concept_id", "condition_status_concept_id", "visit_occurrence_id", "condition_source_value"},
		"concept.csv": {"concept_id", "concept_name", "domain_id", "vocabulary_id", "concept_class_id", "standard_concept", "concept_code",
			"valid_start_date", "valid_end_date"},
	}
	for name, h := range headers {
		o, err := newOut(outDir, name, false)
		if err != nil {
			return st, err
		}
		defer o.abandon()
		files[name] = o
		writers[name] = csv.NewWriter(o.w)
		if err := writers[name].Write(h); err != nil {
			return st, fmt.Errorf("synthconv: %w", err)
		}
	}
	write := func(name string, rec ...string) error {
		if err := writers[name].Write(rec); err != nil {
			return fmt.Errorf("synthconv: %w", err)
		}
		return nil
	}

	pt, err := openTable(csvDir, "patients.csv")
	if err != nil {
		return st, err
	}
	defer pt.close()
	persons := map[string]string{}
	for {
		ok, err := pt.next()
		if err != nil {
			return st, err
		}
		if !ok {
			break
		}
		st.Persons++
		pid := strconv.Itoa(st.Persons)
		id, birth, death := pt.get("Id"), pt.get("BIRTHDATE"), pt.get("DEATHDATE")
		persons[id] = pid
		gender := map[string]string{"F": "8532", "M": "8507"}[pt.get("GENDER")]
		if gender == "" {
			gender = "0"
		}
		if len(birth) < 10 {
			return st, fmt.Errorf("synthconv: patients.csv row %d: BIRTHDATE is not a date", st.Persons)
		}
		if err := write("person.csv", pid, gender, birth[:4], strings.TrimLeft(birth[5:7], "0"), strings.TrimLeft(birth[8:10], "0"),
			birth+" 00:00:00", "0", "0", id, pt.get("GENDER")); err != nil {
			return st, err
		}
		if err := write("observation_period.csv", pid, pid, birth, death, "32817"); err != nil {
			return st, err
		}
	}

	et, err := openTable(csvDir, "encounters.csv")
	if err != nil {
		return st, err
	}
	defer et.close()
	concepts := map[string]string{}
	for {
		ok, err := et.next()
		if err != nil {
			return st, err
		}
		if !ok {
			break
		}
		if et.get("CODE") == "308646001" {
			continue
		}
		concept, ok := omopVisit[et.get("ENCOUNTERCLASS")]
		if !ok {
			concept = "0"
		}
		pid := persons[et.get("PATIENT")]
		start, stop := et.get("START"), et.get("STOP")
		if pid == "" || len(start) < 10 {
			continue
		}
		endDate := ""
		if len(stop) >= 10 {
			endDate = stop[:10]
		}
		st.Visits++
		vid := strconv.Itoa(st.Visits)
		if err := write("visit_occurrence.csv", vid, pid, concept, start[:10], start, endDate, stop, "32817", "0", et.get("Id")); err != nil {
			return st, err
		}
		if code := et.get("REASONCODE"); code != "" {
			cid, ok := concepts[code]
			if !ok {
				cid = strconv.Itoa(omopConceptBase + len(concepts))
				concepts[code] = cid
				if err := write("concept.csv", cid, et.get("REASONDESCRIPTION"), "Condition", "SNOMED", "Clinical Finding", "S", code,
					"1970-01-01", "2099-12-31"); err != nil {
					return st, err
				}
			}
			st.Conditions++
			if err := write("condition_occurrence.csv", strconv.Itoa(st.Conditions), pid, cid, start[:10], "32817", "32902", vid, code); err != nil {
				return st, err
			}
		}
	}
	for name, o := range files {
		writers[name].Flush()
		if err := writers[name].Error(); err != nil {
			return st, fmt.Errorf("synthconv: %w", err)
		}
		n, err := o.close()
		if err != nil {
			return st, err
		}
		st.Bytes += n
	}
	return st, nil
}
