"""Storing downloaded messages in two stages: secure the raw bytes first, derive the rest after.

Stage one (`storing`: `store_pop3_batch`, `store_imap_batch`, `store_local`) commits raw bytes
with only what the ledger and the message list need. Only after that commit may anything be
deleted on the server. Stage two (`parsing`: `parse_messages`) runs in parallel Celery tasks and
derives subject, addresses, bodies, attachments and the search vector; `reindex` runs it again
over everything.
"""
