//go:build !linux

package main

// evictBinary is Linux's page-cache eviction; elsewhere the binary stays
// as the page cache has it.
func evictBinary(string) error { return nil }
