# Airflow image of this project for docker-compose.yaml (and any container runtime).
#
# Slim official image of the pinned Airflow version: it holds Airflow core only. The regular
# image ships ~30 providers whose pins (pandas<3, google-*, ...) conflict with this project's
# lock, so installing the lock on top of it would leave broken providers behind; on the slim
# one the lock installs cleanly and `pip check` proves the result consistent.
# tests/deploy checks that this tag's version is the apache-airflow pin of pyproject.toml.
FROM apache/airflow:slim-3.3.2-python3.12

# The project is installed editable from here: settings.INCLUDE_DIR is the package's parent,
# so include/sql, include/config and include/sample_data must stay next to the package, and
# docker-compose.yaml mounts ./include over this folder so code edits apply without a rebuild.
ARG PROJECT_DIR=/opt/spotify-etl

# 50000 is the official image's `airflow` user (numeric, so any host can resolve it); the
# image's convention is group 0 for everything Airflow writes.
USER 0
RUN mkdir -p "${PROJECT_DIR}" /opt/airflow/lake \
    && chown 50000:0 "${PROJECT_DIR}" /opt/airflow/lake
USER 50000

# image-requirements.txt is requirements.txt (same pins, tested there) re-resolved for this
# image's Python plus the Postgres driver of the metadata database (`make lock-image`).
# It pins apache-airflow to the base image's version, so pip never up- or downgrades Airflow.
COPY --chown=50000:0 deploy/docker/image-requirements.txt ${PROJECT_DIR}/image-requirements.txt
RUN pip install --no-cache-dir -r "${PROJECT_DIR}/image-requirements.txt"

COPY --chown=50000:0 pyproject.toml README.md ${PROJECT_DIR}/
COPY --chown=50000:0 include ${PROJECT_DIR}/include
RUN pip install --no-cache-dir --no-deps --editable "${PROJECT_DIR}" \
    && pip check

COPY --chown=50000:0 dags /opt/airflow/dags

ENV SPOTIFY_ETL_LAKE_DIR=/opt/airflow/lake
