# facade: a curated, read-only MCP façade. Serves streamable HTTP on :$FACADE_PORT (8000) at /mcp.
#
#   docker build -t facade --build-arg VERSION="$(python -c 'import facade; print(facade.__version__)')" \
#     --build-arg REVISION="$(git rev-parse HEAD)" .
#   docker run -p 8000:8000 -v "$PWD/curation.yaml:/app/curation.yaml:ro" \
#     -e INVENTORY_URL=… -e INVENTORY_TOKEN=… -e FACADE_TOKEN_AGENTS=… facade
#   docker run --rm facade check            # any subcommand: the entrypoint is `facade`
#
# The bundled example curation is baked in; mount yours (and its spec) over /app, or build
# FROM this image and COPY them. Without `server.auth` in the curation, `serve` refuses to
# listen beyond localhost (set FACADE_ALLOW_UNAUTHENTICATED=1 behind an authenticating proxy).
# Podman: `podman build --format docker …` keeps the HEALTHCHECK (OCI images drop it).

# The base, pinned by digest so that a rebuild starts from the same bytes (the tag only
# says which image the digest was taken from). To refresh it, look up the current digest
# of the tag and paste it here:
#   docker buildx imagetools inspect python:3.11-slim   (the "Digest:" line), or
#   docker pull python:3.11-slim && docker inspect -f '{{index .RepoDigests 0}}' python:3.11-slim
# then rebuild and run the tests. `--build-arg BASE=…` builds on another base with
# `python` and pip (>= 22.3) on PATH, e.g. a mirror of the same image.
ARG BASE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

# --- build: a virtualenv holding facade and the locked dependencies, and no pip or
# setuptools (the base's pip installs into it through --python)
FROM ${BASE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
RUN python -m venv --without-pip /opt/facade
# Exactly the locked files (versions and sha256), nothing resolved at build time.
COPY requirements.lock ./
RUN python -m pip --python /opt/facade/bin/python install --require-hashes --no-deps \
        -r requirements.lock
COPY pyproject.toml README.md ./
COPY facade ./facade
# The package alone, then a check that the lock satisfied every dependency it declares.
RUN python -m pip --python /opt/facade/bin/python install --no-deps . \
    && python -m pip --python /opt/facade/bin/python check

# --- run: the virtualenv, the curation and its spec, a non-root user, nothing else
FROM ${BASE}
ARG BASE
ARG VERSION=""
ARG REVISION=""
ARG CREATED=""
LABEL org.opencontainers.image.title="facade" \
      org.opencontainers.image.description="A curated, read-only MCP façade in front of a REST API, from its OpenAPI spec." \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="${BASE}"
# The service never installs anything: the base's own pip, setuptools and wheel go too,
# where python images keep them (/usr/local) and where Debian's python3-pip does (/usr).
RUN rm -rf /usr/local/bin/pip /usr/local/bin/pip3* /usr/local/bin/wheel \
        /usr/local/lib/python3*/site-packages/pip /usr/local/lib/python3*/site-packages/pip-* \
        /usr/local/lib/python3*/site-packages/setuptools* \
        /usr/local/lib/python3*/site-packages/_distutils_hack \
        /usr/local/lib/python3*/site-packages/distutils-precedence.pth \
        /usr/local/lib/python3*/site-packages/wheel* \
        /usr/bin/pip /usr/bin/pip3* /usr/lib/python3/dist-packages/pip \
        /usr/lib/python3/dist-packages/pip-* /usr/lib/python3/dist-packages/setuptools* \
        /usr/lib/python3/dist-packages/wheel* \
    && groupadd --system --gid 10001 facade \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin facade
COPY --from=build /opt/facade /opt/facade
# FACADE_PORT: the port `facade serve` listens on (its --port default) and the one the
# HEALTHCHECK probes; change it here, not with --port, to keep the two together.
ENV PATH=/opt/facade/bin:$PATH \
    FACADE_CONFIG=/app/curation.yaml \
    FACADE_PORT=8000 \
    HOME=/tmp \
    FASTMCP_ENABLE_RICH_LOGGING=false \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
COPY curation.yaml ./
COPY specs ./specs
# Compile the tools (as root: /app stays read-only to the service user); serve starts from
# /app/curation.artifact.json without reading the spec while the curation and spec match.
RUN facade build
USER 10001:10001
# A broken curation fails the image build, not the first tool call.
RUN facade check
EXPOSE 8000
# /healthz answers while the process serves; it never depends on the backend. No proxy:
# an HTTP_PROXY set for the backend must not carry the probe away from 127.0.0.1.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request as u; url = 'http://127.0.0.1:%s/healthz' % os.environ.get('FACADE_PORT', '8000'); sys.exit(u.build_opener(u.ProxyHandler({})).open(url, timeout=2).status != 200)"]
# SIGTERM drains: /readyz turns 503, calls under way get server.shutdown_grace seconds.
STOPSIGNAL SIGTERM
# `docker run IMAGE` serves; `docker run IMAGE check` (or tools, call …) runs that instead,
# and so do Kubernetes `args:` and compose `command:`.
ENTRYPOINT ["facade"]
CMD ["serve", "--transport", "http", "--host", "0.0.0.0"]
