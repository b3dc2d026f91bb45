"""Chat-signal audience pipeline: pure Spark jobs driven by conf/ and scheduled by dags/."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
