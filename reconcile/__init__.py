"""Reconciliation of bank statements against payments and ERP open items: see docs/reconciliation.md."""
