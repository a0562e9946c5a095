# One image for every process of customer-updates: the command decides what it runs
# (see docker-compose.yml and the Procfile).
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY customer_updates ./customer_updates
RUN python -m venv /opt/venv && /opt/venv/bin/pip install .

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
COPY --from=build /opt/venv /opt/venv
# The example org and customers, for `orgs load` / `customers import` inside the container.
COPY examples /app/examples
WORKDIR /app
# Celery refuses nothing as root, but nothing here needs root either.
RUN useradd --system --uid 10001 --home-dir /app app && chown -R app /app
USER app
EXPOSE 8000 5555 9808
CMD ["customer-updates", "worker"]
