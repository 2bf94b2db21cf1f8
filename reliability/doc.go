// Package reliability holds whole-process reliability tests: they build the
// `ringfence` binary, run `ringfence serve` as a real process on a real store
// (SQLite in a temporary data directory, or a fresh PostgreSQL database),
// drive it over HTTP, kill and restart it, and check from the outside what
// it promised: acknowledged writes survive, nothing is stored twice, the
// audit chain verifies.
//
// There is no code here besides the tests. harness_test.go is the shared
// harness (data directory and store, CLI verbs, start / SIGKILL / restart of
// the server, an HTTP client holding a tenant's API key); each kind of test
// has a file of its own (crash_test.go: SIGKILL under load).
//
// The PostgreSQL tests need a server at 127.0.0.1:5432 (or
// RINGFENCE_TEST_POSTGRES); without one they skip, unless CI=true. -short
// skips the package's tests (unless CI=true); RINGFENCE_LONG=1 runs the long
// versions (for example 20 kill-and-restart loops per store instead of 3).
package reliability
