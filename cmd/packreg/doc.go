// Command packreg is the packreg registry: `packreg serve` runs it,
// `packreg config print` shows the effective configuration and
// `packreg version` the build; the other commands are clients of a running
// server's /api/v1. This package parses flags and config and wires the
// stores, the registry and the HTTP server together; everything else lives
// in the packages it imports.
//
// Files: main.go (commands), config.go (the typed config), redact.go
// (secrets in store URLs and DSNs never reach a message), stores.go,
// packs.go, attest.go, mirrors.go, bundles.go, compliance.go (wiring; compliance.go
// also reads attest.policies as the rules that enforce, and adapts attest's
// report to compliance and the dashboard), serve.go (the server and its
// request log), routes.go (the one route table: every package's rows on one
// gorilla/mux router that never cleans or redirects, and the server's own
// endpoints), openapi.go and openapi.yaml (the /api/v1 document, served at
// /api/v1/openapi.json), edge.go (what every request passes before a
// route: Host while anonymous on loopback, cross-origin writes, JSON
// bodies, unclean paths), authconfig.go, authgate.go and token.go (with
// `auth` configured: every row's Access checked before its handler, the
// Docker token endpoint), robots.go (the robots API), tlsreload.go (TLS
// certificates re-read on change, HSTS), gc.go, retention.go and scrub.go
// (the runs of garbage collection, retention rules and scrub: their
// routes, and the schedule and lease they share), and the CLI clients
// (*cli.go; runcli.go is the shape `gc` and `retention` share; over
// internal/restclient through pack/client, mirror.Client,
// compliance.Client or directly).
//
// Nothing imports cmd.
package main
