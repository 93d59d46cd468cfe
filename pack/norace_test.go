//go:build !race

package pack_test

const raceOn = false
