package stir_test

import (
	"fmt"

	"github.com/ringfence/ringfence/stir"
)

func ExampleParseIdentity() {
	id, err := stir.ParseIdentity("eyJhbGciOiJFUzI1NiJ9.eyJpYXQiOjF9.c2ln;info=<https://cert.example/sp.pem>;alg=ES256;ppt=shaken")
	fmt.Println(id.Info, id.Alg, id.PPT, err)
	_, err = stir.ParseIdentity("..c2ln;info=<https://cert.example/sp.pem>")
	fmt.Println(err)
	// Output:
	// https://cert.example/sp.pem ES256 shaken <nil>
	// stir: compact form PASSporT (header and claims omitted): full form required
}

func ExampleReasonHeader() {
	fmt.Println(stir.ReasonHeader(stir.CauseStaleDate, "c2ln"))
	// Output:
	// STIR ;cause=403 ;text="Stale Date" ;ppi="..c2ln"
}
