package secure

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

// Figures are the securely aggregated federation values the combine uses: for every month
// and measure, those of the newest round that published it; a quarter or year only where
// the figures file that holds it is that newest round's for all its months.
type Figures struct {
	Leader, Helper string
	HoldersSHA256  string
	// Values by period and measure: every shape, through the federation's policy.
	Values map[formats.Period]map[string]*[formats.NumShapes]formats.Protected
	// Practices behind each month's total of each measure.
	Practices map[formats.Month]map[string]int
	// Sources says where each value of Values comes from: its round and, for a month, the
	// practices whose reports it sums (those of the month that supplied the measure) and
	// their runs.
	Sources map[formats.Period]map[string]*Source
	// Rounds whose values are used, newest first.
	Rounds []UsedRound
	// Problems are round records or figures files that did not verify: not used.
	Problems []Problem
	// Digest lists every object read, for the combine's id.
	Digest []string
}

// Source is the round of a secure value and the practice-months it sums.
type Source struct {
	Round string
	// Practices are, for a month, the practices whose reports the total sums, sorted; Runs
	// their runs where the round record names them. Nil for a quarter or year.
	Practices []string
	Runs      map[string]string
}

// UsedRound is a round some of whose values the combine uses.
type UsedRound struct {
	Round  string   `json:"round"`
	Key    string   `json:"key"`
	SHA256 string   `json:"sha256"`
	Months []string `json:"months"` // months (of some measure) taken from it
}

// Problem is a secure-aggregation object the combine refused.
type Problem struct {
	Key    string
	Kind   string
	Reason string
}

// Empty reports whether f holds no values.
func (f *Figures) Empty() bool { return f == nil || len(f.Values) == 0 }

type loadedRound struct {
	r      *Round
	key    string
	sha    string
	blocks map[string][]formats.Block // segment key -> its values
}

// Load reads every round the leader named in federation/holders.json signed, for the
// federation's policy. A store without a holders file gives (nil, nil): no secure values. A
// round or figures file that does not verify is listed in Problems and left out; a store that
// fails is an error.
func Load(ctx context.Context, st objstore.Store, coordinator ed25519.PublicKey, pol formats.Policy, lim formats.Limits) (*Figures, error) {
	leader, helper, hsum, err := LoadHolders(ctx, st, coordinator)
	if errors.Is(err, ErrNoHolders) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	f := &Figures{Leader: leader.ID, Helper: helper.ID, HoldersSHA256: hsum, Values: map[formats.Period]map[string]*[formats.NumShapes]formats.Protected{},
		Practices: map[formats.Month]map[string]int{}, Sources: map[formats.Period]map[string]*Source{}, Digest: []string{"holders " + hsum}}
	infos, err := st.List(ctx, Prefix)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", Prefix, err)
	}
	var rounds []*loadedRound
	for _, info := range infos {
		if !strings.HasSuffix(info.Key, "/"+RoundName) {
			continue
		}
		lr, err := readRound(ctx, st, info.Key, leader.Sign, pol, lim)
		if err != nil {
			if errors.Is(err, objstore.ErrUnavailable) || errors.Is(err, objstore.ErrAccessDenied) {
				return nil, err
			}
			f.Problems = append(f.Problems, Problem{Key: info.Key, Kind: "secure_round", Reason: err.Error()})
			f.Digest = append(f.Digest, "bad-round "+info.Key)
			continue
		}
		f.Digest = append(f.Digest, "round "+info.Key+" "+lr.sha)
		rounds = append(rounds, lr)
	}
	// Newest first: by the signed creation time, then round id.
	slices.SortFunc(rounds, func(a, b *loadedRound) int {
		if c := b.r.Created.Compare(a.r.Created); c != 0 {
			return c
		}
		return strings.Compare(b.r.Round, a.r.Round)
	})
	type mm struct {
		month   formats.Month
		measure string
	}
	taken := map[mm]*loadedRound{}
	used := map[*loadedRound]map[string]bool{}
	for _, lr := range rounds {
		for _, seg := range lr.r.Segments {
			from, _ := formats.ParseMonth(seg.From)
			to, _ := formats.ParseMonth(seg.To)
			for _, blk := range lr.blocks[seg.Key] {
				if blk.Period.Kind != formats.KindMonth {
					continue
				}
				k := mm{blk.Period.Start, blk.Measure}
				if taken[k] != nil {
					continue
				}
				taken[k] = lr
				vals := [formats.NumShapes]formats.Protected(blk.Values)
				f.set(blk.Period, blk.Measure, &vals)
				if used[lr] == nil {
					used[lr] = map[string]bool{}
				}
				used[lr][blk.Period.Start.String()] = true
			}
			// A quarter or year stands only where this round is the newest for every month.
			for _, blk := range lr.blocks[seg.Key] {
				if blk.Period.Kind == formats.KindMonth || blk.Period.Start < from || blk.Period.End() > to {
					continue
				}
				current := true
				for m := blk.Period.Start; m <= blk.Period.End(); m++ {
					current = current && taken[mm{m, blk.Measure}] == lr
				}
				if current {
					vals := [formats.NumShapes]formats.Protected(blk.Values)
					f.set(blk.Period, blk.Measure, &vals)
					f.source(blk.Period, blk.Measure, &Source{Round: lr.r.Round})
				}
			}
		}
		for _, mr := range lr.r.Months {
			month, _ := formats.ParseMonth(mr.Month)
			for _, me := range mr.Measures {
				if taken[mm{month, me.Measure}] == lr {
					if f.Practices[month] == nil {
						f.Practices[month] = map[string]int{}
					}
					f.Practices[month][me.Measure] = me.Practices
					src := &Source{Round: lr.r.Round}
					for _, p := range mr.Practices {
						if !slices.Contains(me.Without, p) {
							src.Practices = append(src.Practices, p)
						}
					}
					slices.Sort(src.Practices)
					if mr.Runs != nil {
						src.Runs = map[string]string{}
						for _, p := range src.Practices {
							src.Runs[p] = mr.Runs[p]
						}
					}
					f.source(formats.MonthPeriod(month), me.Measure, src)
				}
			}
		}
	}
	for _, lr := range rounds {
		if months := used[lr]; len(months) > 0 {
			u := UsedRound{Round: lr.r.Round, Key: lr.key, SHA256: lr.sha}
			for m := range months {
				u.Months = append(u.Months, m)
			}
			slices.Sort(u.Months)
			f.Rounds = append(f.Rounds, u)
		}
	}
	slices.Sort(f.Digest)
	return f, nil
}

