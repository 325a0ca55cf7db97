"""`make bench`: every benchmark prints its figures beside a baseline measured in the same
run, and their ratio. Bounded in count and time; loopback only."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import (  # noqa: E402
    bench_compare,
    bench_datastore,
    bench_endpoints,
    bench_git_steps,
    bench_graphs,
    bench_metrics,
    bench_rerun,
    bench_run_pipeline,
    bench_sandbox,
    bench_store,
)

BENCHMARKS = [bench_run_pipeline, bench_sandbox, bench_graphs, bench_rerun, bench_endpoints,
              bench_metrics,
              bench_git_steps,
              bench_datastore, bench_compare, bench_store]


def main() -> int:
    for module in BENCHMARKS:
        print(f"== {module.__name__.split('.')[-1]}", flush=True)
        module.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
