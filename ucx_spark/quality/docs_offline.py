"""Data Docs that open where the data lives: GX renders its pages with scripts and styles from
public CDNs (jQuery, Bootstrap, bootstrap-table, Font Awesome, Vega); on a machine without
internet the index shows an unstyled page whose validation table stays empty (bootstrap-table
fills it from a JSON array in the page).

``make setup`` downloads the same versions from the npm registry into ``ucx_spark/_vendor/web``
(``scripts/vendor_web_assets.py``, which reads PACKAGES from this file); after GX renders,
``localise(site)`` copies them into ``<site>/static/vendor`` and rewrites every page's CDN
address into a relative path. Only the standard library here: the setup script loads this file
on its own.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

VENDOR_DIR = Path(__file__).resolve().parent.parent / "_vendor" / "web"

# npm package, version, files (a trailing / keeps a whole folder) -> VENDOR_DIR/<folder>/<file>
PACKAGES: list[tuple[str, str, list[str]]] = [
    ("jquery", "3.7.1", ["dist/jquery.min.js"]),
    ("bootstrap", "4.3.1", ["dist/js/bootstrap.min.js", "dist/css/bootstrap.min.css"]),
    ("bootstrap-table", "1.19.1", [
        "dist/bootstrap-table.min.js", "dist/bootstrap-table.min.css",
        "dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
        "dist/extensions/filter-control/bootstrap-table-filter-control.css",
        "dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
    ]),
    ("popper.js", "1.12.9", ["dist/umd/popper.min.js"]),
    ("bootstrap-datepicker", "1.9.0", ["dist/js/bootstrap-datepicker.min.js", "dist/css/bootstrap-datepicker.min.css"]),
    ("@fortawesome/fontawesome-free", "6.6.0", ["css/all.min.css", "webfonts/"]),
    ("@forevolve/bootstrap-dark", "1.1.0", ["dist/css/bootstrap-prefers-dark.css"]),
    ("vega", "5.33.0", ["build/vega.min.js"]),
    ("vega-lite", "5.23.0", ["build/vega-lite.min.js"]),
    ("vega-embed", "6.29.0", ["build/vega-embed.min.js"]),
]

# CDN address (regular expression) -> file under <site>/static/vendor ({1} etc. from the groups)
REWRITES: list[tuple[str, str]] = [
    (r"https://unpkg\.com/bootstrap-table@1\.19\.[01]/dist/([\w./-]+)", "bootstrap-table/dist/{1}"),
    (r"https://stackpath\.bootstrapcdn\.com/bootstrap/4\.3\.1/(js/[\w./-]+)", "bootstrap/dist/{1}"),
    (r"https://maxcdn\.bootstrapcdn\.com/bootstrap/4\.3\.1/(css/[\w./-]+)", "bootstrap/dist/{1}"),
    (r"https://code\.jquery\.com/jquery-3\.7\.1\.min\.js", "jquery/dist/jquery.min.js"),
    (r"https://cdnjs\.cloudflare\.com/ajax/libs/popper\.js/1\.12\.9/umd/popper\.min\.js", "popper.js/dist/umd/popper.min.js"),
    (r"https://cdnjs\.cloudflare\.com/ajax/libs/bootstrap-datepicker/1\.9\.0/(js|css)/([\w./-]+)", "bootstrap-datepicker/dist/{1}/{2}"),
    (r"https://cdnjs\.cloudflare\.com/ajax/libs/font-awesome/6\.6\.0/css/all\.min\.css", "fontawesome-free/css/all.min.css"),
    (r"https://cdn\.jsdelivr\.net/npm/@forevolve/bootstrap-dark@1\.1\.0/dist/css/bootstrap-prefers-dark\.css",
     "bootstrap-dark/dist/css/bootstrap-prefers-dark.css"),
    (r"https://cdn\.jsdelivr\.net/npm/vega@5", "vega/build/vega.min.js"),
    (r"https://cdn\.jsdelivr\.net/npm/vega-lite@5", "vega-lite/build/vega-lite.min.js"),
    (r"https://cdn\.jsdelivr\.net/npm/vega-embed@6", "vega-embed/build/vega-embed.min.js"),
]
_ATTR = re.compile(r'(src|href)="(https?://[^"]+)"')
_GX_LOGO = re.compile(r"https://great-expectations-web-assets\.s3[\w.-]*\.amazonaws\.com/(logo-long\.png)(\?[^\"]*)?")


def folder(package: str) -> str:
    """VENDOR_DIR sub-folder of an npm package (its name without the scope)."""
    return package.split("/")[-1]


def vendored() -> bool:
    return all((VENDOR_DIR / folder(p) / f.rstrip("/")).exists() for p, _, files in PACKAGES for f in files)


def _target(url: str) -> str | None:
    for pattern, target in REWRITES:
        m = re.fullmatch(pattern, url)
        if m:
            return target.format(None, *m.groups())
    return None


def localise(site: str | Path) -> dict[str, int]:
    """Copy the vendored assets into ``<site>/static/vendor`` and point every page of the Data Docs
    site at them (and the GX logo at the site's own copy). Idempotent: a page without a CDN
    address is not rewritten. Returns {"pages": rewritten, "left": external script/style
    addresses left (no local copy)}. Without a vendored copy (``make setup`` not run) the pages
    are left as GX wrote them and a warning says why."""
    site = Path(site)
    if not site.is_dir():
        return {"pages": 0, "left": 0}
    if not vendored():
        log.warning("Data Docs keep their CDN addresses: no local copy in %s (run `make setup`)", VENDOR_DIR)
        return {"pages": 0, "left": 0}
    dest = site / "static" / "vendor"
    stamp = dest / ".versions"
    versions = ";".join(f"{p}@{v}" for p, v, _ in PACKAGES)
    if not stamp.is_file() or stamp.read_text() != versions:
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(VENDOR_DIR, dest)
        stamp.write_text(versions)
    pages = left = 0
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        if "https://" not in text:
            continue
        rel = Path(os.path.relpath(site / "static", page.parent)).as_posix()

        def swap(m: re.Match[str], rel: str = rel) -> str:
            nonlocal left
            attr, url = m.group(1), m.group(2)
            logo = _GX_LOGO.fullmatch(url)
            if logo:
                return f'{attr}="{rel}/images/{logo.group(1)}"'
            target = _target(url)
            if target is None:
                if attr == "src" or url.endswith((".css", ".js")):
                    left += 1
                return m.group(0)
            return f'{attr}="{rel}/vendor/{target}"'

        new = _ATTR.sub(swap, text)
        if new != text:
            page.write_text(new, encoding="utf-8")
            pages += 1
    if left:
        log.warning("Data Docs: %d script/style addresses have no local copy and still need the internet", left)
    return {"pages": pages, "left": left}


__all__ = ["PACKAGES", "REWRITES", "VENDOR_DIR", "localise", "vendored"]
