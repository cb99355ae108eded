FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY api ./api
COPY workers ./workers
COPY ops ./ops
RUN pip install --no-cache-dir '.[postgres,production]' \
    && useradd --system --uid 10001 scimflow
USER scimflow
EXPOSE 8000
CMD ["scimflow", "api", "--bind", "0.0.0.0:8000"]
