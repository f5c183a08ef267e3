# Airflow image of the production-shaped stack (docker-compose.yaml): the official slim Airflow
# 3.3.2 image (Airflow without the bundled providers) plus this project's pinned runtime
# requirements and code. Build: docker compose build
ARG AIRFLOW_BASE_IMAGE=apache/airflow:slim-3.3.2-python3.11
FROM ${AIRFLOW_BASE_IMAGE}

# The official image installs Python packages as the `airflow` user.
USER airflow

# Exactly the runtime pins (requirements.txt, made by `make pins`; docs/dependencies.md): the slim
# base brings no providers of its own whose requirements could clash with them, and `pip check`
# fails the build if anything installed does not fit. The development tools (requirements-dev.txt)
# stay out of the image.
COPY --chown=airflow:0 requirements.txt /tmp/build/requirements.txt
RUN pip install --no-cache-dir -r /tmp/build/requirements.txt \
    && pip check \
    && rm -rf /tmp/build

# Project code: DAGs import `include.iseller_accurate...`; the sandboxes run from the same image.
ENV PYTHONPATH=/opt/airflow
COPY --chown=airflow:0 include/ /opt/airflow/include/
COPY --chown=airflow:0 sandbox/ /opt/airflow/sandbox/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
# Used by airflow-init: the FAB admin and notes users, the roles SyncOperator and SyncViewer.
COPY --chown=airflow:0 scripts/compose/fab_users.sh /opt/airflow/bin/fab_users.sh
