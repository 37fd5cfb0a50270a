# syntax=docker/dockerfile:1
# pyats-ro-bus: a build stage makes a virtual environment; the final stage gets only that
# environment, the OpenSSH client and a non-root user. docs/OPERATIONS.md explains each part.
#
#   docker build -t pyats-ro-bus:0.1.0 --build-arg SOURCE_URL="$(git remote get-url origin)" .
#
# Both stages use the same base image: the environment is copied, so its Python must match.

FROM python:3.11-slim AS build
ARG VERSION=0.1.0
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# Compilers for any dependency without a wheel for this platform; they never leave this stage.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/pyats-ro
WORKDIR /src
# Dependencies first, from pyproject.toml alone, so a code change does not reinstall pyATS.
COPY pyproject.toml ./
RUN mkdir service && touch service/__init__.py README.md \
    && /opt/pyats-ro/bin/pip install . \
    && rm -rf service README.md build ./*.egg-info
# Then the project itself, as a wheel installed by its distribution name and version.
COPY pyproject.toml README.md ./
COPY service ./service
RUN /opt/pyats-ro/bin/pip wheel --no-deps --wheel-dir /wheels . \
    && /opt/pyats-ro/bin/pip install --no-index --no-deps --force-reinstall --find-links /wheels \
       "pyats-ro-bus==${VERSION}"

FROM python:3.11-slim AS final
ARG VERSION=0.1.0
ARG SOURCE_URL=""
ARG REVISION=""
LABEL org.opencontainers.image.title="pyats-ro-bus" \
      org.opencontainers.image.description="Read-only Cisco show commands over a NATS bus (pyATS/Unicon, Genie)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.revision="${REVISION}"
# The pty SSH backend (PYATS_SSH_BACKEND=pty) runs the OpenSSH client.
RUN apt-get update \
    && apt-get install -y --no-install-recommends openssh-client \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 pyats \
    && useradd --system --uid 10001 --gid pyats --create-home --home-dir /home/pyats --shell /usr/sbin/nologin pyats
COPY --from=build /opt/pyats-ro /opt/pyats-ro
ENV PATH=/opt/pyats-ro/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYATS_LOG_FORMAT=json \
    PYATS_METRICS_PORT=9464
USER 10001:10001
# .env, .data/known_hosts and the bundled lab's files are relative to here.
WORKDIR /home/pyats
EXPOSE 9464
# Slim images have no curl. /healthz answers while the process lives; /readyz also needs NATS.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PYATS_METRICS_PORT', '9464'), timeout=2)"]
ENTRYPOINT ["pyats-ro"]
CMD ["serve"]
