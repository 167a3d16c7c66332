"""spark-submit entry point: ``ucx stream``, household scores that follow silver's events
(Structured Streaming over the change data feed; ucx_spark/pipelines/stream.py, docs/streaming.md).
It holds the warehouse's stream lock (one scoring stream per warehouse), never the pipeline's:
`ucx pipeline` keeps writing the silver tables it reads. See jobs/_common.py for the session."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ucx  # noqa: E402

if __name__ == "__main__":
    sys.exit(ucx(["stream"], label="stream"))
