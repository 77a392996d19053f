# keiyaku-portal: gunicorn serving app:app as a non-root user; instance/ (database, secrets,
# encrypted documents, PKI) is a volume. Put TLS at a reverse proxy (docs/deploy.md).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PORTAL_INSTANCE_PATH=/app/instance

RUN apt-get update \
 && apt-get install -y --no-install-recommends libsofthsm2 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 portal

WORKDIR /app
COPY pyproject.toml README.md ./
COPY portal ./portal
COPY migrations ./migrations
COPY app.py ./
RUN pip install . && mkdir -p /app/instance && chown portal:portal /app/instance

USER portal
VOLUME ["/app/instance"]
EXPOSE 8000

# Migrate, then serve. The outbox worker runs in-process; for several replicas run
# `flask --app app worker` as a separate container and set PORTAL_OUTBOX_WORKER=false here.
CMD ["sh", "-c", "flask --app app init && exec gunicorn --bind 0.0.0.0:8000 --workers 2 --threads 4 --forwarded-allow-ips='*' app:app"]
