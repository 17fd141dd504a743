package formats

import "strings"

// Diagnosis code systems: the values of an event's diagnosis_system.
const (
	DiagnosisICD10  = "icd10"    // ICD-10 (WHO, as HES and SUS use it; ICD-10-CM codes have the same shape)
	DiagnosisSNOMED = "snomedct" // SNOMED CT concept ids
)

// DiagnosisSystems lists the code systems an event's diagnosis may be in.
var DiagnosisSystems = []string{DiagnosisICD10, DiagnosisSNOMED}

// ValidDiagnosisSystem reports whether s is one of DiagnosisSystems.
func ValidDiagnosisSystem(s string) bool { return s == DiagnosisICD10 || s == DiagnosisSNOMED }

// NormalizeDiagnosis returns a source's diagnosis code in the canonical form of system, which
// is the only form rows carry, and false when it is not a code of that system's shape (or the
// system is not one of DiagnosisSystems):
//
//   - ICD-10: upper case without the dot, "I21.9" and "i219" both "I219"; HES's filler
//     after a three-character code ("I10X") and its trailing dash ("K358-") are dropped, so
//     the code is "I10". Shape: a letter, two digits or a digit and a letter, then up to four
//     letters or digits.
//   - SNOMED CT: a concept id, 6 to 18 digits without a leading zero, whose partition
//     identifier (the two digits before the last) is a concept's (00 or 10) and whose last
//     digit is its Verhoeff check digit. Surrounding spaces are dropped; nothing else changes.
//
// It is what extractors call on a source's code before putting it in an Event; ValidateEvent
// accepts exactly the codes it returns.
func NormalizeDiagnosis(system, code string) (string, bool) {
	code = strings.TrimSpace(code)
	switch system {
	case DiagnosisICD10:
		code = strings.ToUpper(code)
		code = strings.TrimRight(code, "-")
		if len(code) > 4 && code[3] == '.' {
			code = code[:3] + code[4:]
		}
		if len(code) == 4 && code[3] == 'X' {
			code = code[:3]
		}
		return code, icd10Shape(code)
	case DiagnosisSNOMED:
		return code, snomedShape(code)
	}
	return code, false
}

// validateDiagnosis checks an event's diagnosis; the error names the field, never the code.
func validateDiagnosis(op, system, code string) error {
	switch {
	case code == "" || system == "":
		return errorf(op, ErrValue, "fields %s and %s must both be set or both be null", FieldDiagnosisCode, FieldDiagnosisSystem)
	case !ValidDiagnosisSystem(system):
		return errorf(op, ErrValue, "field %s must be %s or %s", FieldDiagnosisSystem, DiagnosisICD10, DiagnosisSNOMED)
	case system == DiagnosisICD10 && !icd10Shape(code):
		return errorf(op, ErrValue, "field %s is not an ICD-10 code in canonical form (upper case, no dot, e.g. I219; formats.NormalizeDiagnosis makes it)", FieldDiagnosisCode)
	case system == DiagnosisSNOMED && !snomedShape(code):
		return errorf(op, ErrValue, "field %s is not a SNOMED CT concept id (6-18 digits, a concept's partition, a valid check digit)", FieldDiagnosisCode)
	}
	return nil
}

func icd10Shape(c string) bool {
	if len(c) < 3 || len(c) > 7 || !upper(c[0]) || !digit(c[1]) || !digit(c[2]) && !upper(c[2]) {
		return false
	}
	for i := 3; i < len(c); i++ {
		if !digit(c[i]) && !upper(c[i]) {
			return false
		}
	}
	return true
}

func snomedShape(c string) bool {
	if len(c) < 6 || len(c) > 18 || c[0] == '0' {
		return false
	}
	for i := 0; i < len(c); i++ {
		if !digit(c[i]) {
			return false
		}
	}
	if p := c[len(c)-3 : len(c)-1]; p != "00" && p != "10" {
		return false
	}
	return verhoeff(c)
}

func digit(b byte) bool { return b >= '0' && b <= '9' }
func upper(b byte) bool { return b >= 'A' && b <= 'Z' }

// The Verhoeff scheme's tables: the dihedral group D5's multiplication and the permutation.
var (
	verhoeffD = [10][10]byte{
		{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 2, 3, 4, 0, 6, 7, 8, 9, 5},
		{2, 3, 4, 0, 1, 7, 8, 9, 5, 6}, {3, 4, 0, 1, 2, 8, 9, 5, 6, 7},
		{4, 0, 1, 2, 3, 9, 5, 6, 7, 8}, {5, 9, 8, 7, 6, 0, 4, 3, 2, 1},
		{6, 5, 9, 8, 7, 1, 0, 4, 3, 2}, {7, 6, 5, 9, 8, 2, 1, 0, 4, 3},
		{8, 7, 6, 5, 9, 3, 2, 1, 0, 4}, {9, 8, 7, 6, 5, 4, 3, 2, 1, 0},
	}
	verhoeffP = [8][10]byte{
		{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 5, 7, 6, 2, 8, 3, 0, 9, 4},
		{5, 8, 0, 3, 7, 9, 6, 1, 4, 2}, {8, 9, 1, 6, 0, 4, 3, 5, 2, 7},
		{9, 4, 5, 3, 1, 2, 6, 8, 7, 0}, {4, 2, 8, 6, 5, 7, 3, 9, 0, 1},
		{2, 7, 9, 3, 8, 0, 6, 4, 1, 5}, {7, 0, 4, 6, 9, 1, 3, 2, 5, 8},
	}
)

// verhoeff reports whether a string of digits ends in its Verhoeff check digit.
func verhoeff(digits string) bool {
	var c byte
	for i := 0; i < len(digits); i++ {
		c = verhoeffD[c][verhoeffP[i%8][digits[len(digits)-1-i]-'0']]
	}
	return c == 0
}
