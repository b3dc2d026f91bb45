"""spark-submit entry point: `spark-submit jobs/entrypoint.py stage <name> --date D ...`.

The same command line as `audience`, so an Airflow task and an engineer at a terminal run the
same code path; spark-submit (from Airflow's `spark_default` connection) decides the master.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jobs.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
