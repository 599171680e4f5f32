"""Notifications to ERPs: per-client subscriptions, a transactional outbox, delivery by signed HTTP POST.

subscriptions.py  who wants which events at which URL (managed by `directlink notify`, audited)
outbox.py         writes events in the very transaction that made the change (transitions.move; whoever posts
                  to the ledger passes it the legs booked)
message.py        the Notification document (schemas/notification.xsd), rendered and frozen at write time
delivery.py       the job that claims due events, signs, POSTs, retries with back-off, keeps dead letters

See docs/notifications.md for the ERP's side.
"""
