"""Gunicorn settings shared by `./postane run` and the Docker image.

Gunicorn reads WEB_CONCURRENCY itself; the bind address comes from POSTANE_BIND.
"""

from __future__ import annotations

import os

bind = os.environ.get("POSTANE_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
accesslog = "-"
graceful_timeout = 10
timeout = 60
# No control socket in the user's home: nothing outside the data folder is touched.
control_socket_disable = True
# Behind a reverse proxy on the same host or network (docker compose), trust its X-Forwarded-*.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
