"""`ucx rekey`: rotate the pseudonym key (contract section 3) across the warehouse.

Every ``household_id`` is HMAC(key, "account:" + account_id) and every ``meter_key``
HMAC(key, "meter:" + meter_id). Rotating the key (it leaked, or policy says so)
re-derives them all:

1. the old-to-new mapping is built from the identifiers silver holds (every
   ``account_id`` and ``meter_id`` of every silver table) and written to
   ``<warehouse>/_restricted/rekey_map`` (owner-only: with both keys gone from it,
   it still links old and new pseudonyms);
2. every Delta table of silver, gold and ``_restricted`` with a ``household_id`` or
   ``meter_key`` column is rewritten in one commit each, old values replaced
   through the mapping (a value that is already new stays: a crashed rekey is
   resumed by running it again with the same two keys);
3. every table is checked (silver: each pseudonym equals the new key's from its
   own identifier; elsewhere: no old pseudonym is left), then the mapping is
   deleted.

Afterwards set UCX_PSEUDONYM_KEY to the new key. Old table versions still hold
the old pseudonyms until ``ucx maintain`` vacuums them (after the retention);
models hold no pseudonym (features only), so nothing is retrained; the next
``ucx pipeline`` rebuilds gold from the rekeyed silver.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ucx_spark.errors import DataError, UcxError
from ucx_spark.identity import household_id, meter_key
from ucx_spark.io import delta_log

LAYERS = ("silver", "gold", "_restricted")
COLUMNS = {"household_id": ("account_id", "account"), "meter_key": ("meter_id", "meter")}
MAP_DIR = "rekey_map"


@dataclass
class RekeyResult:
    tables: list[str] = field(default_factory=list)
    mapped: dict[str, int] = field(default_factory=dict)  # column -> identifiers mapped

    def summary(self) -> str:
        return (f"rekeyed {len(self.tables)} tables ({', '.join(self.tables)}); "
                f"{self.mapped.get('household_id', 0):,} household ids and {self.mapped.get('meter_key', 0):,} meter keys "
                "re-derived with the new key. Set UCX_PSEUDONYM_KEY to the new key; old table versions keep the old "
                "pseudonyms until `ucx maintain` vacuums them.")


def _tables(warehouse: Path) -> list[tuple[str, Path]]:
    found = []
    for layer in LAYERS:
        folder = warehouse / layer
        if folder.is_dir():
            for path in sorted(p for p in folder.iterdir() if (p / delta_log.LOG_DIR).is_dir() and p.name != MAP_DIR):
                found.append((f"{layer}/{path.name}", path))
    return found


def _mapping(spark: SparkSession, silver: list[tuple[str, Path]], *, old: bytes, new: bytes) -> dict[str, DataFrame]:
    """column -> (old, new) pairs of every identifier silver holds."""
    out = {}
    frames = [spark.read.format("delta").load(str(p)) for _, p in silver]  # one read per table
    for column, (source, _) in COLUMNS.items():
        ids = [df.select(F.col(source).alias("_id")) for df in frames if source in df.columns]
        if not ids:
            continue
        derive = household_id if column == "household_id" else meter_key
        union = ids[0]
        for df in ids[1:]:
            union = union.unionByName(df)
        out[column] = (union.where(F.col("_id").isNotNull()).distinct()
                       .select(derive(F.col("_id"), key=old).alias("_old"), derive(F.col("_id"), key=new).alias("_new")))
    return out


def run(spark: SparkSession, *, warehouse: str, old_key: bytes, new_key: bytes, run_id: str) -> RekeyResult:
    """Rotate every pseudonym of the warehouse from ``old_key`` to ``new_key`` (module doc)."""
    from ucx_spark.io.lock import warehouse_lock

    if not old_key or not new_key:
        raise UcxError("ucx rekey needs both keys: UCX_PSEUDONYM_KEY (current) and UCX_NEW_PSEUDONYM_KEY (new)")
    if old_key == new_key:
        raise UcxError("the new pseudonym key is the current one: nothing to rotate")
    root = Path(warehouse).resolve()
    result = RekeyResult()
    with warehouse_lock(warehouse, run_id=run_id):
        tables = _tables(root)
        silver = [(n, p) for n, p in tables if n.startswith("silver/")]
        accounts = root / "silver" / "accounts"
        if not (accounts / delta_log.LOG_DIR).is_dir():
            raise UcxError(f"no silver/accounts under {root}: nothing to rekey from")
        # the current key must be the one the warehouse was built with: check one account
        probe = spark.read.format("delta").load(str(accounts)).where("account_id IS NOT NULL").select(
            "account_id", "household_id").limit(1).first()
        if probe is not None:
            got = spark.range(1).select(household_id(F.lit(probe["account_id"]), key=old_key)).first()[0]
            if got != probe["household_id"] and spark.range(1).select(
                    household_id(F.lit(probe["account_id"]), key=new_key)).first()[0] != probe["household_id"]:
                raise UcxError("UCX_PSEUDONYM_KEY is not the key silver/accounts was built with: nothing was changed")
        map_root = root / "_restricted" / MAP_DIR
        map_root.mkdir(parents=True, exist_ok=True)
        os.chmod(root / "_restricted", 0o700)
        os.chmod(map_root, 0o700)
        maps = {}
        for column, pairs in _mapping(spark, silver, old=old_key, new=new_key).items():
            path = str(map_root / column)
            pairs.write.format("delta").mode("overwrite").save(path)  # resumable: the same pairs again
            maps[column] = spark.read.format("delta").load(path)
            result.mapped[column] = maps[column].count()
        for name, path in tables:
            df = spark.read.format("delta").load(str(path))
            present = [c for c in COLUMNS if c in df.columns and c in maps]
            if not present:
                continue
            out = df
            for column in present:
                m = F.broadcast(maps[column]) if result.mapped[column] <= 1_000_000 else maps[column]
                out = (out.join(m.withColumnRenamed("_old", column), column, "left")
                       .withColumn(column, F.coalesce(F.col("_new"), F.col(column))).drop("_new"))
            out = out.select(*df.columns)
            (out.write.format("delta").mode("overwrite").option("overwriteSchema", "false")
             .option("userMetadata", json.dumps({"operation": "ucx rekey", "run_id": run_id}))
             .save(str(path)))
            result.tables.append(name)
        _verify(spark, tables, maps, new_key=new_key)
        shutil.rmtree(map_root)
    return result


def _verify(spark: SparkSession, tables: list[tuple[str, Path]], maps: dict[str, DataFrame], *, new_key: bytes) -> None:
    """Silver pseudonyms equal the new key's of their own identifier; no old pseudonym is left anywhere."""
    problems = []
    for name, path in tables:
        df = spark.read.format("delta").load(str(path))
        for column, (source, _) in COLUMNS.items():
            if column not in df.columns or column not in maps:
                continue
            if source in df.columns:
                derive = household_id if column == "household_id" else meter_key
                bad = df.where(F.col(source).isNotNull() & (F.col(column) != derive(F.col(source), key=new_key))).count()
            else:
                bad = df.join(maps[column].select(F.col("_old").alias(column)), column, "left_semi").count()
            if bad:
                problems.append(f"{name}.{column}: {bad} rows")
    if problems:
        raise DataError("rekey left old pseudonyms (rerun `ucx rekey` with the same two keys to finish): "
                        + "; ".join(problems))


__all__ = ["RekeyResult", "run"]
