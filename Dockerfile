# syntax=docker/dockerfile:1
# The Border API image. Every Python package is installed at the exact version that
# constraints.txt pins (no lock file is needed: uv.lock is not in git). The project is
# installed as a wheel into /opt/venv, so the runtime image holds neither the sources nor
# a developer's .venv, and none of the dev group (pytest, ruff, mypy...).

FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy

# The uv that wrote constraints.txt.
RUN pip install "uv==0.13.9"

WORKDIR /src

# Dependencies first, in a layer of their own that survives source edits: the project's
# runtime dependencies ([project] dependencies of pyproject.toml, not its dev group)
# through the constraints. uv reads [tool.uv] of ./pyproject.toml too, so the dlib
# override holds here as in development.
COPY pyproject.toml README.md constraints.txt ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv venv /opt/venv \
    && uv pip install --python /opt/venv -c constraints.txt -r pyproject.toml

# Then the project, through the same constraints. The whole context is copied so that new
# top-level packages (the ones named in [tool.hatch.build.targets.wheel]) need no change
# here; a developer's .venv is dropped and never reaches the runtime stage.
COPY . .
RUN --mount=type=cache,target=/root/.cache/uv \
    rm -rf .venv \
    && uv pip install --python /opt/venv -c constraints.txt .


FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    BORDER_DATA_DIR=/data

# An unprivileged user; /data is created owned by it so that a fresh named volume mounted
# there inherits the ownership.
RUN groupadd --system --gid 10001 border \
    && useradd --system --uid 10001 --gid border --create-home --home-dir /home/border border \
    && mkdir -p /data \
    && chown border:border /data

COPY --from=build /opt/venv /opt/venv

USER border
WORKDIR /home/border

EXPOSE 8000

# Readiness (DESIGN §15): the database answers within 1 s, the schema is current, the
# galleries are loaded; a 503 makes urlopen raise.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/ready', timeout=4)"]

CMD ["border", "serve", "--host", "0.0.0.0", "--port", "8000"]
