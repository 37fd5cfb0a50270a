# syntax=docker/dockerfile:1
# Build stage: wheels for the project and its dependencies.
FROM python:3.11-slim AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY service ./service
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# Final stage: no compilers; the OpenSSH client for Unicon; a non-root user.
FROM python:3.11-slim
LABEL org.opencontainers.image.title="pyats-ro-bus" \
      org.opencontainers.image.description="Read-only Cisco show commands over a NATS bus (pyATS/Unicon, Genie)" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN apt-get update && apt-get install -y --no-install-recommends openssh-client && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 pyats
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER pyats
WORKDIR /home/pyats
ENV PYATS_METRICS_PORT=9464 PYATS_LOG_FORMAT=json
EXPOSE 9464
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=2).status != 200)"
ENTRYPOINT ["pyats-ro"]
CMD ["serve"]
