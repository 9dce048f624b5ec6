# aslmig BIDS App image. Build:  docker build -t aslmig:0.1.0 .
# Behind a proxy with its own CA, pass it as a build secret (never stored in the image):
#   docker build --secret id=extra_ca,src=/path/to/ca.pem -t aslmig:0.1.0 .
# Run:  docker run --rm -v /data:/data:ro -v /out:/out aslmig:0.1.0 /data /out participant
# (Container testing in CI, and the Apptainer recipe, are tracked in the container issue.)
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY aslmig ./aslmig
RUN --mount=type=secret,id=extra_ca,required=false \
    if [ -s /run/secrets/extra_ca ]; then export PIP_CERT=/run/secrets/extra_ca; fi; \
    python -m venv /opt/aslmig && /opt/aslmig/bin/pip install .

# Prefetch exactly the TemplateFlow files aslmig uses (MNI152NLin2009cAsym, 2 mm).
FROM build AS templates
RUN --mount=type=secret,id=extra_ca,required=false \
    if [ -s /run/secrets/extra_ca ]; then export SSL_CERT_FILE=/run/secrets/extra_ca \
        REQUESTS_CA_BUNDLE=/run/secrets/extra_ca; fi; \
    /opt/aslmig/bin/aslmig templates fetch --home /opt/templateflow

FROM ${PYTHON_IMAGE} AS runtime
COPY --from=build /opt/aslmig /opt/aslmig
COPY --from=templates /opt/templateflow /opt/templateflow
RUN useradd --uid 1000 --no-create-home --shell /usr/sbin/nologin aslmig
ENV PATH=/opt/aslmig/bin:$PATH \
    TEMPLATEFLOW_HOME=/opt/templateflow \
    NIPYPE_NO_ET=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    ASLMIG_CONTAINER_TAG=aslmig:0.1.0
LABEL org.opencontainers.image.title="aslmig" \
      org.opencontainers.image.description="BIDS App for ASL perfusion MRI in migraine research" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://pypi.org/project/aslmig/"
USER aslmig
WORKDIR /tmp
ENTRYPOINT ["aslmig"]
