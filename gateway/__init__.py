"""The DirectLink gateway: HTTP edge, signed XML envelope, permissions, storage and the embedded ledger."""
