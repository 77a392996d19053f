# keiyaku-portal: the wheel built from this tree, served by gunicorn as an unprivileged user.
# compose.yml runs it as three services: init (migrates once), portal (gunicorn) and worker. See docs/deploy.md.
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# .dockerignore keeps out what is not part of the package (virtualenvs, instance/, tests, build output).
COPY . .
RUN pip install "setuptools>=77" && pip wheel --no-deps --no-build-isolation --wheel-dir /wheels .


FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FLASK_APP=portal:create_app \
    PORTAL_INSTANCE_PATH=/app/instance \
    PORTAL_BIND=0.0.0.0:8000

# Fonts: IPAmj明朝 for the PDFs the portal writes (certificates, 申出書: 𠮷, 髙, 﨑 as written), Noto CJK for
# the page images of uploaded PDFs whose Japanese fonts are not embedded. libsofthsm2: the PKCS#11 module for
# trying the HSM path (docs/signing.md); a production HSM brings its own module.
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-ipamj-mincho fonts-noto-cjk fontconfig libsofthsm2 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 --user-group portal \
 && mkdir -p /app/instance && chown portal:portal /app/instance

COPY --from=build /wheels /wheels
RUN pip install "$(ls /wheels/keiyaku_portal-*.whl)[s3,redis]" && rm -rf /wheels

WORKDIR /app
USER portal
VOLUME ["/app/instance"]
EXPOSE 8000

# The process answers (the database and the rest are /readyz's, for the load balancer: docs/deploy.md).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

# Serve only: migrations are `flask init`, run once (compose.yml's init service, or by hand before the start).
CMD ["gunicorn", "-c", "python:portal.gunicorn_conf", "portal:create_app()"]
