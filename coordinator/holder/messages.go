package holder

import (
	"time"

	"github.com/tributary-health/tributary/coordinator/secure"
	"github.com/tributary-health/tributary/formats"
)

// The messages of a round, each written by one holder under its own prefix
// (secure.MessagePrefix) and signed with its signing key (secure.PutSigned):
//
//	leader: plan.json       the reports the leader asks to aggregate, and the verify key
//	each:   prep.json       its prep share of each report, or why it refuses the report
//	helper: aggregate.json  per month, its aggregate share encrypted to the leader, with the
//	                        reports it counted and the measures it released; or a refusal
//	                        of the whole plan
//
// Prep shares reveal only whether a report is valid (Prio3's verifier is zero-knowledge);
// aggregate shares are encrypted to the leader.
const (
	planName      = "plan.json"
	prepName      = "prep.json"
	aggregateName = "aggregate.json"

	kindPlan      = "plan"
	kindPrep      = "prep"
	kindAggregate = "aggregate"

	messageVersion = 1
)

// Sealed is an HPKE ciphertext.
type Sealed struct {
	Enc []byte `json:"enc"`
	CT  []byte `json:"ct"`
}

// Plan is the leader's request for a round.
type Plan struct {
	FormatVersion int                `json:"format_version"`
	Round         string             `json:"round"`
	Created       time.Time          `json:"created"`
	Leader        string             `json:"leader"`
	Helper        string             `json:"helper"`
	Policy        string             `json:"policy"`
	MinPractices  int                `json:"min_practices"`
	VDAF          formats.VDAFParams `json:"vdaf"`
	// VerifyKey is the round's Prio3 verification key, sealed to the helper.
	VerifyKey Sealed          `json:"verify_key"`
	Reports   []PlannedReport `json:"reports"`
}

// PlannedReport names one report of a run to aggregate.
type PlannedReport struct {
	Practice       string `json:"practice"`
	RunID          string `json:"run_id"`
	Month          string `json:"month"`
	Nonce          string `json:"nonce"`
	Manifest       string `json:"manifest"`
	ManifestSHA256 string `json:"manifest_sha256"`
}

// Prep is one holder's verification message for a round's plan.
type Prep struct {
	FormatVersion int          `json:"format_version"`
	Round         string       `json:"round"`
	Holder        string       `json:"holder"`
	Plan          string       `json:"plan_sha256"`
	Results       []PrepResult `json:"results"` // in the plan's order
}

// PrepResult is a holder's verdict on one planned report: its prep share, or its refusal.
type PrepResult struct {
	Nonce string `json:"nonce"`
	// Digest names the report's public part as this holder read it (formats.ReportDigest).
	Digest    string   `json:"digest,omitempty"`
	Supplied  []string `json:"supplied,omitempty"`
	PrepShare []byte   `json:"prep_share,omitempty"`
	Kind      string   `json:"kind,omitempty"` // set when refused
	Reason    string   `json:"reason,omitempty"`
}

// Aggregate is the helper's answer: its aggregate shares, or its refusal of the plan.
type Aggregate struct {
	FormatVersion int    `json:"format_version"`
	Round         string `json:"round"`
	Holder        string `json:"holder"`
	Plan          string `json:"plan_sha256"`
	// Refused, when set, says why the helper aggregated nothing of this plan.
	Refused string           `json:"refused,omitempty"`
	Months  []AggregateMonth `json:"months,omitempty"`
}

// AggregateMonth is the helper's part of one month's total.
type AggregateMonth struct {
	Month string `json:"month"`
	// Reports are the nonces the helper counted, sorted.
	Reports []string `json:"reports"`
	// Released are the measures whose cells the share carries; the others' are zero.
	Released []string          `json:"released"`
	Withheld []secure.Withheld `json:"withheld,omitempty"`
	Share    *Sealed           `json:"share,omitempty"` // nil when nothing is released
}
