//go:build race

package numbering

func init() { raceEnabled = true }
