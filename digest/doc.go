// Package digest parses and computes OCI content digests ("sha256:<hex>",
// "sha512:<hex>").
//
// It is a leaf: it imports nothing from packreg, and every other package may
// import it. Parsing is strict (lowercase hex of the exact length) because a
// digest becomes a storage key: anything that passes Parse is safe to use in a
// path or an object name.
package digest
