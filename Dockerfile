# The relay in a container: `porch serve` on 0.0.0.0:8000 as an unprivileged user,
# its SQLite database in the volume /data. See "Deploy" in the README.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A non-editable install bundles the widget and the demo site into the package
# (pyproject.toml), so the sources can go once it is installed.
COPY pyproject.toml README.md /src/
COPY relay /src/relay
COPY widget /src/widget
COPY site /src/site
RUN pip install /src && rm -rf /src

RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin porch \
    && install -d -o porch -g porch -m 700 /data
USER porch
WORKDIR /data

ENV PORCH_DATA_DIR=/data \
    PORCH_HOST=0.0.0.0 \
    PORCH_PORT=8000
VOLUME /data
EXPOSE 8000

# The slim image has no curl; /healthz answers while the process is up.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${PORCH_PORT}/healthz', timeout=4)"

# PORCH_SECRET_KEYS comes from `docker run -e` (or an env file), never from the image.
CMD ["porch", "serve"]
