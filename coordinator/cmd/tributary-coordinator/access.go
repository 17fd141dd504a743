package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/tributary-health/tributary/coordinator/provision"
)

// Environment variables holding the MinIO administrator's keys for the provisioning commands.
const (
	envAdminAccessKey = "TRIBUTARY_ADMIN_ACCESS_KEY"
	envAdminSecretKey = "TRIBUTARY_ADMIN_SECRET_KEY"
)

const practiceUsage = `Usage:
  tributary-coordinator practice provision --admin-url URL --practice ID --out FILE
      make a store user that may only write under practices/ID/, and write its keys to FILE
  tributary-coordinator practice rotate --admin-url URL --practice ID --out FILE
      replace the practice's store user with a new one; the old keys stop working at once
  tributary-coordinator practice revoke --admin-url URL --practice ID
      remove the practice's store users and policy; its keys stop working at once
  tributary-coordinator practice users --admin-url URL --practice ID
      list the access keys of the practice's store users
  tributary-coordinator coordinator-user provision|rotate --admin-url URL --out FILE
      the coordinator's own store user: list and read practices/, read and write federation/

URL is the federation's store, s3://bucket?endpoint=host:port[&ca=/path/ca.pem]. The MinIO
administrator's keys come from TRIBUTARY_ADMIN_ACCESS_KEY and TRIBUTARY_ADMIN_SECRET_KEY.
FILE (mode 0600, never overwritten; "-" for standard output) gets the new keys as
TRIBUTARY_S3_ACCESS_KEY=... and TRIBUTARY_S3_SECRET_KEY=... lines, ready for the agent's
EnvironmentFile or the [s3] section of its configuration.
`

// practiceCmd provisions, rotates and revokes a practice's store credentials.
func practiceCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return accessCmd(ctx, "practice", args, stdout, stderr)
}

// coordinatorUserCmd provisions and rotates the coordinator's store credentials.
func coordinatorUserCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return accessCmd(ctx, "coordinator-user", args, stdout, stderr)
}

func accessCmd(ctx context.Context, who string, args []string, stdout, stderr io.Writer) error {
	verbs := map[string]bool{"provision": true, "rotate": true, "revoke": who == "practice", "users": who == "practice"}
	if len(args) == 0 || !verbs[args[0]] {
		fmt.Fprint(stderr, practiceUsage)
		return errUsage
	}
	verb := args[0]
	fs := newFlags(who+" "+verb, who+" "+verb+" --admin-url URL ...", stderr)
	adminURL := fs.String("admin-url", storeFlag(), "the federation's store, s3://bucket?endpoint=host:port (default $TRIBUTARY_STORE)")
	var practice *string
	if who == "practice" {
		practice = fs.String("practice", "", "the practice's id (its ODS code)")
	}
	out := fs.String("out", "", `file for the new keys (mode 0600, must not exist); "-" for standard output`)
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if practice != nil && *practice == "" {
		fmt.Fprintf(stderr, "%s %s: give the practice with --practice\n", who, verb)
		return errUsage
	}
	makesKeys := verb == "provision" || verb == "rotate"
	if makesKeys && *out == "" {
		fmt.Fprintf(stderr, "%s %s: give --out FILE for the new keys (or --out - to print them)\n", who, verb)
		return errUsage
	}
	if *adminURL == "" || !strings.HasPrefix(*adminURL, "s3://") {
		fmt.Fprintf(stderr, "%s %s: give the store with --admin-url s3://bucket?endpoint=host:port (users are made on an S3 server, not a directory)\n", who, verb)
		return errUsage
	}
	admin, err := provision.Open(*adminURL, os.Getenv(envAdminAccessKey), os.Getenv(envAdminSecretKey))
	if err != nil {
		return err
	}
	policy := admin.CoordinatorPolicyName()
	subject := "the coordinator"
	if practice != nil {
		policy = admin.PracticePolicyName(*practice)
		subject = "practice " + *practice
	}
	var creds provision.Credentials
	switch verb {
	case "provision":
		if practice != nil {
			creds, err = admin.Practice(ctx, *practice)
		} else {
			creds, err = admin.Coordinator(ctx)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "made store user %s for %s (policy %s)\n", creds.AccessKey, subject, policy)
	case "rotate":
		var old []string
		creds, old, err = admin.Rotate(ctx, policy)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "made store user %s for %s; removed %s, whose keys no longer work\n", creds.AccessKey, subject, strings.Join(old, ", "))
	case "revoke":
		gone, err := admin.Revoke(ctx, policy)
		if err != nil {
			return err
		}
		if len(gone) == 0 {
			fmt.Fprintf(stdout, "%s had no store user; policy %s removed\n", subject, policy)
		} else {
			fmt.Fprintf(stdout, "removed store users %s of %s and policy %s; their keys no longer work\n", strings.Join(gone, ", "), subject, policy)
		}
		fmt.Fprintln(stdout, "to stop the coordinator accepting the practice's signed files too, run: tributary-coordinator registry revoke")
		return nil
	case "users":
		users, err := admin.Users(ctx, policy)
		if err != nil {
			return err
		}
		for _, u := range users {
			fmt.Fprintln(stdout, u)
		}
		return nil
	}
	env := fmt.Sprintf("# store keys for %s, made by tributary-coordinator %s %s\nTRIBUTARY_S3_ACCESS_KEY=%s\nTRIBUTARY_S3_SECRET_KEY=%s\n", subject, who, verb, creds.AccessKey, creds.SecretKey)
	if *out == "-" {
		_, err := io.WriteString(stdout, env)
		return err
	}
	if err := writeNew(*out, []byte(env), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (keep it secret; give it to %s's agent only)\n", *out, subject)
	return nil
}
