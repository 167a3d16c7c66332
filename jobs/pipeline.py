"""spark-submit entry point: landing -> bronze -> silver -> gold in one Spark application
(``ucx pipeline``, the same options and exit codes).

    spark-submit --master spark://127.0.0.1:7077 --py-files ucx_spark.zip \\
        --jars "$(ls .jars/delta/*.jar | paste -sd,)" \\
        jobs/pipeline.py --landing data/landing --warehouse data/warehouse

See jobs/_common.py for how the session is built under spark-submit and plain python.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ucx  # noqa: E402

if __name__ == "__main__":
    sys.exit(ucx(["pipeline"], label="pipeline"))
