package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/tributary-health/tributary/coordinator/server"
	"github.com/tributary-health/tributary/formats"
)

func serveCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", "serve --store URL (--key COORDINATOR_KEY | --coordinator-pub PUB) --tokens FILE [--listen ADDR] [--tls-cert CERT --tls-key KEY]", stderr)
	storeURL := fs.String("store", storeFlag(), "the federation's store: file:///dir or s3://bucket?endpoint=host:port")
	keyPath := fs.String("key", "", "the coordinator's key, private or public: it verifies the registry")
	pubPath := fs.String("coordinator-pub", "", "the coordinator's public key, instead of --key")
	tokensPath := fs.String("tokens", "", "the tokens file made by 'tributary-coordinator tokens add' (required)")
	listen := fs.String("listen", "127.0.0.1:8080", "address to serve on")
	certFile := fs.String("tls-cert", "", "TLS certificate (PEM); with --tls-key, serve HTTPS")
	keyFile := fs.String("tls-key", "", "TLS private key (PEM)")
	plain := fs.Bool("allow-plain-http", false, "serve plain HTTP on an address other than loopback (tokens would cross the network in clear)")
	interval := fs.Duration("interval", 10*time.Second, "how often to list the store for new submissions")
	policy := fs.String("policy", formats.DefaultPolicy.Name, "the federation's disclosure policy: "+policyNames())
	if err := parse(fs, args); err != nil {
		return err
	}
	if *tokensPath == "" {
		return errors.New("no tokens file given; make one with 'tributary-coordinator tokens add --file FILE --name NAME --role lead' and pass --tokens FILE")
	}
	if (*certFile == "") != (*keyFile == "") {
		return errors.New("give both --tls-cert and --tls-key, or neither")
	}
	pol, err := formats.PolicyByName(*policy)
	if err != nil {
		return err
	}
	pub, err := publicKey(*keyPath, *pubPath)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, *storeURL)
	if err != nil {
		return err
	}
	toks, err := server.OpenTokens(*tokensPath)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	defer ln.Close()
	tls := *certFile != ""
	if host := ln.Addr().(*net.TCPAddr).IP; !tls && !host.IsLoopback() && !*plain {
		return fmt.Errorf("refusing plain HTTP on %s, which is reachable from other machines: give --tls-cert and --tls-key, or --allow-plain-http behind a TLS proxy", ln.Addr())
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	notify, err := server.StoreNotifications(ctx, *storeURL, "", "", logger)
	if err != nil {
		logger.Warn("no store notifications; listing on an interval only", "interval", *interval, "reason", err)
	}
	srv, err := server.New(server.Options{Store: st, Coordinator: pub, Tokens: toks, Policy: pol, Interval: *interval, Notify: notify, Logger: logger})
	if err != nil {
		return err
	}
	httpSrv := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
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
			errc <- httpSrv.ServeTLS(ln, *certFile, *keyFile)
		} else {
			errc <- httpSrv.Serve(ln)
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
