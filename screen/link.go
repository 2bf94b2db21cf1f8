package screen

// customerLink compares the caller with the numbers linked to the customer
// id on the call: a known number lowers the risk unless the CLI itself looks
// spoofed; a new number for a customer with known numbers raises it.
func (ev *eval) customerLink() {
	c := ev.c
	if c.UserRef == "" || !c.Caller.Present() {
		return
	}
	linked, candidate, numbers := ev.t.linkState(c.Caller.Key(), userHash(c.UserRef))
	switch {
	case linked && !spoofed(ev.found[:ev.n]):
		ev.add("link.known_customer", "number seen before with this customer")
	case !linked && !candidate && numbers > 0:
		ev.add("link.unknown_number", "customer has other known numbers")
	}
}
