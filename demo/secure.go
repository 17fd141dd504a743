package demo

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tributary-health/tributary/agent/config"
	"github.com/tributary-health/tributary/coordinator/holder"
	"github.com/tributary-health/tributary/coordinator/secure"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/secagg"
)

// The demo's two holders of secure aggregation.
const (
	LeaderID = "federation"
	HelperID = "icb"
)

// SecureResult is what the demo's round of secure aggregation did.
type SecureResult struct {
	Leader, Helper *holder.Result
	Figures        *secure.Figures
}

// secureHolders makes (or reads) the two holders' keys under work/holders and names them
// in the store's federation/holders.json, signed with the coordinator's key.
func secureHolders(ctx context.Context, st objstore.Store, work string, coord ed25519.PrivateKey) ([2]*secagg.HolderKey, error) {
	var keys [2]*secagg.HolderKey
	for i, h := range [][2]string{{LeaderID, secagg.RoleLeader}, {HelperID, secagg.RoleHelper}} {
		path := filepath.Join(work, "holders", h[0], h[0]+".holder.key")
		data, err := os.ReadFile(path)
		switch {
		case errors.Is(err, os.ErrNotExist):
			k, err := secagg.GenerateHolder(h[0], h[1])
			if err != nil {
				return keys, err
			}
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return keys, err
			}
			if err := os.WriteFile(path, secagg.MarshalPrivate(k), 0o600); err != nil {
				return keys, err
			}
			keys[i] = k
		case err != nil:
			return keys, err
		default:
			if keys[i], err = secagg.ParsePrivate(data); err != nil {
				return keys, fmt.Errorf("%s: %w", path, err)
			}
		}
	}
	hf, err := secure.SignHolders(keys[0].Public(), keys[1].Public(), coord, time.Now())
	if err != nil {
		return keys, err
	}
	_, err = st.Put(ctx, secure.HoldersKey, hf)
	return keys, err
}

// secureConfig is the [secure_aggregation] section of every practice's agent.
func secureConfig(keys [2]*secagg.HolderKey) config.SecureAggregation {
	var sa config.SecureAggregation
	for _, k := range keys {
		f := k.Public().File()
		sa.Holders = append(sa.Holders, config.Holder{ID: f.Holder, Role: f.Role, PublicKey: f.HPKEPublicKey})
	}
	return sa
}

// secureRound runs one round with both holders on this machine, each with its own state
// folder under work/holders, exchanging their messages through the store, and reads what the
// leader published.
func secureRound(ctx context.Context, o Options, st objstore.Store, work string, coord ed25519.PublicKey, keys [2]*secagg.HolderKey) (*SecureResult, error) {
	var hs [2]*holder.Holder
	for i, k := range keys {
		state, err := holder.OpenState(filepath.Join(work, "holders", k.ID, "state"), k.ID)
		if err != nil {
			return nil, err
		}
		defer state.Close()
		hs[i] = &holder.Holder{Key: k, Peer: keys[1-i].Public(), Coordinator: coord, Store: st, State: state,
			Poll: 20 * time.Millisecond, Wait: 10 * time.Minute, Log: o.Log.With("holder", k.ID)}
	}
	round := formats.NewRunID(time.Now())
	res := &SecureResult{}
	var herr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		res.Helper, herr = hs[1].Help(ctx, holder.HelpOptions{Round: round})
	}()
	var lerr error
	res.Leader, lerr = hs[0].Lead(ctx, holder.LeadOptions{Round: round})
	wg.Wait()
	if err := errors.Join(lerr, herr); err != nil {
		return nil, fmt.Errorf("demo: secure aggregation: %w", err)
	}
	for _, r := range res.Leader.Rejected {
		fmt.Fprintf(o.Out, "secure aggregation rejected practice %s's report %s [%s]: %s\n", r.Practice, r.Month, r.Kind, r.Reason)
	}
	fmt.Fprintf(o.Out, "secure aggregation: holders %s and %s verified and summed %d report(s) in round %s\n", LeaderID, HelperID, res.Leader.Reports, round)
	figs, err := secure.Load(ctx, st, coord, formats.DefaultPolicy, formats.DefaultLimits)
	if err != nil {
		return nil, err
	}
	res.Figures = figs
	return res, nil
}
