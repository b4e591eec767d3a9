# syntax=docker/dockerfile:1.7
# One image for every role: the command picks it (api, worker, beat, operator, migrate).
ARG PYTHON_VERSION=3.11

# --- build: resolve the locked dependencies and install PixelFleet into a virtualenv ----------
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/pixelfleet
RUN python -m pip install --no-cache-dir uv
WORKDIR /src
# Dependencies first: this layer is rebuilt only when the lock changes.
COPY pyproject.toml uv.lock README.md ./
RUN python -m uv sync --locked --no-install-project --no-dev
COPY pixelfleet ./pixelfleet
COPY migrations ./migrations
# The project itself as a wheel (not editable): migrations travel inside the package.
RUN python -m uv sync --locked --no-dev --no-editable

# --- runtime: the virtualenv and nothing that built it -----------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
RUN groupadd --system --gid 10001 pixelfleet \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/pixelfleet \
      --shell /usr/sbin/nologin pixelfleet \
 && mkdir -p /var/lib/pixelfleet/files \
 && chown -R 10001:10001 /var/lib/pixelfleet
COPY --from=build /opt/pixelfleet /opt/pixelfleet
ENV PATH=/opt/pixelfleet/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIXELFLEET_DATA_DIR=/var/lib/pixelfleet
USER 10001:10001
WORKDIR /var/lib/pixelfleet
EXPOSE 8000 8081
# The API's liveness; other roles (worker, beat, operator) set their own probe or disable it.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
ENTRYPOINT ["pixelfleet"]
CMD ["api", "--host", "0.0.0.0", "--port", "8000"]
