"""spark-submit entry point: silver -> gold, as the gold step of ``ucx pipeline`` (its gates at publish and Data Docs).
See jobs/_common.py for how the session is built."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import run_job, step_body, step_parser  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_job("gold", step_body("gold"), step_parser("gold", "silver -> gold").parse_args()))
