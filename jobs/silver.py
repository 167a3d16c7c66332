"""spark-submit entry point: bronze -> silver, with the row accounting, as the silver step of ``ucx pipeline``
(``ucx pipeline --step silver``: the same lock, gates and bookkeeping). See jobs/_common.py."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ucx  # noqa: E402

if __name__ == "__main__":
    sys.exit(ucx(["pipeline", "--step", "silver"], label="silver"))
