//go:build race

package pack_test

// raceOn: the race detector's sync.Pool drops a quarter of what is put
// back, so allocation figures mean nothing under it.
const raceOn = true
