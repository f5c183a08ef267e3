# Airflow image of the production-shaped stack (docker-compose.yaml): the official Airflow 3.3.2
# image plus this project's pinned runtime requirements and code. Build: docker compose build
ARG AIRFLOW_BASE_IMAGE=apache/airflow:3.3.2-python3.11
FROM ${AIRFLOW_BASE_IMAGE}

# The official image installs Python packages as the `airflow` user.
USER airflow

# Runtime subset of requirements.txt (development-only tools left out), same exact pins.
COPY --chown=airflow:0 requirements.txt scripts/compose/dev-requirements.txt scripts/compose/prod_requirements.py /tmp/build/
RUN python /tmp/build/prod_requirements.py /tmp/build/requirements.txt /tmp/build/dev-requirements.txt \
        > /tmp/build/requirements-prod.txt \
    && pip install --no-cache-dir -r /tmp/build/requirements-prod.txt \
    && rm -rf /tmp/build

# Project code: DAGs import `include.iseller_accurate...`; the sandboxes run from the same image.
ENV PYTHONPATH=/opt/airflow
COPY --chown=airflow:0 include/ /opt/airflow/include/
COPY --chown=airflow:0 sandbox/ /opt/airflow/sandbox/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
# Used by airflow-init to write the simple auth manager's passwords file.
COPY --chown=airflow:0 scripts/compose/auth_passwords.py /opt/airflow/bin/auth_passwords.py
