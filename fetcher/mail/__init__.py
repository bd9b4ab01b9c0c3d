"""The mail code that needs no database: protocols, host safety, MIME, search terms, threading.

Everything here is plain Python that a script or a test can import without Django set up: it
takes small config dataclasses and bytes, returns plain data, and raises `net.MailError`
naming the failed step. The rule, checked by import-linter (`[tool.importlinter]` in
pyproject.toml): no Django, no Celery, no Redis or psycopg, no models, and nothing from the rest
of `fetcher`, `accounts` or `webmail`; only the standard library and mail libraries (imapclient,
cryptography, nh3, PyStemmer, charset-normalizer). Code that needs settings, the database or a
task belongs in `fetcher/` beside this package (`fetcher.config` turns a mailbox row into a
`ServerConfig`, for instance).
"""
