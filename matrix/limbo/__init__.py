"""x509-limbo's path-validation corpus run against mTLS servers (``python -m matrix.limbo``).

corpus: the vendored cases and their schema check; classify: which apply, and
why; handshake: the client and the could-it-present probe; store: the store
check; names: the server-name cases on loopback; run: one server per trust
set; divergences: known differences as data; results: scoring, table, JSON;
cli: the command. Documentation: docs/limbo.md.
"""
