//go:build race

package model_test

// raceEnabled scales the simulator experiment down under the race
// detector, which slows screening and training about tenfold.
const raceEnabled = true
