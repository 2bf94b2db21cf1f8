package screen

import (
	"strings"

	"github.com/ringfence/ringfence/call"
)

// route compares where the CLI claims to be from with where the call
// entered. "Home" means the home region's country calling code, so for a GB
// tenant Guernsey, Jersey and Isle of Man numbers (+44) are home numbers too.
// A number whose type may be mobile (fixed_line_or_mobile, as in NANP) counts
// as a mobile that may be roaming.
func (ev *eval) route() {
	c := ev.c
	if c.Ingress == "" {
		return
	}
	ev.t.mu.RLock()
	r, ok := ev.t.routes[c.Ingress]
	homeCC := ev.t.homeCC
	ev.t.mu.RUnlock()
	if !ok {
		ev.add("route.unknown", "ingress route not in the route table")
		return
	}
	n := c.Caller
	if r.Kind != call.International || !n.Present() {
		return
	}
	home := homeCC != "" && strings.HasPrefix(n.E164, homeCC)
	switch {
	case home && (n.Type == call.TypeMobile || n.Type == call.TypeFixedOrMob):
		ev.add("route.home_mobile_roaming", "home mobile CLI on international route "+r.ID)
	case home:
		ev.add("route.home_cli_international", "home-country CLI on international route "+r.ID)
	case r.Country != "" && n.Region != "" && r.Country != n.Region:
		ev.add("route.country_mismatch", "CLI country "+n.Region+" on route from "+r.Country)
	}
}
