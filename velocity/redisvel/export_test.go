package redisvel

import "time"

// Keys lists the keys under prefix (test helper, KEYS is fine on a test server).
func Keys(addr, prefix string) []string {
	c, err := dial(addr, time.Second)
	if err != nil {
		return nil
	}
	defer c.Close()
	c.send("KEYS", prefix+"*")
	rs, err := c.exec(time.Second)
	if err != nil {
		return nil
	}
	var out []string
	for _, r := range rs[0].Arr {
		out = append(out, r.Str)
	}
	return out
}

// DeletePrefix deletes the keys under prefix and reports how many, or -1.
func DeletePrefix(addr, prefix string) int {
	keys := Keys(addr, prefix)
	if len(keys) == 0 {
		return 0
	}
	c, err := dial(addr, time.Second)
	if err != nil {
		return -1
	}
	defer c.Close()
	c.send(append([]string{"DEL"}, keys...)...)
	rs, err := c.exec(time.Second)
	if err != nil || rs[0].Kind != ':' {
		return -1
	}
	return int(rs[0].Int)
}
