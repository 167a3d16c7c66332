"""spark-submit entry point: ``ucx stream``, household scores that follow silver's events
(Structured Streaming over the change data feed; ucx_spark/pipelines/stream.py, docs/streaming.md).
It holds the warehouse's stream lock (one scoring stream per warehouse), never the pipeline's:
`ucx pipeline` keeps writing the silver tables it reads. See jobs/_common.py for the session."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import parser, run_job  # noqa: E402


def body(spark, cfg, args):  # type: ignore[no-untyped-def]
    from ucx_spark.pipelines import stream

    return stream.run_with(spark, cfg, args)


if __name__ == "__main__":
    from ucx_spark.cli import stream_arguments

    p = parser("silver change feed -> gold/household_scores (a micro-batch per trigger)", landing=False)
    stream_arguments(p)
    sys.exit(run_job("stream", body, p.parse_args(), lock="stream"))
