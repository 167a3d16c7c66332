from __future__ import annotations

import hashlib
import hmac

from chispa import assert_df_equality
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from ucx_spark.identity import household_id, meter_key

KEY = b"k\xc3\xa9y-for-tests"  # non-ASCII on purpose: the key is UTF-8 bytes


def _ref(value: str | None, ns: str, key: bytes = KEY) -> str | None:
    if value is None:
        return None
    return hmac.new(key, f"{ns}:{value}".encode(), hashlib.sha256).hexdigest()[:32]


def test_pseudonyms_match_python_hmac(spark):
    schema = StructType([StructField("account_id", StringType()), StructField("meter_id", StringType())])
    rows = [("A000001", "M1"), ("Zoë-42", "M-ü"), (None, None)]
    df = spark.createDataFrame(rows, schema)
    got = df.select(
        "account_id",
        household_id(F.col("account_id"), key=KEY).alias("household_id"),
        meter_key(F.col("meter_id"), key=KEY).alias("meter_key"),
    )
    expected = spark.createDataFrame(
        [(a, _ref(a, "account"), _ref(m, "meter")) for a, m in rows],
        "account_id string, household_id string, meter_key string",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_long_key_is_hashed_first_as_rfc2104_says(spark):
    key = b"x" * 100
    df = spark.createDataFrame([("A1",)], "account_id string")
    got = df.select(household_id(F.col("account_id"), key=key).alias("h")).first()["h"]
    assert got == _ref("A1", "account", key)
    assert len(got) == 32
