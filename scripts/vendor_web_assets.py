"""Download the Data Docs' web assets (PACKAGES of ucx_spark/quality/docs_offline.py) from the npm
registry into ucx_spark/_vendor/web, so Data Docs open without internet. Run by `make setup`.

    python scripts/vendor_web_assets.py [--registry URL]

The registry defaults to npm's configured one (`npm config get registry`) or
https://registry.npmjs.org/. Each tarball's SHA-512 is checked against the registry's
`dist.integrity`. Existing files are kept (idempotent).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.util
import io
import json
import shutil
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _module():
    spec = importlib.util.spec_from_file_location("docs_offline", ROOT / "ucx_spark" / "quality" / "docs_offline.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


def _registry() -> str:
    if shutil.which("npm"):
        try:
            out = subprocess.run(["npm", "config", "get", "registry"], capture_output=True, text=True, timeout=60, check=True)
            if out.stdout.strip().startswith("http"):
                return out.stdout.strip().rstrip("/") + "/"
        except (subprocess.SubprocessError, OSError):
            pass
    return "https://registry.npmjs.org/"


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as resp:  # noqa: S310 - the npm registry
        return resp.read()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", default=None)
    args = parser.parse_args(argv)
    mod = _module()
    registry = (args.registry or _registry()).rstrip("/") + "/"
    fetched = 0
    for package, version, files in mod.PACKAGES:
        dest = mod.VENDOR_DIR / mod.folder(package)
        if all((dest / f.rstrip("/")).exists() for f in files):
            continue
        meta = json.loads(_get(f"{registry}{package.replace('/', '%2F')}/{version}"))
        data = _get(meta["dist"]["tarball"])
        integrity = meta["dist"].get("integrity", "")
        if integrity.startswith("sha512-"):
            digest = base64.b64encode(hashlib.sha512(data).digest()).decode()
            if digest != integrity.removeprefix("sha512-"):
                print(f"error: {package}@{version}: the tarball's SHA-512 does not match the registry's", file=sys.stderr)
                return 1
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar.getmembers():
                if not member.isfile():
                    continue
                name = member.name.split("/", 1)[1] if "/" in member.name else member.name  # drop "package/"
                if not any(name == f or (f.endswith("/") and name.startswith(f)) for f in files):
                    continue
                out = dest / name
                out.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(member)
                assert src is not None
                out.write_bytes(src.read())
        missing = [f for f in files if not (dest / f.rstrip("/")).exists()]
        if missing:
            print(f"error: {package}@{version} has no {missing}", file=sys.stderr)
            return 1
        fetched += 1
        print(f"vendored {package}@{version} ({len(files)} paths)")
    print(f"Data Docs web assets in {mod.VENDOR_DIR} ({fetched} packages fetched, {len(mod.PACKAGES) - fetched} present)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
