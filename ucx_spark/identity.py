"""Pseudonyms (contract section 3) as Spark Column helpers, built-ins only.

``household_id = hex(HMAC-SHA256(key, "account:" + account_id))[:32]`` and
``meter_key = hex(HMAC-SHA256(key, "meter:" + meter_id))[:32]``.

Spark has SHA-256 but no HMAC; HMAC is two nested hashes over the key XORed
with fixed pads (RFC 2104), and the padded keys are constants computed once
on the driver, so the whole thing runs as built-in expressions on executors.
"""

from __future__ import annotations

import hashlib
import hmac

from pyspark.sql import Column
from pyspark.sql import functions as F

_BLOCK = 64  # SHA-256 block size in bytes


def _padded_keys(key: bytes) -> tuple[bytes, bytes]:
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner = bytes(b ^ 0x36 for b in key)
    outer = bytes(b ^ 0x5C for b in key)
    return inner, outer


def hmac_sha256_hex(message: Column, key: bytes) -> Column:
    """Lower-case hex HMAC-SHA256 of the UTF-8 bytes of a string column (null stays null)."""
    inner, outer = _padded_keys(key)
    inner_hash = F.unhex(F.sha2(F.concat(F.lit(inner), F.encode(message, "UTF-8")), 256))
    return F.sha2(F.concat(F.lit(outer), inner_hash), 256)


def pseudonym(value: Column, *, key: bytes, namespace: str) -> Column:
    """hex(HMAC-SHA256(key, namespace + ":" + value))[:32]; null for a null value."""
    return F.substring(hmac_sha256_hex(F.concat(F.lit(namespace + ":"), value), key), 1, 32)


def household_id(account_id: Column, *, key: bytes) -> Column:
    return pseudonym(account_id, key=key, namespace="account")


def meter_key(meter_id: Column, *, key: bytes) -> Column:
    return pseudonym(meter_id, key=key, namespace="meter")


def pseudonym_py(value: str, *, key: bytes, namespace: str) -> str:
    """The same pseudonym in plain Python (for activation and tests)."""
    return hmac.new(key, f"{namespace}:{value}".encode(), hashlib.sha256).hexdigest()[:32]
