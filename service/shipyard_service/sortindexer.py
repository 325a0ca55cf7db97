"""The sort indexer: writes the comparison view's input and output sort keys for
executions that ended (store/sortindex.py) every `settings.sort_index_interval_s`, in
batches, resuming from its stored mark; then fills the filter columns of keys written
before migrations 0017, 0021 and 0023."""

from __future__ import annotations

from .periodic import PeriodicWork


class SortIndexer(PeriodicWork):
    name = "sort-indexer"

    def run_once(self) -> int:
        return self.index_once()

    def index_once(self) -> int:
        """One pass over every environment, until each is caught up (or the indexer is
        stopped); returns how many executions it passed or took off the pending list.
        Each batch is its own short transaction: writers wait for one batch at most.
        Servers sharing a store take turns (store/exclusive.py): 0 when another one is
        indexing it."""
        from .domain.lifecycle import FINAL
        from .store import db_session, sortindex
        from .store.db import utcnow
        from .store.exclusive import only_one
        from .store.models import Environment, MetricSortFill, MetricStatusFill, SortFill

        passed = 0
        with db_session(), only_one(self.name) as mine:
            if not mine:
                return 0
            environments = {e for (e,) in Environment.select(Environment.id).tuples()}
            sortindex.forget(environments)
            for environment_id in sorted(environments):
                passed += sortindex.index_pending(environment_id, FINAL,
                                                  utcnow() - sortindex.LAG)
                while not self.should_stop():
                    count = sortindex.index_batch(environment_id, FINAL,
                                                  utcnow() - sortindex.LAG)
                    passed += count
                    if count < sortindex.BATCH:
                        break
                # Keys written before migrations 0017 (input/output), 0021 and 0023
                # (metric): their filter columns.
                for fill in (SortFill, MetricSortFill, MetricStatusFill):
                    while not self.should_stop():
                        count = sortindex.fill_batch(environment_id, model=fill, ended=FINAL)
                        passed += count
                        if count < sortindex.BATCH:
                            break
        return passed
