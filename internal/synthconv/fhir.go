package synthconv

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// FHIROptions say how ToFHIR writes.
type FHIROptions struct {
	// Gzip writes Patient.000.ndjson.gz and Encounter.000.ndjson.gz instead of plain NDJSON.
	Gzip bool
	// Zone is the offset times are written in, as Synthea writes the offset of the
	// patient's state; nil means America/New_York (-05:00 or -04:00). The instants are the
	// CSV's.
	Zone *time.Location
}

// FHIRStats says what ToFHIR wrote.
type FHIRStats struct {
	Patients, Encounters int
	Bytes                int64 // of the files as written (compressed, with Gzip)
}

// Synthea's FHIR exporter writes these Encounter.class codes for its CSV classes.
var fhirClass = map[string]string{
	"ambulatory": "AMB", "wellness": "AMB", "outpatient": "AMB", "urgentcare": "AMB",
	"virtual": "VR", "emergency": "EMER", "inpatient": "IMP", "snf": "IMP",
	"hospice": "HH", "home": "HH",
}

// ToFHIR writes csvDir's patients.csv and encounters.csv as FHIR R4 bulk NDJSON into outDir:
// one Patient line per patient, one Encounter line per encounter, shaped like Synthea's FHIR
// exporter's (the same keys, class codes and line sizes, about 1.5 KB an Encounter), so that a
// benchmark reads what a real export holds. Encounter.type is the CSV's CODE and DESCRIPTION,
// reasonCode its REASONCODE, and times the CSV's instants written with Zone's offset; a
// DEATHDATE becomes a deceasedDateTime at noon of that day.
func ToFHIR(csvDir, outDir string, o FHIROptions) (FHIRStats, error) {
	var st FHIRStats
	zone := o.Zone
	if zone == nil {
		var err error
		if zone, err = time.LoadLocation("America/New_York"); err != nil {
			return st, fmt.Errorf("synthconv: %w", err)
		}
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return st, fmt.Errorf("synthconv: %w", err)
	}
	names := map[string]string{}
	pw, err := newOut(outDir, "Patient.000.ndjson", o.Gzip)
	if err != nil {
		return st, err
	}
	defer pw.abandon()
	pt, err := openTable(csvDir, "patients.csv")
	if err != nil {
		return st, err
	}
	defer pt.close()
	var b []byte
	for {
		ok, err := pt.next()
		if err != nil {
			return st, err
		}
		if !ok {
			break
		}
		id := pt.get("Id")
		display := pt.get("PREFIX") + " " + pt.get("FIRST") + " " + pt.get("LAST")
		names[id] = display
		b = patientLine(b[:0], pt, id)
		if _, err := pw.w.Write(b); err != nil {
			return st, err
		}
		st.Patients++
	}
	ew, err := newOut(outDir, "Encounter.000.ndjson", o.Gzip)
	if err != nil {
		return st, err
	}
	defer ew.abandon()
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
		b = encounterLine(b[:0], et, names, zone)
		if _, err := ew.w.Write(b); err != nil {
			return st, err
		}
		st.Encounters++
	}
	for _, f := range []*out{pw, ew} {
		n, err := f.close()
		if err != nil {
			return st, err
		}
		st.Bytes += n
	}
	return st, nil
}

func patientLine(b []byte, t *table, id string) []byte {
	b = append(b, `{"resourceType":"Patient","id":`...)
	b = appendJSONString(b, id)
	b = append(b, `,"meta":{"profile":["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]},"identifier":[{"system":"https://github.com/synthetichealth/synthea","value":`...)
	b = appendJSONString(b, id)
	b = append(b, `},{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"SS","display":"Social Security Number"}],"text":"Social Security Number"},"system":"http://hl7.org/fhir/sid/us-ssn","value":`...)
	b = appendJSONString(b, t.get("SSN"))
	b = append(b, `}],"name":[{"use":"official","family":`...)
	b = appendJSONString(b, t.get("LAST"))
	b = append(b, `,"given":[`...)
	b = appendJSONString(b, t.get("FIRST"))
	b = append(b, `],"prefix":[`...)
	b = appendJSONString(b, t.get("PREFIX"))
	b = append(b, `]}],"telecom":[{"system":"phone","value":"555-810-7203","use":"home"}],"gender":`...)
	switch t.get("GENDER") {
	case "F":
		b = append(b, `"female"`...)
	case "M":
		b = append(b, `"male"`...)
	default:
		b = append(b, `"unknown"`...)
	}
	b = append(b, `,"birthDate":`...)
	b = appendJSONString(b, t.get("BIRTHDATE"))
	if d := t.get("DEATHDATE"); d != "" {
		b = append(b, `,"deceasedDateTime":`...)
		b = appendJSONString(b, d+"T12:00:00-05:00")
	}
	b = append(b, `,"address":[{"line":[`...)
	b = appendJSONString(b, t.get("ADDRESS"))
	b = append(b, `],"city":`...)
	b = appendJSONString(b, t.get("CITY"))
	b = append(b, `,"country":"GB"}],"communication":[{"language":{"coding":[{"system":"urn:ietf:bcp:47","code":"en-GB","display":"English"}],"text":"English"}}]}`...)
	return append(b, '\n')
}

