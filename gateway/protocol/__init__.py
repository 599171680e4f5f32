"""The wire layer of protocol v1, shared by the server, the agent, the adapters and reconciliation.

`xmlsafe` is the one hardened parser, `signing` the signature profile, `messages` the envelope's
elements to and from the domain, `errors` the one table from result codes to HTTP statuses, and
`client` what an ERP-side program needs to send a signed request and check the signed answer.
It imports only `domain/` and `schemas/` (a contract in tests/test_layers.py holds it to that).
"""
