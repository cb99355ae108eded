# Wheels are built in a stage with a C compiler (uWSGI, the optional API server, compiles);
# the image itself carries no compiler.
FROM python:3.11-slim AS wheels
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY api ./api
COPY workers ./workers
COPY ops ./ops
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[postgres,production,uwsgi]'

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY --from=wheels /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels 'scimflow[postgres,production,uwsgi]' \
    && rm -rf /wheels \
    && useradd --system --uid 10001 scimflow
USER scimflow
EXPOSE 8000
CMD ["scimflow", "api", "--bind", "0.0.0.0:8000"]
