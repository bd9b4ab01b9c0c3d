"""Gunicorn settings shared by `./postane run` and the Docker image.

Gunicorn reads WEB_CONCURRENCY itself; the bind address comes from POSTANE_BIND.
"""

from __future__ import annotations

import os

bind = os.environ.get("POSTANE_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threaded workers: a connection waiting for its request (a browser's idle keep-alive or
# preconnect, a slow client) sits in the worker's poller instead of holding a whole worker, and
# browsers keep their connection between pages. Each thread has its own database connection.
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "4"))
keepalive = 5
accesslog = "-"
graceful_timeout = 10
timeout = 60
# No control socket in the user's home: nothing outside the data folder is touched.
control_socket_disable = True
# Behind a reverse proxy on the same host or network (docker compose), trust its X-Forwarded-*:
# by default the same proxies the app believes about X-Forwarded-For.
forwarded_allow_ips = (
    os.environ.get("FORWARDED_ALLOW_IPS") or os.environ.get("WEBMAIL_TRUSTED_PROXIES") or "127.0.0.1,::1"
)
# Gunicorn has no setting that limits a request body (only the request line and headers, left at
# their defaults): webmail.middleware.RequestBodyLimitMiddleware refuses one by its Content-Length.
