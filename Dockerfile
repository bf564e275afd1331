# facade: a curated, read-only MCP façade. Serves streamable HTTP on :8000 at /mcp.
#
#   docker build -t facade .
#   docker run -p 8000:8000 -v "$PWD/curation.yaml:/app/curation.yaml:ro" \
#     -e INVENTORY_URL=… -e INVENTORY_TOKEN=… -e FACADE_TOKEN_AGENTS=… facade
#
# The bundled example curation is baked in; mount yours (and its spec) over /app, or build
# FROM this image and COPY them. Without `server.auth` in the curation, `serve` refuses to
# listen beyond localhost (set FACADE_ALLOW_UNAUTHENTICATED=1 behind an authenticating proxy).

# --- build: install facade and its dependencies into a self-contained virtualenv
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY facade ./facade
RUN python -m venv /opt/facade && /opt/facade/bin/pip install .

# --- run: the virtualenv, the curation and its spec, a non-root user, nothing else
FROM python:3.11-slim
RUN groupadd --system --gid 10001 facade \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin facade
COPY --from=build /opt/facade /opt/facade
ENV PATH=/opt/facade/bin:$PATH \
    FACADE_CONFIG=/app/curation.yaml \
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
# /healthz answers while the process serves; it never depends on the backend.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request as u; sys.exit(u.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
# SIGTERM drains: /readyz turns 503, calls under way get server.shutdown_grace seconds.
STOPSIGNAL SIGTERM
CMD ["facade", "serve", "--transport", "http", "--host", "0.0.0.0", "--port", "8000"]
