// Package pgtest gives tests a fresh PostgreSQL database of their own.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The tests run against a real server. RINGFENCE_TEST_POSTGRES names a
// database to connect to for making and dropping the test databases; each
// test gets a fresh database of its own, so parallel runs do not collide.
const dsnEnv = "RINGFENCE_TEST_POSTGRES"

const defaultDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// NewDatabase makes an empty database, dropped when tb ends, and returns its
// DSN. If the server cannot be reached it skips tb, unless CI=true: CI must
// run these tests.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	admin := cmpOr(os.Getenv(dsnEnv), defaultDSN)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("PostgreSQL unreachable (set %s to a reachable server's DSN): %v", dsnEnv, err)
		}
		tb.Skipf("PostgreSQL unreachable; set %s to a server's DSN to run this test (CI=true makes it fail): %v", dsnEnv, err)
	}
	defer conn.Close(ctx)

	b := make([]byte, 8)
	rand.Read(b)
	name := "rf_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+name+` TEMPLATE template0`); err != nil {
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			tb.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			tb.Errorf("drop test database %s: %v", name, err)
		}
	})
	return withDatabase(tb, admin, name)
}

// withDatabase returns dsn naming database name instead.
func withDatabase(tb testing.TB, dsn, name string) string {
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return dsn + " dbname=" + name // key=value: the last setting wins
	}
	u, err := url.Parse(dsn)
	if err != nil {
		tb.Fatalf("%s: %v", dsnEnv, err)
	}
	u.Path = "/" + name
	return u.String()
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
