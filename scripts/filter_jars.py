"""Keep only the Maven-resolved jars that the pip pyspark does not already ship.

Delta's transitive closure includes older copies of jackson, hadoop-client,
parquet, scala-library and log4j; putting those on the classpath next to
Spark's own newer copies invites NoSuchMethodError.  This copies from SRC to
DST every jar whose artifact name (the file name without its version) is not
present in pyspark's jars folder.

usage: python scripts/filter_jars.py SRC_DIR DST_DIR
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pyspark

_VERSION = re.compile(r"-\d[\w.\-]*\.jar$")


def artifact(name: str) -> str:
    return _VERSION.sub("", name)


def main(src: str, dst: str) -> int:
    spark_jars = Path(pyspark.__file__).parent / "jars"
    shipped = {artifact(p.name) for p in spark_jars.glob("*.jar")}
    out = Path(dst)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.jar"):
        old.unlink()
    kept = []
    for jar in sorted(Path(src).glob("*.jar")):
        if artifact(jar.name) in shipped:
            continue
        shutil.copy2(jar, out / jar.name)
        kept.append(jar.name)
    if not any(k.startswith("delta-spark_") for k in kept):
        print(f"error: no delta-spark jar found in {src}", file=sys.stderr)
        return 1
    print(f"{len(kept)} jars in {out}: {', '.join(kept)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
