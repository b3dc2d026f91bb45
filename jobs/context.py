"""The run context: what every stage of one logical date receives, and its reads and writes."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession

from jobs.config import Config
from jobs.io import delta_exists, replace_partition
from jobs.progress import Progress
from jobs.tables import Table

COMMIT_METADATA = "spark.databricks.delta.commitInfo.userMetadata"


def make_run_id(logical_date: dt.date) -> str:
    return f"{logical_date.isoformat()}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class RunContext:
    """One run of one logical date: the session, the config (roots included), the run id recorded
    in the tables, the clock (`as_of`, aware UTC: when the run counts "now" from), progress output,
    and for the segments stage the regions it covers (None: all)."""

    spark: SparkSession
    cfg: Config
    logical_date: dt.date
    run_id: str
    as_of: dt.datetime
    progress: Progress
    regions: tuple[str, ...] | None = None

    @classmethod
    def start(
        cls,
        spark,
        cfg: Config,
        logical_date: dt.date,
        progress: Progress | None = None,
        run_id: str | None = None,
        as_of: dt.datetime | None = None,
        regions=None,
    ) -> RunContext:
        as_of = (as_of or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
        run_id = run_id or make_run_id(logical_date)
        # Every Delta commit of the run carries its id (`DESCRIBE HISTORY`'s userMetadata): which
        # Airflow run, or command-line run, wrote a version.
        spark.conf.set(COMMIT_METADATA, f"audience run {run_id}")
        return cls(
            spark,
            cfg,
            logical_date,
            run_id,
            as_of,
            progress or Progress(quiet=True),
            tuple(regions) if regions else None,
        )

    def exists(self, table: Table) -> bool:
        return delta_exists(table.path(self.cfg.warehouse))

    def read(self, table: Table) -> DataFrame | None:
        """The table's rows; when it was never written, an empty frame of its declared schema (or None)."""
        if self.exists(table):
            return self.spark.read.format("delta").load(table.path(self.cfg.warehouse))
        return self.spark.createDataFrame([], table.schema) if table.schema else None

    def replace(self, frame: DataFrame, table: Table, where: dict) -> None:
        """Replace exactly the rows matching `where` (the run's own partitions), atomically."""
        replace_partition(frame, table, self.cfg.warehouse, where)
