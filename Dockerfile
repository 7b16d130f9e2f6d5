# syntax=docker/dockerfile:1
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway gateway
COPY adapters adapters
COPY monitoring monitoring
COPY simulators simulators
RUN python -m venv /opt/huxiao && /opt/huxiao/bin/pip install --no-cache-dir .

FROM python:3.11-slim-bookworm
RUN useradd --system --home /var/lib/huxiao --create-home huxiao
COPY --from=build /opt/huxiao /opt/huxiao
ENV PATH=/opt/huxiao/bin:$PATH PYTHONUNBUFFERED=1
USER huxiao
WORKDIR /var/lib/huxiao
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"
ENTRYPOINT ["/bin/sh", "-c", "exec python -u -m gateway \"$@\"", "--"]
CMD ["run", "-c", "/etc/huxiao/school.yaml"]
