// Package secaggtest helps tests of secure aggregation: it plays both holders at once on a
// run's two shares files, which only tests may do. Two holders who pooled their keys and the
// practices' shares files could do the same; that is why the holders must be independent.
package secaggtest

import (
	"crypto/rand"
	"fmt"

	"github.com/cloudflare/circl/vdaf/prio3/sumvec"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/secagg"
)

// Holders makes a leader ("federation") and a helper ("icb") with fresh keys.
func Holders() (leader, helper *secagg.HolderKey, to [2]secagg.Recipient, err error) {
	if leader, err = secagg.GenerateHolder("federation", secagg.RoleLeader); err != nil {
		return
	}
	if helper, err = secagg.GenerateHolder("icb", secagg.RoleHelper); err != nil {
		return
	}
	return leader, helper, [2]secagg.Recipient{leader.Public().Recipient(), helper.Public().Recipient()}, nil
}

// Reveal decrypts every report of a run's two shares files with both holders' keys, runs
// Prio3 preparation for it and returns each month's vector.
func Reveal(keys [2]*secagg.HolderKey, files [2][]byte) (map[string][]uint64, error) {
	var sh [2]*formats.Shares
	for i, data := range files {
		s, err := formats.ReadShares(data)
		if err != nil {
			return nil, err
		}
		sh[i] = s
	}
	v, err := secagg.New(sh[0].Header.VDAF)
	if err != nil {
		return nil, err
	}
	var vk sumvec.VerifyKey
	if _, err := rand.Read(vk[:]); err != nil {
		return nil, err
	}
	out := map[string][]uint64{}
	for i, r := range sh[0].Header.Reports {
		var states [2]*sumvec.PrepState
		var shares [2]sumvec.PrepShare
		for a := range 2 {
			is, err := v.OpenInputShare(keys[a].HPKE, sh[a], i)
			if err != nil {
				return nil, fmt.Errorf("%s, holder %s: %w", r.Month, keys[a].ID, err)
			}
			nonce, err := secagg.NonceOf(sh[a].Header.Reports[i].Nonce)
			if err != nil {
				return nil, err
			}
			ps, err := v.PublicShareOf(sh[a].Header.Reports[i].PublicShare)
			if err != nil {
				return nil, err
			}
			st, share, err := v.SV.PrepInit(&vk, &nonce, uint8(a), ps, is)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", r.Month, err)
			}
			states[a], shares[a] = st, *share
		}
		msg, err := v.SV.PrepSharesToPrep(shares[:])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.Month, err)
		}
		aggs := []sumvec.AggShare{v.SV.AggregateInit(), v.SV.AggregateInit()}
		for a := range 2 {
			o, err := v.SV.PrepNext(states[a], msg)
			if err != nil {
				return nil, err
			}
			v.SV.AggregateUpdate(&aggs[a], o)
		}
		got, err := v.SV.Unshard(aggs, 1)
		if err != nil {
			return nil, err
		}
		out[r.Month] = *got
	}
	return out, nil
}
