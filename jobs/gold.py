"""spark-submit entry point: silver -> gold (its gates at publish and Data Docs), as the gold step of ``ucx pipeline``
(``ucx pipeline --step gold``: the same lock, gates and bookkeeping). See jobs/_common.py."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ucx  # noqa: E402

if __name__ == "__main__":
    sys.exit(ucx(["pipeline", "--step", "gold"], label="gold"))
