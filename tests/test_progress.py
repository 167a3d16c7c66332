"""Progress for long loops (issue 23): a rich bar on a terminal, plain lines (or nothing) elsewhere."""

from __future__ import annotations

import io
import sys
import threading

from ucx_spark import progress


def test_off_a_terminal_a_bar_prints_its_lines_only_when_asked(capsys, monkeypatch) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    with progress.bar("feeds", 2) as advance:
        advance("accounts: 24 rows")
        advance("ami: 17,611 rows")
    assert capsys.readouterr().err == ""
    with progress.bar("trials", 2, echo=True) as advance:
        advance("csat: trial 0 spearman=0.5")
        advance(None)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].endswith("] csat: trial 0 spearman=0.5")


def test_on_a_terminal_a_bar_counts_every_item_from_any_thread(monkeypatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.delenv("UCX_PROGRESS", raising=False)
    assert progress.live()
    with progress.bar("silver: feeds", 8) as advance:
        threads = [threading.Thread(target=advance, args=(f"feed {i}",)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    drawn = terminal.getvalue()
    assert "silver: feeds" in drawn and "8/8" in drawn
    monkeypatch.setenv("UCX_PROGRESS", "off")
    assert not progress.live()
