"""The treasury console: a web front for a client's operators, served by the gateway under /console
(docs/console.md). Sign-in with a security key, the approvals inbox, balances and the cash position."""
