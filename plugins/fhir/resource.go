package main

import "bytes"

// coding is one Coding of a CodeableConcept (or the text of the concept, in display). Its
// bytes point into the line being read and are valid until the next one.
type coding struct {
	system, code, display []byte
}

// diagnosisRef is one element of Encounter.diagnosis.
type diagnosisRef struct {
	condition []byte // the Condition's reference
	rank      int    // 0 when absent
	use       []byte // diagnosis.use's first code (AD, DD, CC, CM, billing, ...)
}

// resource holds the fields the extractor reads from a Patient, EpisodeOfCare, Encounter or
// Condition: one struct for all of them, filled in one pass over the JSON whatever the order
// of its keys, and reused from line to line (its slices keep their capacity).
type resource struct {
	resourceType, id, fullURL []byte

	// Patient
	gender, birthDate, deceasedDateTime []byte
	deceasedTrue                        bool

	// Encounter and EpisodeOfCare
	status     []byte
	subject    []byte // Encounter.subject, EpisodeOfCare.patient: the reference
	start, end []byte // period
	class      []byte // Encounter.class.code
	types      []coding
	reasons    []coding
	diagnoses  []diagnosisRef
	admit      []coding // hospitalization.admitSource
	methods    []coding // NHS admission method extensions (on Encounter or its hospitalization)
	priority   []coding
	managing   [][]byte // EpisodeOfCare.managingOrganization: reference, identifier.value, display

	// Condition
	code []coding
}

func (r *resource) reset() {
	*r = resource{
		types: r.types[:0], reasons: r.reasons[:0], diagnoses: r.diagnoses[:0], admit: r.admit[:0],
		methods: r.methods[:0], priority: r.priority[:0], managing: r.managing[:0], code: r.code[:0],
	}
}

// parseResource reads one resource object at s's position into r.
func parseResource(s *scanner, r *resource) {
	if !s.open('{') {
		s.fail()
		return
	}
	for first := true; ; first = false {
		k, ok := s.key(first)
		if !ok {
			return
		}
		switch string(k) {
		case "resourceType":
			r.resourceType, _ = s.str()
		case "id":
			r.id, _ = s.str()
		case "gender":
			r.gender, _ = s.str()
		case "birthDate":
			r.birthDate, _ = s.str()
		case "deceasedDateTime":
			r.deceasedDateTime, _ = s.str()
		case "deceasedBoolean":
			r.deceasedTrue = s.literal("true")
		case "status":
			r.status, _ = s.str()
		case "subject", "patient":
			r.subject = reference(s)
		case "period":
			r.start, r.end = period(s)
		case "class":
			r.class = classCode(s)
		case "type":
			r.types = concepts(s, r.types)
		case "reasonCode":
			r.reasons = concepts(s, r.reasons)
		case "priority":
			r.priority = concept(s, r.priority)
		case "code":
			r.code = concept(s, r.code)
		case "diagnosis":
			r.diagnoses = diagnoses(s, r.diagnoses)
		case "hospitalization":
			hospitalization(s, r)
		case "extension":
			r.methods = methodExtensions(s, r.methods)
		case "managingOrganization":
			r.managing = organization(s, r.managing)
		default:
			s.skip()
		}
	}
}

// literal reads a true/false/null literal and reports whether it is want.
func (s *scanner) literal(want string) bool {
	if s.err != nil {
		return false
	}
	s.ws()
	start := s.i
	s.skip()
	return s.err == nil && string(s.b[start:s.i]) == want
}

