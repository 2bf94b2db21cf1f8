package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzReadInvite feeds arbitrary files to the SIP message reader of
// `ringfence shaken verify --invite FILE`. Checks: it never panics; every
// Identity value it returns is text of the file; caller and dialled are
// no longer than the file.
// (Folded header lines are not joined: a folded Identity header is read
// up to its first line; see docs/fuzzing.md.) Seeds: the RFC 4475 and
// RFC 5118 torture messages (when ../shared is there), a SHAKEN INVITE
// and testdata/fuzz/FuzzReadInvite.
func FuzzReadInvite(f *testing.F) {
	files, _ := filepath.Glob("../../../shared/testdata/sip-torture/rfc*/*.dat")
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("INVITE sip:+12155550199@sp.example;user=phone SIP/2.0\r\n" +
		"From: <sip:+12155550100@sp.example>;tag=1\r\n" +
		"P-Asserted-Identity: <tel:+12155550100>\r\n" +
		"Identity: eyJhbGciOiJFUzI1NiJ9.e30.c2ln;info=<https://cert.example/sp.pem>;alg=ES256;ppt=shaken\r\n" +
		"y: a.b.c\r\n\r\nIdentity: not-a-header\r\n"))
	f.Add([]byte("INVITE tel:02071838750 SIP/2.0\nf: \"x\" <sip:anonymous@anonymous.invalid>\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		identity, caller, dialled := readInvite(b)
		for _, id := range identity {
			if !bytes.Contains(b, []byte(id)) {
				t.Fatalf("Identity value %q is not in the file", id)
			}
		}
		for _, v := range []string{caller, dialled} {
			if len(v) > len(b) {
				t.Fatalf("number %q is longer than the file", v)
			}
		}
	})
}
