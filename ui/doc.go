// Package ui is the dashboard at /ui/: the registry at a glance for people,
// server-rendered with html/template from what the other packages stored
// (compliance's findings, summary and history, the pack index and its
// lifecycle history, attest's reports, the audit trail). Its templates and
// stylesheet are embedded (embed); it needs no JavaScript and no build
// step, and it changes nothing: every route is a GET.
//
// Pages: the overview (compliant against failing, verification states,
// attestation coverage by type, lifecycle, parity per mirror, the trend
// as SVG charts, the failing versions with their reasons a page at a
// time, the latest audit records, search by name) and one page per pack
// (its versions with their findings, signatures and attestations, and
// its lifecycle history).
//
// html/template escapes everything it writes; names come from the
// registry and are attacker-controlled, and no page builds HTML by hand.
//
// ui imports compliance (its read side), storage, digest and
// internal/routes; it must not import attest, pack, mirror, audit or cmd
// (cmd adapts attest's report to Reporter).
package ui
