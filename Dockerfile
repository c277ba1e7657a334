FROM python:3.12-slim AS builder

RUN python -m venv /opt/poetry && /opt/poetry/bin/pip install --no-cache-dir poetry==2.5.1 \
 && python -m venv /opt/venv

WORKDIR /connector
COPY pyproject.toml poetry.lock ./
COPY source_iterable_native ./source_iterable_native
RUN VIRTUAL_ENV=/opt/venv /opt/poetry/bin/poetry install --only main --no-interaction

FROM python:3.12-slim

LABEL FLOW_RUNTIME_PROTOCOL=capture
LABEL FLOW_RUNTIME_CODEC=json
LABEL dev.estuary.usage-rate=1.0

ENV DOCS_URL=https://go.estuary.dev/source-iterable-native
ENV CONNECTOR_NAME=source-iterable-native

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /connector/source_iterable_native /connector/source_iterable_native
WORKDIR /connector
CMD ["/opt/venv/bin/python", "-m", "source_iterable_native"]
