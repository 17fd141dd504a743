package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/tributary-health/tributary/coordinator/server"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/cli"
)

func serveCmd() *cobra.Command {
	var store, tokensPath, listen, certFile, keyFile string
	var policy policyFlag
	var keys keyFlags
	var plain bool
	var interval time.Duration
	var keep int
	c := &cobra.Command{
		Use:   "serve --store URL (--key COORDINATOR_KEY | --coordinator-pub PUB) --tokens FILE [--listen ADDR] [--tls-cert CERT --tls-key KEY]",
		Short: "Watch the store, re-combine as submissions arrive, serve the API and the dashboard",
		Long: `Serve combines whenever the store changes (on the store's notifications, and listing it
every --interval), and serves the dashboard and the HTTP API (described at
/api/openapi.json) to holders of a token made with 'tributary-coordinator tokens add'.
It serves plain HTTP only on a loopback address unless --allow-plain-http is given.`,
		Example: "  tributary-coordinator serve --store file:///srv/tributary --key coordinator.key --tokens /etc/tributary/tokens.json --listen 127.0.0.1:8080",
		Args:    cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tokensPath == "" {
				return cli.Usagef("no tokens file given; make one with 'tributary-coordinator tokens add --file FILE --name NAME --role lead' and pass --tokens FILE")
			}
			if (certFile == "") != (keyFile == "") {
				return cli.Usagef("give both --tls-cert and --tls-key, or neither")
			}
			pol := policy.policy()
			pub, err := keys.public()
			if err != nil {
				return err
			}
			return serve(cmd.Context(), serveOptions{storeURL: storeURL(store), tokens: tokensPath, listen: listen, cert: certFile, key: keyFile,
				plain: plain, interval: interval, keep: keep, policy: pol, pub: pub}, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := c.Flags()
	addStoreFlag(f, &store)
	keys.add(f, false)
	f.StringVar(&tokensPath, "tokens", "", "the tokens file made by 'tributary-coordinator tokens add' (required)")
	f.StringVar(&listen, "listen", "127.0.0.1:8080", "address to serve on")
	f.StringVar(&certFile, "tls-cert", "", "TLS certificate (PEM); with --tls-key, serve HTTPS")
	f.StringVar(&keyFile, "tls-key", "", "TLS private key (PEM)")
	f.BoolVar(&plain, "allow-plain-http", false, "serve plain HTTP on an address other than loopback (tokens would cross the network in clear)")
	f.DurationVar(&interval, "interval", 10*time.Second, "how often to list the store for new submissions")
	addKeepFlag(f, &keep)
	addPolicyFlag(f, &policy)
	return c
}

type serveOptions struct {
	storeURL, tokens, listen, cert, key string
	plain                               bool
	interval                            time.Duration
	keep                                int
	policy                              formats.Policy
	pub                                 ed25519.PublicKey
}

func serve(ctx context.Context, o serveOptions, stdout, stderr io.Writer) error {
	st, err := openStore(ctx, o.storeURL)
	if err != nil {
		return err
	}
	toks, err := server.OpenTokens(o.tokens)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", o.listen, err)
	}
	defer ln.Close()
	tls := o.cert != ""
	if host := ln.Addr().(*net.TCPAddr).IP; !tls && !host.IsLoopback() && !o.plain {
		return fmt.Errorf("refusing plain HTTP on %s, which is reachable from other machines: give --tls-cert and --tls-key, or --allow-plain-http behind a TLS proxy", ln.Addr())
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv, err := server.New(server.Options{Store: st, Coordinator: o.pub, Tokens: toks, Policy: o.policy, Interval: o.interval, Keep: o.keep, Logger: logger})
	if err != nil {
		return err
	}
	// Timeouts, connection limits per client and request limits: a client without a token
	// cannot hold the server open, and none can starve a lead (see server.Limits).
	httpSrv := srv.HTTPServer(logger)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		srv.Run(ctx)
	}()
	scheme := "http"
	if tls {
		scheme = "https"
	}
	fmt.Fprintf(stdout, "serving the federation's figures at %s://%s/ (API description at /api/openapi.json)\n", scheme, ln.Addr())
	errc := make(chan error, 1)
	go func() {
		if tls {
			errc <- httpSrv.ServeTLS(srv.Listen(ln), o.cert, o.key)
		} else {
			errc <- httpSrv.Serve(srv.Listen(ln))
		}
	}()
	select {
	case err = <-errc:
	case <-ctx.Done():
		shut, done := context.WithTimeout(context.Background(), 5*time.Second)
		err = httpSrv.Shutdown(shut)
		done()
		<-errc
	}
	cancel()
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
