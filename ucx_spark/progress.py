"""Progress lines on stderr for long steps: '[hh:mm:ss +elapsed] step: message'."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
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


def live() -> bool:
    """Whether progress bars are drawn: stderr is a terminal and UCX_PROGRESS is not ``off``
    (logs, CI and tests get the plain lines of ``say`` instead)."""
    return sys.stderr.isatty() and os.environ.get("UCX_PROGRESS", "auto").lower() != "off"


@contextmanager
def bar(description: str, total: int, *, echo: bool = False) -> Iterator[Callable[[str | None], None]]:
    """A progress bar for a loop of ``total`` items; yields ``advance(line)``, called once per item
    (from any thread). On a terminal (``live``) a rich bar shows the count, the elapsed time and
    ``line`` (the item just done), and is gone when the loop ends; elsewhere nothing is shown, or
    with ``echo`` each ``line`` printed with ``say``."""
    if not live():
        yield lambda line=None: say(line) if echo and line else None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[line]}"))
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=total, line="")

        def advance(line: str | None = None) -> None:
            progress.update(task, advance=1, line=line or "")

        yield advance
