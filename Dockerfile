# facade: a curated, read-only MCP façade. Serves streamable HTTP on :8000 at /mcp.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY facade ./facade
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 facade
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
WORKDIR /app
COPY curation.yaml ./
COPY specs ./specs
USER facade
ENV FACADE_CONFIG=/app/curation.yaml PYTHONUNBUFFERED=1
# A broken curation fails the image build, not the first tool call.
RUN facade check
EXPOSE 8000
CMD ["facade", "serve", "--transport", "http", "--host", "0.0.0.0", "--port", "8000"]
