# One image for every process of customer-updates: the command decides what it runs
# (see docker-compose.yml and the Procfile). A specific Python release, not a moving tag: a rebuild gets the
# same interpreter; raise it on purpose (docker build --build-arg PYTHON_IMAGE=...).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
# The locked dependencies before the code, so that this layer is rebuilt only when the lock changes.
COPY requirements.lock /src/requirements.lock
RUN /opt/venv/bin/pip install --require-hashes --no-deps -r /src/requirements.lock
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY customer_updates ./customer_updates
# The package alone (its dependencies are the locked ones above), then a check that nothing is missing.
RUN /opt/venv/bin/pip install --no-deps . && /opt/venv/bin/pip check

FROM ${PYTHON_IMAGE}
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
