package fedgen

import (
	"context"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/secagg"
)

// SecureTrue is practice i's true count for secure aggregation's tests: True, with the
// admission measures made to keep the relations real counts keep and the federation's
// disclosure audit assumes (emergency + elective <= admissions; patients admitted in an
// emergency <= emergency admissions), which True's independent draws need not.
func (f *Federation) SecureTrue(i int, month formats.Month, measure string, band, sex int) int64 {
	t := func(m string) int64 { return f.True(i, month, m, band, sex) }
	switch measure {
	case formats.Admissions:
		return max(t(formats.Admissions), t(formats.AdmissionsEmergency)+t(formats.AdmissionsElective))
	case formats.PatientsAdmittedEmergency:
		return min(t(formats.PatientsAdmittedEmergency), t(formats.AdmissionsEmergency))
	}
	return t(measure)
}

// Vector is practice i's exact cells (SecureTrue) of month in the layout of secure aggregation's reports
// (secagg.Params): zero for a measure it does not supply, which Supplied leaves out.
func (f *Federation) Vector(i int, month formats.Month) secagg.Month {
	p := secagg.Params()
	m := secagg.Month{Month: month, Counts: make([]uint64, p.Length())}
	for li, measure := range p.Measures {
		if !f.Supplies(i, measure) {
			continue
		}
		m.Supplied = append(m.Supplied, measure)
		for fine := range formats.NumFine {
			b, x := formats.ShapeDims(fine)
			m.Counts[li*formats.NumFine+fine] = uint64(f.SecureTrue(i, month, measure, b, x))
		}
	}
	return m
}

// SecureShares makes practice i's two shares files of every month, as its agent would.
func (f *Federation) SecureShares(i int, to [2]secagg.Recipient) (map[string][]byte, error) {
	var months []secagg.Month
	for m := f.Start; m < f.Start+formats.Month(f.Months); m++ {
		months = append(months, f.Vector(i, m))
	}
	return secagg.MakeShares(f.Practices[i].ID, f.Practices[i].RunID, to, months)
}

// WriteSecureRun stores practice i's run with its shares files (from SecureShares, or made
// here when shares is nil) beside its figures, then the signed manifest listing them all.
func (f *Federation) WriteSecureRun(ctx context.Context, st objstore.Store, i int, to [2]secagg.Recipient, shares map[string][]byte) error {
	p := f.Practices[i]
	if shares == nil {
		var err error
		if shares, err = f.SecureShares(i, to); err != nil {
			return err
		}
	}
	s := f.Submission(i)
	data, err := formats.MarshalSubmission(s)
	if err != nil {
		return err
	}
	m := &formats.Manifest{FormatVersion: formats.FormatVersion, Practice: p.ID, RunID: p.RunID, Created: p.Created,
		Extractors: s.Extractors, Policy: s.Policy, From: s.From.String(), To: s.To.String(),
		Files: []formats.FileEntry{formats.Entry(p.ID, p.RunID, data)}}
	if _, err := st.Put(ctx, formats.SubmissionKey(p.ID, p.RunID), data); err != nil {
		return err
	}
	for _, r := range to {
		if _, err := st.Put(ctx, formats.SharesKey(p.ID, p.RunID, r.ID), shares[r.ID]); err != nil {
			return err
		}
		m.Files = append(m.Files, formats.SharesEntry(p.ID, p.RunID, r.ID, shares[r.ID]))
	}
	env, err := formats.SignManifest(m, p.Key)
	if err != nil {
		return err
	}
	_, err = st.Put(ctx, m.Key(), env)
	return err
}
