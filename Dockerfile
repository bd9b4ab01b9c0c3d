# One image for web, worker and beat (docker-compose.yml picks the command).
FROM python:3.12-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=webmail.settings \
    STATIC_ROOT=/app/staticfiles

RUN groupadd --system postane && useradd --system --gid postane --home-dir /app postane
WORKDIR /app

COPY requirements/prod.lock requirements/prod.lock
RUN pip install --no-cache-dir --require-hashes -r requirements/prod.lock

COPY manage.py ./
COPY webmail webmail
COPY accounts accounts
COPY fetcher fetcher
COPY templates templates
COPY static static
COPY locale locale

# collectstatic reads settings, which insist on real values; these placeholders exist only for this step.
RUN SECRET_KEY=build-only-placeholder-secret-key-that-is-never-used-at-runtime \
    DATABASE_URL=postgresql://build@localhost/build REDIS_URL=redis://localhost:6379/0 \
    WEBMAIL_ENCRYPTION_KEYS=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= ALLOWED_HOSTS=build \
    python manage.py collectstatic --noinput --verbosity 0

USER postane
EXPOSE 8000
ENV POSTANE_BIND=0.0.0.0:8000
CMD ["gunicorn", "--config", "python:webmail.gunicorn_conf", "webmail.wsgi:application"]