func (f *Figures) set(per formats.Period, measure string, vals *[formats.NumShapes]formats.Protected) {
	if f.Values[per] == nil {
		f.Values[per] = map[string]*[formats.NumShapes]formats.Protected{}
	}
	f.Values[per][measure] = vals
}

func (f *Figures) source(per formats.Period, measure string, src *Source) {
	if f.Sources[per] == nil {
		f.Sources[per] = map[string]*Source{}
	}
	f.Sources[per][measure] = src
}

// readRound reads and verifies one round's record and its figures files.
func readRound(ctx context.Context, st objstore.Store, key string, leader ed25519.PublicKey, pol formats.Policy, lim formats.Limits) (*loadedRound, error) {
	data, _, err := st.Get(ctx, key, formats.MaxEnvelopeBytes)
	if err != nil {
		return nil, err
	}
	r, err := VerifyRound(key, data, leader)
	if err != nil {
		return nil, err
	}
	if r.Policy != pol.Name {
		return nil, fmt.Errorf("%s: round %s applied %s; the federation's policy is %s", key, r.Round, r.Policy, pol.Name)
	}
	lr := &loadedRound{r: r, key: key, sha: SHA256(data), blocks: map[string][]formats.Block{}}
	for _, seg := range r.Segments {
		body, _, err := st.Get(ctx, seg.Key, max(seg.Size, 1))
		if err != nil {
			return nil, err
		}
		if int64(len(body)) != seg.Size || SHA256(body) != seg.SHA256 {
			return nil, fmt.Errorf("%s: does not match the size or SHA-256 its signed round record gives; it was changed after the round", seg.Key)
		}
		sub, blocks, err := formats.ReadBlocks(body, lim)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", seg.Key, err)
		}
		if sub.Practice != Practice || sub.RunID != r.Round || sub.From.String() != seg.From || sub.To.String() != seg.To || sub.Policy != r.Policy {
			return nil, fmt.Errorf("%s: the file's practice, round, months or policy differ from its round record's", seg.Key)
		}
		lr.blocks[seg.Key] = blocks
	}
	return lr, nil
}

// SignRound validates r and returns its signed record.
func SignRound(r *Round, leader ed25519.PrivateKey) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	payload, err := jsonIndent(r)
	if err != nil {
		return nil, err
	}
	return formats.Seal(PayloadRound, payload, leader)
}

// VerifyRound checks a round record stored at key against the leader's signing key.
func VerifyRound(key string, data []byte, leader ed25519.PublicKey) (*Round, error) {
	env, err := formats.ParseEnvelope(data)
	if err != nil {
		return nil, formats.WithObject(err, key)
	}
	payload, err := env.Open(PayloadRound, leader)
	if err != nil {
		return nil, fmt.Errorf("%s: not signed by the leader holder named in %s: %w", key, HoldersKey, err)
	}
	var r Round
	if err := Strict(payload, &r); err != nil {
		return nil, fmt.Errorf("%s: not a round record: %w", key, err)
	}
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if key != RoundKey(r.Round) {
		return nil, fmt.Errorf("%s: the record is of round %s, which belongs at %s; a record moved is refused", key, r.Round, RoundKey(r.Round))
	}
	return &r, nil
}

// Validate checks a round record's own consistency.
func (r *Round) Validate() error {
	if r.FormatVersion != FormatVersion {
		return fmt.Errorf("round record version %d, this build reads %d", r.FormatVersion, FormatVersion)
	}
	if err := formats.ValidateRunID(r.Round); err != nil {
		return err
	}
	if r.Created.IsZero() || r.Created.After(time.Now().Add(24*time.Hour)) {
		return errors.New("the round's creation time is missing or in the future")
	}
	if _, err := formats.PolicyByName(r.Policy); err != nil {
		return err
	}
	for _, seg := range r.Segments {
		from, err1 := formats.ParseMonth(seg.From)
		to, err2 := formats.ParseMonth(seg.To)
		if err1 != nil || err2 != nil || to < from || seg.Key != FiguresKey(r.Round, from, to) || seg.Size <= 0 {
			return fmt.Errorf("segment %s of round %s is not one of the round's figures files", seg.Key, r.Round)
		}
	}
	return nil
}
