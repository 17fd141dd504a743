package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tributary-health/tributary/coordinator/provision"
	"github.com/tributary-health/tributary/internal/cli"
)

// Environment variables holding the MinIO administrator's keys for the provisioning commands.
const (
	envAdminAccessKey = "TRIBUTARY_ADMIN_ACCESS_KEY"
	envAdminSecretKey = "TRIBUTARY_ADMIN_SECRET_KEY"
)

const accessLong = `URL is the federation's store, s3://bucket?endpoint=host:port[&ca=/path/ca.pem]
(default $TRIBUTARY_STORE). The MinIO administrator's keys come from
TRIBUTARY_ADMIN_ACCESS_KEY and TRIBUTARY_ADMIN_SECRET_KEY. FILE (mode 0600, never
overwritten; "-" for standard output) gets the new keys as TRIBUTARY_S3_ACCESS_KEY and
TRIBUTARY_S3_SECRET_KEY, ready for the agent's EnvironmentFile= and, sourced with '. FILE',
for a shell. Provisioning needs the federation's bucket: --create-bucket makes it.`

// accessFlags are the flags of the practice and coordinator-user groups.
type accessFlags struct {
	adminURL, practice, out string
	createBucket            bool
}

// practiceCmd provisions, rotates and revokes a practice's store credentials.
func practiceCmd() *cobra.Command {
	var f accessFlags
	g := cli.Group("practice", "Make, rotate and revoke a practice's least-privilege store user (MinIO)",
		"Practice manages a practice's store user on the federation's MinIO server: it may only write\nunder practices/ID/, and cannot read, list or delete anything.\n\n"+accessLong)
	pf := g.PersistentFlags()
	addAdminURLFlag(pf, &f.adminURL)
	pf.StringVar(&f.practice, "practice", "", "the practice's id (its ODS code)")
	g.AddCommand(
		accessVerb(&f, "practice", "provision", "Make a store user that may only write under practices/ID/, and write its keys to FILE",
			"  tributary-coordinator practice provision --admin-url 's3://tributary?endpoint=minio.example.org:9000' --practice A81001 --out A81001.env"),
		accessVerb(&f, "practice", "rotate", "Replace the practice's store user with a new one; the old keys stop working at once", ""),
		accessVerb(&f, "practice", "revoke", "Remove the practice's store users and policy; its keys stop working at once", ""),
		accessVerb(&f, "practice", "users", "List the access keys of the practice's store users", ""),
	)
	return g
}

// coordinatorUserCmd provisions and rotates the coordinator's store credentials.
func coordinatorUserCmd() *cobra.Command {
	var f accessFlags
	g := cli.Group("coordinator-user", "Make and rotate the coordinator's own store user (MinIO)",
		"Coordinator-user manages the coordinator's store user: it may list and read practices/, and\nread and write federation/.\n\n"+accessLong)
	addAdminURLFlag(g.PersistentFlags(), &f.adminURL)
	g.AddCommand(
		accessVerb(&f, "coordinator-user", "provision", "Make the coordinator's store user and write its keys to FILE", ""),
		accessVerb(&f, "coordinator-user", "rotate", "Replace the coordinator's store user with a new one; the old keys stop working at once", ""),
	)
	return g
}

func addAdminURLFlag(fs *pflag.FlagSet, url *string) {
	fs.StringVar(url, "admin-url", "", "the federation's store, s3://bucket?endpoint=host:port (default $"+envStore+")")
}

func accessVerb(f *accessFlags, who, verb, short, example string) *cobra.Command {
	makesKeys := verb == "provision" || verb == "rotate"
	use := verb + " --admin-url URL"
	if who == "practice" {
		use += " --practice ID"
	}
	if makesKeys {
		use += " --out FILE"
	}
	c := &cobra.Command{
		Use: use, Short: short, Example: example, Args: cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return accessRun(cmd.Context(), f, who, verb, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	if makesKeys {
		c.Flags().StringVar(&f.out, "out", "", `file for the new keys (mode 0600, must not exist); "-" for standard output`)
	}
	if verb == "provision" {
		c.Flags().BoolVar(&f.createBucket, "create-bucket", false, "make the federation's bucket if it does not exist (otherwise a missing bucket is an error)")
	}
	return c
}

func accessRun(ctx context.Context, f *accessFlags, who, verb string, stdout, stderr io.Writer) error {
	if who == "practice" && f.practice == "" {
		return cli.Usagef("give the practice with --practice")
	}
	makesKeys := verb == "provision" || verb == "rotate"
	if makesKeys && f.out == "" {
		return cli.Usagef("give --out FILE for the new keys (or --out - to print them)")
	}
	adminURL := storeURL(f.adminURL)
	if adminURL == "" || !strings.HasPrefix(adminURL, "s3://") {
		return cli.Usagef("give the store with --admin-url s3://bucket?endpoint=host:port (users are made on an S3 server, not a directory)")
	}
	admin, err := provision.Open(adminURL, os.Getenv(envAdminAccessKey), os.Getenv(envAdminSecretKey))
	if err != nil {
		return err
	}
	policy := admin.CoordinatorPolicyName()
	subject := "the coordinator"
	if who == "practice" {
		policy = admin.PracticePolicyName(f.practice)
		subject = "practice " + f.practice
	}
	var creds provision.Credentials
	switch verb {
	case "provision":
		// Users and policies can be made without the bucket, but nothing could be uploaded.
		ok, err := admin.BucketExists(ctx)
		if err != nil {
			return err
		}
		if !ok && !f.createBucket {
			return fmt.Errorf("bucket %q does not exist on the server; make it by adding --create-bucket (or with MinIO's client: mc mb ALIAS/%s), then provision again", admin.Bucket(), admin.Bucket())
		}
		if !ok {
			if err := admin.CreateBucket(ctx); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "made bucket %s\n", admin.Bucket())
		}
		if who == "practice" {
			creds, err = admin.Practice(ctx, f.practice)
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
	env := envFile(subject, who+" "+verb, creds)
	if f.out == "-" {
		_, err := io.WriteString(stdout, env)
		return err
	}
	if err := writeNew(f.out, []byte(env), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (keep it secret; give it to %s's agent only)\n", f.out, subject)
	return nil
}

// envFile is the file of a store user's keys. Its assignment lines are what systemd's
// EnvironmentFile= reads; the last line, which systemd skips (it has no '='), exports them
// when a shell sources the file ('. store.env'), so 'run --once' by hand sees them too.
func envFile(subject, made string, creds provision.Credentials) string {
	return fmt.Sprintf(`# Store keys for %s, made by 'tributary-coordinator %s'. Keep this file secret.
# For the agent's service: EnvironmentFile=/etc/tributary/store.env
# By hand: . /etc/tributary/store.env && tributary-agent run --once --config /etc/tributary/agent.toml
TRIBUTARY_S3_ACCESS_KEY=%s
TRIBUTARY_S3_SECRET_KEY=%s
export TRIBUTARY_S3_ACCESS_KEY TRIBUTARY_S3_SECRET_KEY
`, subject, made, creds.AccessKey, creds.SecretKey)
}
