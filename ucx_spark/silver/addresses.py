"""Address normalisation (USPS Publication 28 abbreviations) and household matching.

``normalize_address`` is a Column -> Column helper with built-ins only: upper
case, punctuation dropped, every token mapped through one literal map
(street suffixes, directionals, unit designators), unit designators written
as ``#`` glued to the unit (``APT 4``, ``Unit 4``, ``Suite 4``, ``# 4`` ->
``#4``). Both sides of a match go through the same helper, so
``123 N Main Street Apt 4`` and ``123 N MAIN ST #4`` meet as ``123 N MAIN ST #4``.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

# Pub 28 Appendix C1 (street suffixes): common names and variants -> standard abbreviation.
STREET_SUFFIXES: dict[str, str] = {
    "ALLEY": "ALY", "ALLEE": "ALY", "ALLY": "ALY", "ANEX": "ANX", "ANNEX": "ANX", "ARCADE": "ARC",
    "AVENUE": "AVE", "AV": "AVE", "AVEN": "AVE", "AVENU": "AVE", "AVN": "AVE", "AVNUE": "AVE",
    "BAYOU": "BYU", "BEACH": "BCH", "BEND": "BND", "BLUFF": "BLF", "BOTTOM": "BTM",
    "BOULEVARD": "BLVD", "BOUL": "BLVD", "BOULV": "BLVD", "BRANCH": "BR", "BRIDGE": "BRG",
    "BROOK": "BRK", "BURG": "BG", "BYPASS": "BYP", "CAMP": "CP", "CANYON": "CYN", "CAPE": "CPE",
    "CAUSEWAY": "CSWY", "CENTER": "CTR", "CENTRE": "CTR", "CENTR": "CTR", "CIRCLE": "CIR",
    "CIRC": "CIR", "CIRCL": "CIR", "CRCL": "CIR", "CLIFF": "CLF", "CLUB": "CLB", "COMMON": "CMN",
    "CORNER": "COR", "COURSE": "CRSE", "COURT": "CT", "CRT": "CT", "COVE": "CV", "CREEK": "CRK",
    "CRESCENT": "CRES", "CREST": "CRST", "CROSSING": "XING", "CROSSROAD": "XRD", "CURVE": "CURV",
    "DALE": "DL", "DAM": "DM", "DIVIDE": "DV", "DRIVE": "DR", "DRIV": "DR", "DRV": "DR",
    "ESTATE": "EST", "ESTATES": "ESTS", "EXPRESSWAY": "EXPY", "EXPRESS": "EXPY", "EXTENSION": "EXT",
    "FALLS": "FLS", "FERRY": "FRY", "FIELD": "FLD", "FIELDS": "FLDS", "FLAT": "FLT", "FORD": "FRD",
    "FOREST": "FRST", "FORGE": "FRG", "FORK": "FRK", "FORT": "FT", "FREEWAY": "FWY",
    "GARDEN": "GDN", "GARDENS": "GDNS", "GATEWAY": "GTWY", "GLEN": "GLN", "GREEN": "GRN",
    "GROVE": "GRV", "HARBOR": "HBR", "HAVEN": "HVN", "HEIGHTS": "HTS", "HIGHWAY": "HWY",
    "HIWAY": "HWY", "HWAY": "HWY", "HILL": "HL", "HILLS": "HLS", "HOLLOW": "HOLW", "INLET": "INLT",
    "ISLAND": "IS", "JUNCTION": "JCT", "KEY": "KY", "KNOLL": "KNL", "LAKE": "LK", "LAKES": "LKS",
    "LANDING": "LNDG", "LANE": "LN", "LIGHT": "LGT", "LODGE": "LDG", "MANOR": "MNR",
    "MEADOW": "MDW", "MEADOWS": "MDWS", "MILL": "ML", "MISSION": "MSN", "MOTORWAY": "MTWY",
    "MOUNT": "MT", "MOUNTAIN": "MTN", "NECK": "NCK", "ORCHARD": "ORCH", "OVERPASS": "OPAS",
    "PARKWAY": "PKWY", "PARKWY": "PKWY", "PKY": "PKWY", "PINE": "PNE", "PINES": "PNES",
    "PLACE": "PL", "PLAIN": "PLN", "PLAINS": "PLNS", "PLAZA": "PLZ", "POINT": "PT", "POINTS": "PTS",
    "PORT": "PRT", "PRAIRIE": "PR", "RADIAL": "RADL", "RANCH": "RNCH", "RAPIDS": "RPDS",
    "REST": "RST", "RIDGE": "RDG", "RIVER": "RIV", "ROAD": "RD", "ROADS": "RDS", "ROUTE": "RTE",
    "SHOAL": "SHL", "SHORE": "SHR", "SHORES": "SHRS", "SKYWAY": "SKWY", "SPRING": "SPG",
    "SPRINGS": "SPGS", "SQUARE": "SQ", "STATION": "STA", "STRAVENUE": "STRA", "STREAM": "STRM",
    "STREET": "ST", "STR": "ST", "STRT": "ST", "SUMMIT": "SMT", "TERRACE": "TER", "TERR": "TER",
    "THROUGHWAY": "TRWY", "TRACE": "TRCE", "TRACK": "TRAK", "TRAIL": "TRL", "TRAILS": "TRL",
    "TUNNEL": "TUNL", "TURNPIKE": "TPKE", "UNDERPASS": "UPAS", "UNION": "UN", "VALLEY": "VLY",
    "VIADUCT": "VIA", "VIEW": "VW", "VILLAGE": "VLG", "VILLE": "VL", "VISTA": "VIS", "WELLS": "WLS",
}
# Pub 28 Appendix B (directionals).
DIRECTIONALS: dict[str, str] = {
    "NORTH": "N", "SOUTH": "S", "EAST": "E", "WEST": "W",
    "NORTHEAST": "NE", "NORTHWEST": "NW", "SOUTHEAST": "SE", "SOUTHWEST": "SW",
}
# Pub 28 Appendix C2 (secondary unit designators) that name a dwelling unit: one canonical '#'.
UNIT_DESIGNATORS: tuple[str, ...] = ("#", "APT", "APARTMENT", "UNIT", "STE", "SUITE", "RM", "ROOM", "NO", "NUM", "NUMBER")

def _lookup(mapping: dict[str, str], token: Column) -> Column:
    return F.element_at(F.create_map(*[F.lit(x) for kv in mapping.items() for x in kv]), token)


def normalize_address(address: Column) -> Column:
    """Canonical upper-case address line: USPS suffix and directional
    abbreviations, unit designators as ``#<unit>``, no punctuation, single
    spaces. Null stays null.

    Positions follow Pub 28: the street suffix is the last word of the street
    part (before a post-directional, if any); directionals are the word after
    the house number and the street part's last word; the street part ends at
    the first unit designator. So ``5 Pine Road`` keeps ``PINE`` but becomes
    ``5 PINE RD``.
    """
    text = F.upper(address)
    text = F.regexp_replace(text, "#", " # ")
    text = F.regexp_replace(text, r"[^A-Z0-9# /-]", " ")  # punctuation (., commas, quotes) out
    text = F.trim(F.regexp_replace(text, r"\s+", " "))
    tokens = F.split(text, " ")
    unit_at = F.array_position(F.transform(tokens, lambda t: t.isin(*UNIT_DESIGNATORS)), True).cast("int")  # 1-based, 0 = none
    street_end = F.when(unit_at == 0, F.size(tokens)).otherwise(unit_at - 1)  # 0-based, exclusive
    last = street_end - 1
    last_is_directional = _lookup(DIRECTIONALS, F.element_at(tokens, F.greatest(last, F.lit(0)) + 1)).isNotNull() | (
        F.element_at(tokens, F.greatest(last, F.lit(0)) + 1).isin(*DIRECTIONALS.values())
    )
    suffix_at = F.when(last_is_directional & (last >= 2), last - 1).otherwise(last)

    def canonical(t: Column, i: Column) -> Column:
        return (
            F.when(i >= street_end, F.when(t.isin(*UNIT_DESIGNATORS), F.lit("#")).otherwise(t))
            .when((i == suffix_at) & (i >= 1), F.coalesce(_lookup(STREET_SUFFIXES, t), t))
            .when((i == 1) | (i == last), F.coalesce(_lookup(DIRECTIONALS, t), t))
            .otherwise(t)
        )

    joined = F.array_join(F.transform(tokens, canonical), " ")
    # '#' glued to the unit; repeated designators ('APT #4') collapse to one
    joined = F.regexp_replace(joined, r"(# )+", "#")
    joined = F.regexp_replace(joined, r"#+", "#")
    return F.when(address.isNull(), F.lit(None)).otherwise(F.trim(joined))


def match_households(households_df: DataFrame, accounts_df: DataFrame) -> DataFrame:
    """One row per household record: ``record_id``, ``premise_id``, ``match_method``.

    Needs households (record_id, address_normalized, zip) and accounts
    (premise_id, address_normalized, zip). A record whose normalised address
    and zip name exactly one premise matches it (``address_zip``); several
    premises: ``ambiguous`` (no premise); none: ``unmatched``.
    """
    premises_df = accounts_df.select(
        F.col("premise_id"), F.col("address_normalized").alias("__addr"), F.col("zip").alias("__zip")
    ).distinct()
    joined_df = households_df.select("record_id", "address_normalized", "zip").join(
        premises_df,
        (F.col("address_normalized") == F.col("__addr")) & (F.col("zip") == F.col("__zip")),
        "left",
    )
    w = Window.partitionBy("record_id")
    n = F.count("premise_id").over(w)
    return (
        joined_df.withColumn("__n", n)
        .withColumn("__first", F.min("premise_id").over(w))
        .select(
            "record_id",
            F.when(F.col("__n") == 1, F.col("__first")).alias("premise_id"),
            F.when(F.col("__n") == 1, F.lit("address_zip"))
            .when(F.col("__n") > 1, F.lit("ambiguous"))
            .otherwise(F.lit("unmatched"))
            .alias("match_method"),
        )
        .distinct()
    )