func encounterLine(b []byte, t *table, names map[string]string, zone *time.Location) []byte {
	id, pid, class := t.get("Id"), t.get("PATIENT"), t.get("ENCOUNTERCLASS")
	code, desc := t.get("CODE"), t.get("DESCRIPTION")
	start, stop := fhirTime(t.get("START"), zone), fhirTime(t.get("STOP"), zone)
	org, prov := t.get("ORGANIZATION"), t.get("PROVIDER")
	b = append(b, `{"resourceType":"Encounter","id":`...)
	b = appendJSONString(b, id)
	b = append(b, `,"meta":{"profile":["http://hl7.org/fhir/us/core/StructureDefinition/us-core-encounter"]},"identifier":[{"use":"official","system":"https://github.com/synthetichealth/synthea","value":`...)
	b = appendJSONString(b, id)
	b = append(b, `}],"status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":`...)
	c, ok := fhirClass[class]
	if !ok {
		c = class
	}
	b = appendJSONString(b, c)
	b = append(b, `},"type":[{"coding":[{"system":"http://snomed.info/sct","code":`...)
	b = appendJSONString(b, code)
	b = append(b, `,"display":`...)
	b = appendJSONString(b, desc)
	b = append(b, `}],"text":`...)
	b = appendJSONString(b, desc)
	b = append(b, `}],"subject":{"reference":`...)
	b = appendJSONString(b, "Patient/"+pid)
	b = append(b, `,"display":`...)
	b = appendJSONString(b, names[pid])
	b = append(b, `},"participant":[{"type":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ParticipationType","code":"PPRF","display":"primary performer"}],"text":"primary performer"}],"period":{"start":`...)
	b = appendJSONString(b, start)
	b = append(b, `,"end":`...)
	b = appendJSONString(b, stop)
	b = append(b, `},"individual":{"reference":`...)
	b = appendJSONString(b, "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|"+prov)
	b = append(b, `,"display":"Dr. Chelsey293 Simonis280"}}],"period":{"start":`...)
	b = appendJSONString(b, start)
	if stop != "" {
		b = append(b, `,"end":`...)
		b = appendJSONString(b, stop)
	}
	b = append(b, '}')
	if rc := t.get("REASONCODE"); rc != "" {
		b = append(b, `,"reasonCode":[{"coding":[{"system":"http://snomed.info/sct","code":`...)
		b = appendJSONString(b, rc)
		b = append(b, `,"display":`...)
		b = appendJSONString(b, t.get("REASONDESCRIPTION"))
		b = append(b, `}]}]`...)
	}
	b = append(b, `,"location":[{"location":{"reference":`...)
	b = appendJSONString(b, "Location?identifier=https://github.com/synthetichealth/synthea|"+org)
	b = append(b, `,"display":"NEWMAN MEMORIAL COUNTY HOSPITAL"}}],"serviceProvider":{"reference":`...)
	b = appendJSONString(b, "Organization?identifier=https://github.com/synthetichealth/synthea|"+org)
	b = append(b, `,"display":"NEWMAN MEMORIAL COUNTY HOSPITAL"}}`...)
	return append(b, '\n')
}

// fhirTime writes a CSV instant (2020-02-06T08:45:50Z) with zone's offset, as Synthea's FHIR
// exporter does; a value that is not an instant is kept as it is.
func fhirTime(s string, zone *time.Location) string {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return s
	}
	return t.In(zone).Format("2006-01-02T15:04:05-07:00")
}

// out is a file being written, through gzip or not.
type out struct {
	f    *os.File
	w    *bufio.Writer
	gz   *gzip.Writer
	path string
}

func newOut(dir, name string, gz bool) (*out, error) {
	if gz {
		name += ".gz"
	}
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("synthconv: %w", err)
	}
	o := &out{f: f, path: path}
	var w io.Writer = f
	if gz {
		o.gz = gzip.NewWriter(f)
		w = o.gz
	}
	o.w = bufio.NewWriterSize(w, 1<<20)
	return o, nil
}

func (o *out) close() (int64, error) {
	err := o.w.Flush()
	if o.gz != nil && err == nil {
		err = o.gz.Close()
	}
	fi, serr := o.f.Stat()
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	o.f = nil
	if err == nil && serr != nil {
		err = serr
	}
	if err != nil {
		return 0, fmt.Errorf("synthconv: %w", err)
	}
	return fi.Size(), nil
}

// abandon closes a file close did not, after a failure.
func (o *out) abandon() {
	if o.f != nil {
		o.f.Close()
	}
}
