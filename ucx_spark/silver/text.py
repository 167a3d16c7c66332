"""Free-text scrubbing (Column -> Column): phones, emails and the account's own name."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

EMAIL_RE = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
# NANP numbers in the usual spellings: 312-555-0123, (312) 555 0123, 312.555.0123, +1 312 555 0123, 3125550123
PHONE_RE = r"(?<![\w+])(\+?1[\s.-]?)?(\(\d{3}\)|\d{3})[\s.-]?\d{3}[\s.-]?\d{4}(?!\w)"
_NAME_TOKEN_SPLIT = r"[^\p{L}\p{N}'-]+"


def name_pattern(name: Column) -> Column:
    """Case-insensitive regex of a person's full name and each of its words
    (2+ characters), literal-quoted, on word boundaries; null when no word."""
    words = F.filter(F.split(F.trim(name), _NAME_TOKEN_SPLIT), lambda w: F.length(w) >= 2)
    full = F.trim(F.regexp_replace(name, r"\s+", " "))
    alternatives = F.concat(F.array(full), F.array_sort(words, lambda a, b: F.length(b) - F.length(a)))
    # \Q..\E quotes literally; a '\E' inside a name would end the quote, so backslashes go
    quoted = F.transform(alternatives, lambda w: F.concat(F.lit(r"\Q"), F.regexp_replace(w, r"\\", ""), F.lit(r"\E")))
    pattern = F.concat(F.lit(r"(?i)(?<![\p{L}\p{N}])(?:"), F.array_join(quoted, "|"), F.lit(r")(?![\p{L}\p{N}])"))
    return F.when(F.size(words) > 0, pattern)


def scrub_free_text(text: Column, name: Column) -> Column:
    """``text`` with emails -> ``[EMAIL]``, phone numbers -> ``[PHONE]`` and the
    person's ``name`` (full and each word) -> ``[NAME]``. Null text stays null;
    a null name scrubs only emails and phones."""
    scrubbed = F.regexp_replace(text, EMAIL_RE, "[EMAIL]")
    scrubbed = F.regexp_replace(scrubbed, PHONE_RE, "[PHONE]")
    pattern = name_pattern(name)
    return F.when(pattern.isNull(), scrubbed).otherwise(F.regexp_replace(scrubbed, pattern, "[NAME]"))
