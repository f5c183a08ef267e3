"""The hostname Airflow records for a task instance (``[core] hostname_callable``).

The Celery lane of the local stack runs several workers on one machine; each gets its own name
in ``SYNC_WORKER_HOSTNAME`` (scripts/stack.sh: worker i is ``127.0.1.i``, an address of the
loopback network), so the task instances show which worker ran them and the API server can reach
a log server at that address. Anywhere else (scheduler, API server, docker-compose, an existing
Airflow) the variable is unset and this is Airflow's default, the machine's fully qualified name.
"""

from __future__ import annotations

import os
import socket


def get_hostname() -> str:
    name = os.environ.get("SYNC_WORKER_HOSTNAME", "").strip()
    return name or socket.getfqdn()
