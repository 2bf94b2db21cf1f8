package screen

// customerLink lowers the risk of a known customer calling from a number
// seen with them before, unless the CLI itself looks spoofed.
func (ev *eval) customerLink() {
	c := ev.c
	if c.UserRef == "" || spoofed(ev.found[:ev.n]) {
		return
	}
	if ev.t.linked(c.Caller.Key(), userHash(c.UserRef)) {
		ev.add("link.known_customer", "number seen before with this customer")
	}
}
