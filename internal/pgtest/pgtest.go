// Package pgtest gives tests a real PostgreSQL server: the one .ci/postgres.sh starts, named by
// TRIBUTARY_TEST_PG_URL (the URL of a database for a superuser). Without it a test skips on a
// developer's machine and fails under CI=true, where .ci/test must have started it. Each test
// gets its own database, dropped when it ends, and can make roles that may only read.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the environment variable holding the server's URL.
const EnvURL = "TRIBUTARY_TEST_PG_URL"

// URL returns the superuser URL of the test server's database, or skips (fails under
// CI=true) when there is none.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: CI must run the tests through .ci/test, which starts PostgreSQL (.ci/postgres.sh)", EnvURL)
		}
		t.Skipf("no PostgreSQL: %s is not set (bash .ci/postgres.sh start prints an env file that sets it; apt-get install postgresql first)", EnvURL)
	}
	return u
}

func name(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// withDatabase returns u with its database (path) set to db.
func withDatabase(u, db string) string {
	p, err := url.Parse(u)
	if err != nil {
		panic(err)
	}
	p.Path = "/" + db
	return p.String()
}

// withUser returns u with its user and password replaced.
func withUser(u, user, pass string) string {
	p, err := url.Parse(u)
	if err != nil {
		panic(err)
	}
	p.User = url.UserPassword(user, pass)
	return p.String()
}

// Connect connects to u, closing the connection when the test ends.
func Connect(t testing.TB, u string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatalf("connect to the test PostgreSQL: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// Exec runs SQL statements on c, failing the test on an error.
func Exec(t testing.TB, c *pgx.Conn, sql ...string) {
	t.Helper()
	for _, s := range sql {
		if _, err := c.Exec(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// Database is a database of its own on the test server.
type Database struct {
	Name     string
	AdminURL string // a superuser's URL of the database
	admin    string // the server's own URL
}

// NewDatabase creates an empty database; Drop removes it. Tests call it through
// NewTestDatabase, or once per package from TestMain.
func NewDatabase(admin string) (*Database, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, admin)
	if err != nil {
		return nil, fmt.Errorf("connect to the test PostgreSQL: %w", err)
	}
	defer c.Close(context.Background())
	db := name("t_")
	if _, err := c.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		return nil, err
	}
	return &Database{Name: db, AdminURL: withDatabase(admin, db), admin: admin}, nil
}

// Drop removes the database and the roles ReadOnlyRole made in it.
func (d *Database) Drop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, d.admin)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+d.Name+" WITH (FORCE)"); err != nil {
		return err
	}
	rows, err := c.Query(ctx, "SELECT rolname FROM pg_roles WHERE rolname LIKE $1", "ro_"+d.Name+"_%")
	if err != nil {
		return err
	}
	roles, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, r := range roles {
		if _, err := c.Exec(ctx, "DROP ROLE "+pgx.Identifier{r}.Sanitize()); err != nil {
			return err
		}
	}
	return nil
}

// NewTestDatabase is NewDatabase on the test server, dropped when the test ends.
func NewTestDatabase(t testing.TB) *Database {
	t.Helper()
	d, err := NewDatabase(URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Drop(); err != nil {
			t.Errorf("drop test database: %v", err)
		}
	})
	return d
}

// ReadOnlyRole creates a login role that may connect to the database, use the schemas and
// SELECT from the tables in them (those there now), and nothing else, and returns its URL.
// It is dropped with the database.
func (d *Database) ReadOnlyRole(schemas ...string) (string, error) {
	return d.Role(func(role string) []string {
		var grants []string
		for _, s := range schemas {
			q := pgx.Identifier{s}.Sanitize()
			grants = append(grants, "GRANT USAGE ON SCHEMA "+q+" TO "+role, "GRANT SELECT ON ALL TABLES IN SCHEMA "+q+" TO "+role)
		}
		return grants
	})
}

// Role creates a login role with CONNECT on the database and the grants grants(role) lists,
// and returns its URL. It is dropped with the database.
func (d *Database) Role(grants func(role string) []string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, d.AdminURL)
	if err != nil {
		return "", err
	}
	defer c.Close(context.Background())
	role := name("ro_" + d.Name + "_")
	pass := name("p")
	stmts := append([]string{
		"CREATE ROLE " + role + " LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD '" + pass + "'",
		"REVOKE ALL ON DATABASE " + d.Name + " FROM PUBLIC",
		"GRANT CONNECT ON DATABASE " + d.Name + " TO " + role,
	}, grants(role)...)
	for _, s := range stmts {
		if _, err := c.Exec(ctx, s); err != nil {
			return "", fmt.Errorf("%s: %w", s, err)
		}
	}
	return withUser(d.AdminURL, role, pass), nil
}
