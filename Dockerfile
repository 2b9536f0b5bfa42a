# BEDS node image: `docker build -t beds .` then `docker run beds --role appServer` (or use
# compose.yaml, which starts RabbitMQ, MariaDB, the schema step and the four roles).
#
# Safe by default: built from requirements-image.lock with hashes checked, no compiler or pip
# cache in the runtime stage, runs as an unprivileged user, nothing from the build context but the
# code, config, templates and schema (.dockerignore keeps .env, .venv and .git out), and a
# HEALTHCHECK on the node's /live endpoint, which listens on 0.0.0.0 inside the container.
# PYTHON_IMAGE can be overridden (a mirror, or a stand-in base where Docker Hub is unreachable).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- build: a venv holding exactly the locked runtime dependencies ------------------------------
# (in --require-hashes mode pip refuses a dependency the lock does not pin, so a stale
# requirements-image.lock fails the build instead of pulling an unpinned package)
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY requirements-image.lock ./
RUN python3 -m venv /opt/beds/venv \
 && /opt/beds/venv/bin/pip install --require-hashes -r requirements-image.lock
# The package runs from /app (python -m beds), so no build backend enters the image; bytecode is
# compiled here because the runtime user cannot write beside the sources.
COPY beds ./beds
RUN /opt/beds/venv/bin/python -m compileall -q beds \
 && printf '#!/bin/sh\nexec /opt/beds/venv/bin/python -m beds "$@"\n' > /opt/beds/venv/bin/beds \
 && chmod 0755 /opt/beds/venv/bin/beds

# -- runtime: the venv and the application, owned by root, run by `beds` ------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="beds" \
      org.opencontainers.image.description="BEDS node: template RPC over RabbitMQ" \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --system --gid 10001 beds \
 && useradd --system --uid 10001 --gid beds --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin beds
COPY --from=build /opt/beds/venv /opt/beds/venv
WORKDIR /app
COPY --from=build /src/beds ./beds
COPY config ./config
COPY templates ./templates
COPY schema ./schema
# BEDS_HTTP_LISTEN: /live /ready /metrics on every interface of the container (the config's
# default, 127.0.0.1, would be unreachable from the engine's probes and from Prometheus).
ENV PATH=/opt/beds/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BEDS_HTTP_LISTEN=0.0.0.0:9464
USER 10001:10001
EXPOSE 9464
# No curl in the slim image: the standard library asks /live on the port BEDS_HTTP_LISTEN names.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('BEDS_HTTP_LISTEN', ':9464').rpartition(':')[2]; urllib.request.urlopen(f'http://127.0.0.1:{port}/live', timeout=2)"]
ENTRYPOINT ["python", "-m", "beds"]
CMD ["--role", "appServer"]
