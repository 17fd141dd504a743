package synthconv

import (
	"encoding/csv"
	"fmt"
	"os"
	"strings"
)

// UKGPStats says what ToUKGP wrote.
type UKGPStats struct {
	Patients, Admissions, Attendances, Outpatients, ClinicalEvents int
	Bytes                                                          int64
}

// ToUKGP writes csvDir's patients.csv and encounters.csv as the UK GP tables in ehrQL's TPP
// shapes into outDir, as CSV files with ehrQL's column names: patients.csv, one
// practice_registrations.csv spell per patient from birth to death at practice_pseudo_id 1,
// apcs.csv from the inpatient encounters (admission_method 21 when the description says
// emergency, 11 when it says elective or non-urgent, else 99), emergency_care_attendances.csv
// from the emergency encounters (REASONCODE as diagnosis_01, SNOMED CT as ECDS codes are),
// opa.csv from the outpatient encounters (attended), and one clinical_events.csv row per
// primary-care encounter (ambulatory, wellness, virtual, urgent care) with its CODE. Dates are
// the UTC day of START and STOP. Synthea's Death Certification encounter is left out.
func ToUKGP(csvDir, outDir string) (UKGPStats, error) {
	var st UKGPStats
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return st, fmt.Errorf("synthconv: %w", err)
	}
	headers := map[string][]string{
		"patients.csv":                   {"patient_id", "date_of_birth", "sex", "date_of_death"},
		"practice_registrations.csv":     {"patient_id", "start_date", "end_date", "practice_pseudo_id"},
		"apcs.csv":                       {"patient_id", "apcs_ident", "admission_date", "discharge_date", "admission_method", "primary_diagnosis"},
		"emergency_care_attendances.csv": {"patient_id", "id", "arrival_date", "diagnosis_01"},
		"opa.csv":                        {"patient_id", "opa_ident", "appointment_date", "attendance_status"},
		"clinical_events.csv":            {"patient_id", "date", "snomedct_code", "numeric_value"},
	}
	files := map[string]*out{}
	writers := map[string]*csv.Writer{}
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
	for {
		ok, err := pt.next()
		if err != nil {
			return st, err
		}
		if !ok {
			break
		}
		st.Patients++
		id, birth, death := pt.get("Id"), pt.get("BIRTHDATE"), pt.get("DEATHDATE")
		sex := map[string]string{"F": "female", "M": "male"}[pt.get("GENDER")]
		if sex == "" {
			sex = "unknown"
		}
		if err := write("patients.csv", id, birth, sex, death); err != nil {
			return st, err
		}
		if err := write("practice_registrations.csv", id, birth, death, "1"); err != nil {
			return st, err
		}
	}

	et, err := openTable(csvDir, "encounters.csv")
	if err != nil {
		return st, err
	}
	defer et.close()
	for {
		ok, err := et.next()
		if err != nil {
			return st, err
		}
		if !ok {
			break
		}
		start, stop := et.get("START"), et.get("STOP")
		if et.get("CODE") == "308646001" || len(start) < 10 {
			continue
		}
		day, end := start[:10], ""
		if len(stop) >= 10 {
			end = stop[:10]
		}
		id := et.get("PATIENT")
		switch et.get("ENCOUNTERCLASS") {
		case "inpatient":
			method := "99"
			switch d := strings.ToLower(et.get("DESCRIPTION")); {
			case strings.Contains(d, "emergency"):
				method = "21"
			case strings.Contains(d, "elective"), strings.Contains(d, "non-urgent"):
				method = "11"
			}
			st.Admissions++
			err = write("apcs.csv", id, fmt.Sprint(st.Admissions), day, end, method, "")
		case "emergency":
			st.Attendances++
			err = write("emergency_care_attendances.csv", id, fmt.Sprint(st.Attendances), day, et.get("REASONCODE"))
		case "outpatient":
			st.Outpatients++
			err = write("opa.csv", id, fmt.Sprint(st.Outpatients), day, "5")
		case "ambulatory", "wellness", "virtual", "urgentcare":
			st.ClinicalEvents++
			err = write("clinical_events.csv", id, day, et.get("CODE"), "")
		}
		if err != nil {
			return st, err
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
