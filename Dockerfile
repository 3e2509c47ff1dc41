# callguard: the caller-ID scam-number service. The database comes from DATABASE_URL
# (see docker-compose.yml); without it the embedded Postgres starts in CALLGUARD_DATA_DIR.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CALLGUARD_DATA_DIR=/home/callguard/data

RUN useradd --create-home --uid 10001 --user-group --shell /usr/sbin/nologin callguard
# The reporter key's directory (docker-compose.yml mounts a volume here): its owner's alone.
RUN install -d -m 0700 -o callguard -g callguard /home/callguard/keys

# The wheel is built in a stage of its own, so the image holds the installed package and its
# dependencies, not the sources or the build tools.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service/ ./service/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM base
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir /wheels/*.whl

USER callguard
EXPOSE 8080

# No curl in slim images; urllib fails (non-zero exit) on anything but a 2xx answer.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:8080/readyz', timeout=4)"]

CMD ["callguard", "serve", "--host", "0.0.0.0", "--port", "8080"]
