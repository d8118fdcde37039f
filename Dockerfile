# The production image: the service and its OpenTelemetry extra, at the versions pinned in uv.lock. No
# embedded servers (a deployment brings its own Postgres and Redis: the `embedded` extra is for a
# developer's machine) and no dev tools; uv itself stays in the build stage.
FROM python:3.11-slim AS build
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
ENV UV_PROJECT_ENVIRONMENT=/opt/venv UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
# The dependencies in a layer of their own: a change to the code alone does not reinstall them.
COPY pyproject.toml uv.lock ./
RUN uv sync --locked --no-cache --no-dev --extra otel --no-install-project
COPY README.md alembic.ini ./
COPY src ./src
COPY migrations ./migrations
RUN uv sync --locked --no-cache --no-dev --extra otel --no-editable

FROM python:3.11-slim
# An init as PID 1: the kernel drops a signal to PID 1 for which it has no handler, so a SIGTERM that came
# before `serve` installed its own was lost and the stop ended in SIGKILL. tini forwards it, and reaps.
# Not pinned: Debian's stable release changes its version only for security fixes.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && apt-get clean && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/venv /opt/venv
# A fixed, numeric UID and GID: Kubernetes' runAsNonRoot can verify a number, never a user name.
RUN groupadd --system --gid 10001 callmemory \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin callmemory
USER 10001:10001
ENV PATH=/opt/venv/bin:$PATH \
    CALLMEMORY_HOST=0.0.0.0 CALLMEMORY_PORT=8080 CALLMEMORY_DATA_DIR=/tmp/callmemory \
    CALLMEMORY_LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["tini", "--"]
CMD ["callmemory", "serve", "--workers", "2"]
