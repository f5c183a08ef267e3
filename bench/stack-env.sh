# shellcheck shell=bash
# Source before `make up` (or `bash scripts/stack.sh up`) to start a stack for the benchmarks: the
# deployed dags/ folder plus a second DAG bundle on bench/dags (the do-nothing floor DAG
# `bench_floor` of bench/bench_realtime.py). A stack started without it runs every other benchmark;
# bench_realtime.py then reports its figures as skipped.
#
#   . bench/stack-env.sh && bash scripts/stack.sh down && bash scripts/stack.sh up && make bench
_bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST="[
 {\"name\": \"dags-folder\", \"classpath\": \"airflow.dag_processing.bundles.local.LocalDagBundle\", \"kwargs\": {}},
 {\"name\": \"bench\", \"classpath\": \"airflow.dag_processing.bundles.local.LocalDagBundle\",
  \"kwargs\": {\"path\": \"$_bench_dir/dags\"}}
]"
unset _bench_dir
