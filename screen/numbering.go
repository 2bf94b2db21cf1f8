package screen

// numbering checks the CLI against the numbering plan.
func (ev *eval) numbering() {
	n := ev.c.Caller
	switch {
	case n.Withheld:
		ev.add("cli.withheld", "caller withheld its number")
	case !n.Present():
		ev.add("cli.invalid", "CLI is not a telephone number")
	case n.Type.Special():
		ev.add("cli.special_range", string(n.Type)+" range presented as CLI")
	case !n.Valid:
		ev.add("cli.invalid", "CLI is outside every assigned range")
		if !n.Possible {
			ev.add("cli.impossible_length", "CLI length impossible for its country")
		}
	}
}
