FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY src ./src
COPY migrations ./migrations
RUN pip install --no-cache-dir . && useradd --system callmemory
USER callmemory
ENV CALLMEMORY_HOST=0.0.0.0 CALLMEMORY_PORT=8080 CALLMEMORY_DATA_DIR=/tmp/callmemory
EXPOSE 8080
CMD ["callmemory", "serve", "--workers", "2"]
