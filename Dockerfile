# aslmig BIDS App image (docs/containers.md).
#
#   docker build --secret id=extra_ca,src=/path/to/ca.pem -t aslmig:0.1.0 .
#   docker run --rm --read-only -v /data:/data:ro -v /out:/out -v /work:/work \
#       aslmig:0.1.0 /data /out participant -w /work
#
# Build arguments:
#   DEBIAN_IMAGE  the pinned base image (a dated Debian 12 slim tag).
#   TEMPLATES     fetch   (default) prefetch the TemplateFlow files aslmig uses, with
#                         `aslmig templates fetch`: needs a builder that reaches TemplateFlow;
#                 bundled skip it: the image then uses the MNI152NLin2009aSym template bundled
#                         in the package (for builders without that network, e.g. our CI).
#   VERSION, REVISION, SOURCE  OCI labels.
# A proxy with its own certificate authority: pass its CA bundle as the build secret
# `extra_ca` (above). It is mounted only while pip and the template download run and is never
# stored in a layer.

ARG DEBIAN_IMAGE=docker.io/library/debian:bookworm-20250520-slim

# Debian's Python 3.11, shared by every stage.
FROM ${DEBIAN_IMAGE} AS python
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/*

# The package and its pinned dependencies in a virtual environment.
FROM python AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3-venv \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
WORKDIR /src
COPY docker/requirements.lock docker/
RUN --mount=type=secret,id=extra_ca \
    if [ -s /run/secrets/extra_ca ]; then export PIP_CERT=/run/secrets/extra_ca; fi; \
    python3 -m venv /opt/aslmig \
    && /opt/aslmig/bin/pip install --no-deps -r docker/requirements.lock \
    && /opt/aslmig/bin/pip check
COPY pyproject.toml README.md LICENSE ./
COPY aslmig ./aslmig
RUN /opt/aslmig/bin/pip install --no-deps --no-build-isolation . \
    && /opt/aslmig/bin/pip check

# Exactly the TemplateFlow files aslmig uses, fetched by aslmig itself.
FROM build AS templates
ARG TEMPLATES=fetch
RUN --mount=type=secret,id=extra_ca \
    if [ -s /run/secrets/extra_ca ]; then \
        export SSL_CERT_FILE=/run/secrets/extra_ca REQUESTS_CA_BUNDLE=/run/secrets/extra_ca; \
    fi; \
    mkdir -p /opt/templateflow \
    && case "$TEMPLATES" in \
        fetch) /opt/aslmig/bin/aslmig templates fetch --home /opt/templateflow ;; \
        bundled) echo "TEMPLATES=bundled: the image uses aslmig's bundled template" ;; \
        *) echo "TEMPLATES must be 'fetch' or 'bundled', not '$TEMPLATES'" >&2; exit 2 ;; \
    esac

FROM python AS runtime
ARG DEBIAN_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=https://pypi.org/project/aslmig/
COPY --from=build /opt/aslmig /opt/aslmig
COPY --from=templates /opt/templateflow /opt/templateflow
RUN useradd --uid 1000 --user-group --no-create-home --home-dir /tmp \
        --shell /usr/sbin/nologin aslmig
# Every write goes to /tmp or the mounted output and work folders: HOME, caches and
# matplotlib's config live in /tmp, Python writes no bytecode, TemplateFlow never updates.
ENV PATH=/opt/aslmig/bin:$PATH \
    TEMPLATEFLOW_HOME=/opt/templateflow \
    TEMPLATEFLOW_AUTOUPDATE=0 \
    NIPYPE_NO_ET=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib \
    PYTHONDONTWRITEBYTECODE=1 \
    USER=aslmig \
    LOGNAME=aslmig \
    ASLMIG_CONTAINER_TAG=aslmig:${VERSION}
LABEL org.opencontainers.image.title="aslmig" \
      org.opencontainers.image.description="BIDS App for ASL perfusion MRI in migraine research" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${DEBIAN_IMAGE}"
USER aslmig
WORKDIR /tmp
ENTRYPOINT ["aslmig"]
