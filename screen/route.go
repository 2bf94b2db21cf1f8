package screen

import "github.com/ringfence/ringfence/call"

// route compares where the CLI claims to be from with where the call entered.
func (ev *eval) route() {
	c := ev.c
	if c.Ingress == "" {
		return
	}
	ev.t.mu.RLock()
	r, ok := ev.t.routes[c.Ingress]
	home := ev.t.info.Region
	ev.t.mu.RUnlock()
	if !ok {
		ev.add("route.unknown", "ingress route not in the route table")
		return
	}
	n := c.Caller
	if r.Kind != call.International || !n.Present() || n.Region == "" {
		return
	}
	switch {
	case n.Region == home && n.Type == call.TypeMobile:
		ev.add("route.home_mobile_roaming", "home mobile CLI on international route "+r.ID)
	case n.Region == home:
		ev.add("route.home_cli_international", "home-country CLI on international route "+r.ID)
	case r.Country != "" && r.Country != n.Region:
		ev.add("route.country_mismatch", "CLI country "+n.Region+" on route from "+r.Country)
	}
}
