"""Compare every Delta table of two warehouses built from the same landing zone with the same key
(e.g. before and after a refactor that must not change behaviour): same tables, same columns,
same rows. Columns that record when or in which run a row was written differ by nature and are
left out of the row comparison (listed per table in the output), and so is the age a freshness
check observed (gold/quality_results: it depends on when the check ran).

    .venv/bin/python scripts/compare_warehouses.py WAREHOUSE_A WAREHOUSE_B [--tolerance 1e-9]

Prints one line per table (rows in A, rows in B, rows only in A, rows only in B) and exits 1 if
any table differs. Doubles are rounded to 9 significant decimals before comparing (a sum of
doubles depends on the order Spark adds them).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# when or by which run a row was written: differs between two builds by nature
VOLATILE = {
    "run_id", "_run_id", "_ingested_at", "created_at", "computed_at", "scored_at", "checked_at",
    "recorded_at", "published_at", "ingested_at", "processed_at", "started_at_run", "finished_at", "run_started_at",
    "run_finished_at", "seconds", "duration_s", "operator", "host", "data_docs", "_source_run",
}
LAYERS = ("bronze", "silver", "gold", "quarantine")


def delta_tables(warehouse: Path) -> set[str]:
    return {str(p.parent.relative_to(warehouse)) for p in warehouse.glob("*/**/_delta_log")
            if p.parent.relative_to(warehouse).parts[0] in LAYERS}


def comparable(df, digits: int):  # noqa: ANN001, ANN201 - DataFrame in, DataFrame out
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    cols = []
    for f in df.schema.fields:
        if f.name in VOLATILE:
            continue
        c = F.col(f"`{f.name}`")
        if isinstance(f.dataType, T.DoubleType | T.FloatType):
            c = F.round(c, digits)
        elif isinstance(f.dataType, T.MapType | T.ArrayType | T.StructType):
            c = F.to_json(c)  # exceptAll needs comparable types
        if f.name == "observed_value" and "expectation_type" in df.columns:
            # a freshness check observes the data's age at the time it ran: the wall clock, not the data
            c = F.when(F.col("expectation_type") == "ucx_freshness",
                       F.regexp_replace(c, r"[0-9.]+ h old", "<age> h old")).otherwise(c)
        cols.append(c.alias(f.name))
    return df.select(*cols)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--digits", type=int, default=9, help="decimals doubles are rounded to (default 9)")
    args = parser.parse_args(argv)

    from ucx_spark.config import SparkConfig
    from ucx_spark.session import build_spark

    spark = build_spark(SparkConfig(master="local[2]", shuffle_partitions=2, driver_memory="2g", log_level="ERROR",
                                    ui_enabled=False, metastore="none"), warehouse=str(args.a), time_zone="UTC")
    tables_a, tables_b = delta_tables(args.a), delta_tables(args.b)
    differ = 0
    for name in sorted(tables_a ^ tables_b):
        print(f"{name:<40} only in {'A' if name in tables_a else 'B'}")
        differ += 1
    for name in sorted(tables_a & tables_b):
        df_a = spark.read.format("delta").load(str(args.a / name))
        df_b = spark.read.format("delta").load(str(args.b / name))
        ignored = sorted(VOLATILE & set(df_a.columns))
        if sorted(df_a.columns) != sorted(df_b.columns):
            print(f"{name:<40} columns differ: {sorted(set(df_a.columns) ^ set(df_b.columns))}")
            differ += 1
            continue
        ca = comparable(df_a, args.digits)
        cb = comparable(df_b, args.digits).select(*ca.columns)
        n_a, n_b = df_a.count(), df_b.count()
        only_a, only_b = ca.exceptAll(cb).count(), cb.exceptAll(ca).count()
        same = n_a == n_b and only_a == 0 and only_b == 0
        differ += not same
        print(f"{name:<40} {'same' if same else 'DIFFER'}  rows {n_a:>9,} / {n_b:>9,}  only in A {only_a:,}, "
              f"only in B {only_b:,}" + (f"  (not compared: {', '.join(ignored)})" if ignored else ""))
    spark.stop()
    print(f"{len(tables_a | tables_b)} tables, {differ} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
