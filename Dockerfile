# syntax=docker/dockerfile:1
# BASE: any Debian bookworm image with python3.11 and python3-venv on it. The default is the official one;
# deploy/build-image.sh builds from a local base made with mmdebstrap where no container registry can be reached.
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
# A CA bundle for pip where the network inspects TLS (deploy/build-image.sh mounts the host's): this stage only.
ARG PIP_CERT
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway gateway
COPY adapters adapters
COPY monitoring monitoring
COPY simulators simulators
COPY center center
RUN python -m venv /opt/huxiao && /opt/huxiao/bin/pip install --no-cache-dir . \
  && /opt/huxiao/bin/pip uninstall --yes pip

FROM ${BASE}
RUN useradd --system --home /var/lib/huxiao --create-home huxiao
COPY --from=build /opt/huxiao /opt/huxiao
COPY config/example.yaml /usr/share/doc/huxiao/example.yaml
# HUXIAO_HEALTHZ: where the HEALTHCHECK asks; change it with `web.listen` in school.yaml.
ENV PATH=/opt/huxiao/bin:$PATH PYTHONUNBUFFERED=1 HUXIAO_HEALTHZ=http://127.0.0.1:8080/healthz
USER huxiao
WORKDIR /var/lib/huxiao
VOLUME /var/lib/huxiao
EXPOSE 8080
# /healthz answers 503 when a pressed alarm would not get through (broker away, storage unwritable, a part dead);
# urlopen raises on 503, so the check exits 1.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
  CMD python -c "import os,sys,urllib.request; sys.exit(urllib.request.urlopen(os.environ['HUXIAO_HEALTHZ'], timeout=2).status != 200)"
ENTRYPOINT ["/bin/sh", "-c", "exec python -u -m gateway \"$@\"", "--"]
CMD ["run", "-c", "/etc/huxiao/school.yaml"]