// integer reads a small non-negative integer value; anything else gives 0.
func (s *scanner) integer() int {
	if s.err != nil {
		return 0
	}
	s.ws()
	start := s.i
	s.skip()
	n := 0
	for _, c := range s.b[start:s.i] {
		if c < '0' || c > '9' || n > 1<<20 {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// reference reads a Reference's reference string.
func reference(s *scanner) []byte {
	var ref []byte
	if !s.open('{') {
		s.skip()
		return nil
	}
	for first := true; ; first = false {
		k, ok := s.key(first)
		if !ok {
			return ref
		}
		if string(k) == "reference" {
			ref, _ = s.str()
		} else {
			s.skip()
		}
	}
}

// organization reads a Reference to an Organization: its reference, identifier.value and
// display, any of which may name the practice.
func organization(s *scanner, out [][]byte) [][]byte {
	if !s.open('{') {
		s.skip()
		return out
	}
	for first := true; ; first = false {
		k, ok := s.key(first)
		if !ok {
			return out
		}
		switch string(k) {
		case "reference", "display":
			if v, ok := s.str(); ok {
				out = append(out, v)
			}
		case "identifier":
			if !s.open('{') {
				s.skip()
				continue
			}
			for f := true; ; f = false {
				k, ok := s.key(f)
				if !ok {
					break
				}
				if string(k) == "value" {
					if v, ok := s.str(); ok {
						out = append(out, v)
					}
				} else {
					s.skip()
				}
			}
		default:
			s.skip()
		}
	}
}

// period reads a Period's start and end.
func period(s *scanner) (start, end []byte) {
	if !s.open('{') {
		s.skip()
		return nil, nil
	}
	for first := true; ; first = false {
		k, ok := s.key(first)
		if !ok {
			return start, end
		}
		switch string(k) {
		case "start":
			start, _ = s.str()
		case "end":
			end, _ = s.str()
		default:
			s.skip()
		}
	}
}

// classCode reads Encounter.class: an R4 Coding ({"code": "AMB"}). An R5-style array of
// CodeableConcepts gives its first coding's code.
func classCode(s *scanner) []byte {
	switch s.peek() {
	case '{':
		var cs [1]coding
		out := codingObject(s, cs[:0])
		if len(out) > 0 {
			return out[0].code
		}
	case '[':
		var cs [4]coding
		out := concepts(s, cs[:0])
		for _, c := range out {
			if len(c.code) > 0 {
				return c.code
			}
		}
	default:
		s.skip()
	}
	return nil
}

// codingObject reads one Coding object.
func codingObject(s *scanner, out []coding) []coding {
	if !s.open('{') {
		s.skip()
		return out
	}
	var c coding
	for first := true; ; first = false {
		k, ok := s.key(first)
		if !ok {
			break
		}
		switch string(k) {
		case "system":
			c.system, _ = s.str()
		case "code":
			c.code, _ = s.str()
		case "display":
			c.display, _ = s.str()
		default:
			s.skip()
		}
	}
	return append(out, c)
}

// concept reads one CodeableConcept: each coding, then its text as a coding with only a
// display.
func concept(s *scanner, out []coding) []coding {
	if !s.open('{') {
		s.skip()
		return out
	}
	for first := true; ; first = false {
		k, ok := s.key(first)
		if !ok {
			return out
		}
		switch string(k) {
		case "coding":
			if !s.open('[') {
				s.skip()
				continue
			}
			for f := true; s.elem(f); f = false {
				out = codingObject(s, out)
			}
		case "text":
			if v, ok := s.str(); ok {
				out = append(out, coding{display: v})
			}
		default:
			s.skip()
		}
	}
}

// concepts reads an array of CodeableConcepts into one list of codings.
func concepts(s *scanner, out []coding) []coding {
	if !s.open('[') {
		s.skip()
		return out
	}
	for first := true; s.elem(first); first = false {
		out = concept(s, out)
	}
	return out
}

// diagnoses reads Encounter.diagnosis.
func diagnoses(s *scanner, out []diagnosisRef) []diagnosisRef {
	if !s.open('[') {
		s.skip()
		return out
	}
	for first := true; s.elem(first); first = false {
		if !s.open('{') {
			s.skip()
			continue
		}
		var d diagnosisRef
		for f := true; ; f = false {
			k, ok := s.key(f)
			if !ok {
				break
			}
			switch string(k) {
			case "condition":
				d.condition = reference(s)
			case "rank":
				d.rank = s.integer()
			case "use":
				var cs [2]coding
				if u := concept(s, cs[:0]); len(u) > 0 {
					d.use = u[0].code
				}
			default:
				s.skip()
			}
		}
		out = append(out, d)
	}
	return out
}

// hospitalization reads Encounter.hospitalization: admitSource, and NHS admission method
// extensions.
func hospitalization(s *scanner, r *resource) {
	if !s.open('{') {
		s.skip()
		return
	}
	for first := true; ; first = false {
		k, ok := s.key(first)
		if !ok {
			return
		}
		switch string(k) {
		case "admitSource":
			r.admit = concept(s, r.admit)
		case "extension":
			r.methods = methodExtensions(s, r.methods)
		default:
			s.skip()
		}
	}
}

// methodExtensions reads an extension array and keeps the codes of the NHS admission method
// extensions: UK Core's Extension-UKCore-AdmissionMethod, CareConnect's
// Extension-CareConnect-AdmissionMethod-1, or any extension whose URL names AdmissionMethod,
// with a valueCodeableConcept or a valueCoding.
func methodExtensions(s *scanner, out []coding) []coding {
	if !s.open('[') {
		s.skip()
		return out
	}
	for first := true; s.elem(first); first = false {
		if !s.open('{') {
			s.skip()
			continue
		}
		var url []byte
		var vals [4]coding
		v := vals[:0]
		for f := true; ; f = false {
			k, ok := s.key(f)
			if !ok {
				break
			}
			switch string(k) {
			case "url":
				url, _ = s.str()
			case "valueCodeableConcept":
				v = concept(s, v)
			case "valueCoding":
				v = codingObject(s, v)
			default:
				s.skip()
			}
		}
		if bytes.Contains(bytes.ToLower(url), []byte("admissionmethod")) {
			out = append(out, v...)
		}
	}
	return out
}
