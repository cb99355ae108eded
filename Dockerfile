# The extras installed, declared once for both stages; .ci/production-smoke reads this default
# and installs exactly these in a fresh virtual environment. `production` brings the API servers
# granian (the default) and gunicorn; uWSGI is opt-in:
# --build-arg SCIMFLOW_EXTRAS=postgres,production,uwsgi
ARG SCIMFLOW_EXTRAS=postgres,production
# The base image of both stages, pinned to an exact release (docker-compose.yml pins the others).
ARG PYTHON_IMAGE=python:3.11.16-slim-bookworm

# Wheels are built in a stage with a C compiler (uWSGI compiles, when it is chosen); the image
# itself carries no compiler.
FROM ${PYTHON_IMAGE} AS wheels
ARG SCIMFLOW_EXTRAS
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
# scimflow/ holds the package's own files and symlinks to the folders below (pyproject.toml).
COPY scimflow ./scimflow
COPY pipeline ./pipeline
COPY api ./api
COPY workers ./workers
COPY ops ./ops
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[${SCIMFLOW_EXTRAS}]"

FROM ${PYTHON_IMAGE}
ARG SCIMFLOW_EXTRAS
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY --from=wheels /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels "scimflow[${SCIMFLOW_EXTRAS}]" \
    && rm -rf /wheels \
    && useradd --system --uid 10001 scimflow
USER scimflow
EXPOSE 8000
CMD ["scimflow", "api", "--bind", "0.0.0.0:8000"]
