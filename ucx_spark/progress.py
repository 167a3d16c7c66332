"""Progress lines on stderr for long steps: '[hh:mm:ss +elapsed] step: message'."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

_T0 = time.monotonic()


def say(message: str) -> None:
    elapsed = time.monotonic() - _T0
    print(f"[{time.strftime('%H:%M:%S')} +{elapsed:6.1f}s] {message}", file=sys.stderr, flush=True)


@contextmanager
def step(name: str) -> Iterator[None]:
    say(f"{name} ...")
    start = time.monotonic()
    yield
    say(f"{name} done in {time.monotonic() - start:.1f}s")
