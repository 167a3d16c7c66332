"""Targeting: suppression rules, channel and next best action on tiny frames; the pipeline on a copy
of the shared insights warehouse; activation (re-identification, permissions, audit)."""

from __future__ import annotations

import csv
import hashlib
import os
import stat
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest
from chispa import assert_df_equality
from conftest import TEST_KEY
from pyspark.sql import functions as F
from test_insights_segments import copy_warehouse

from ucx_spark.errors import UcxError
from ucx_spark.gold.privacy import forbidden_columns_in
from ucx_spark.identity import pseudonym_py
from ucx_spark.insights import targeting as T
from ucx_spark.io.delta import overwrite_table, read_table

AS_OF = date(2023, 6, 30)


def _campaign_rows(spark):
    return spark.createDataFrame(
        [
            ("h1", AS_OF, True, False, 5.0),   # targetable
            ("h2", AS_OF, True, True, 4.0),    # already enrolled
            ("h3", AS_OF, True, False, 3.0),   # contacted 10 days ago
            ("h4", AS_OF, True, False, 2.0),   # disconnect notice 2 months ago
            ("h5", AS_OF, False, False, None),  # not eligible
            ("h6", AS_OF, True, False, 1.0),   # contact 40 days ago, disconnect 7 months ago: targetable
        ],
        "household_id string, as_of_date date, is_eligible boolean, is_enrolled boolean, expected_benefit double",
    )


def _history(spark):
    contacts = spark.createDataFrame(
        [("h3", datetime(2023, 6, 20, 10, 0)), ("h6", datetime(2023, 5, 21, 10, 0)),
         ("h1", datetime(2023, 7, 15, 10, 0))],  # after as_of: not recent
        "household_id string, started_at timestamp",
    )
    collections = spark.createDataFrame(
        [("h4", date(2023, 4, 30), "disconnect_notice"), ("h6", date(2022, 11, 30), "disconnect"),
         ("h1", date(2023, 5, 1), "past_due_notice")],  # not a hardship event
        "household_id string, event_date date, event_type string",
    )
    return contacts, collections


@pytest.mark.parametrize(
    ("rules", "reasons"),
    [
        (T.SuppressionRules(), {"h2": "already_enrolled", "h3": "recent_contact", "h4": "collections_hardship",
                                "h5": "not_eligible"}),
        (T.SuppressionRules(suppress_enrolled=False, suppress_collections_hardship=False, recent_contact_days=0),
         {"h5": "not_eligible"}),
        (T.SuppressionRules(recent_contact_days=45), {"h2": "already_enrolled", "h3": "recent_contact",
                                                      "h4": "collections_hardship", "h5": "not_eligible",
                                                      "h6": "recent_contact"}),
    ],
)
def test_suppression_rules(spark, rules, reasons):
    contacts, collections = _history(spark)
    got = _campaign_rows(spark).transform(T.with_suppression, contacts_df=contacts, collections_df=collections, rules=rules)
    expected = spark.createDataFrame([(h, reasons.get(h)) for h in ("h1", "h2", "h3", "h4", "h5", "h6")],
                                     "household_id string, suppression_reason string")
    assert_df_equality(got.select("household_id", "suppression_reason"), expected, ignore_row_order=True,
                       ignore_nullable=True)


def test_rank_skips_suppressed(spark):
    contacts, collections = _history(spark)
    got = (_campaign_rows(spark).withColumn("campaign", F.lit("autopay"))
           .transform(T.with_suppression, contacts_df=contacts, collections_df=collections, rules=T.SuppressionRules())
           .transform(T.with_rank).select("household_id", "rank"))
    expected = spark.createDataFrame([("h1", 1), ("h6", 2), ("h2", None), ("h3", None), ("h4", None), ("h5", None)],
                                     "household_id string, rank int")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_preferred_channels(spark):
    marketing = spark.createDataFrame(
        [
            ("h1", "email", "delivered"), ("h1", "email", "opened"), ("h1", "sms", "delivered"),
            ("h1", "sms", "opened"), ("h1", "sms", "clicked"),               # sms 2/1 beats email 1/1
            ("h2", "email", "delivered"), ("h2", "email", "opened"), ("h2", "email", "unsubscribed"),
            ("h3", "email", "delivered"),                                    # never engaged: contact history decides
            ("h5", "email", "delivered"), ("h5", "email", "opened"),
            ("h5", "direct_mail", "delivered"), ("h5", "direct_mail", "opened"),  # tie: email first
        ],
        "household_id string, channel string, event_type string",
    )
    contacts = spark.createDataFrame([("h2", "chat"), ("h3", "ivr"), ("h3", "phone"), ("h3", "web")],
                                     "household_id string, channel string")
    got = T.preferred_channels(marketing, contacts)
    expected = spark.createDataFrame([("h1", "sms"), ("h2", "email"), ("h3", "phone"), ("h5", "email")],
                                     "household_id string, preferred_channel string")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_contact_policy_plants_each_case(spark, tmp_path):
    """Issue 21, who must not be contacted: each rule planted once; every household left out carries
    its reason in gold/campaign_targets (the audit of the campaign)."""
    from ucx_spark.pipelines.targeting import read_do_not_contact

    households = ("h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8")
    benefit = spark.createDataFrame(
        [(h, AS_OF, "autopay", True, False, 10.0 - i, 5.0) for i, h in enumerate(households)],
        "household_id string, as_of_date date, program string, is_eligible boolean, is_enrolled boolean, "
        "expected_benefit double, value_usd double")
    channels = spark.createDataFrame([("h1", "email"), ("h4", "email"), ("h8", "sms")],
                                     "household_id string, preferred_channel string")
    ts = datetime
    marketing = spark.createDataFrame([
        ("h4", "email", "unsubscribed", ts(2023, 3, 1, 9)),        # opted out of its preferred channel
        ("h8", "sms", "unsubscribed", ts(2023, 7, 2, 9)),          # after as_of: still reachable by sms
        *[("h6", "email", "sent", ts(2023, 6, d, 9)) for d in (5, 15, 25)],  # 3 in 30 days: capped
        *[("h7", "email", "sent", ts(2023, m, d, 9)) for m, d in ((5, 20), (6, 15), (6, 25))],  # one 41 days back
    ], "household_id string, channel string, event_type string, occurred_at timestamp")
    # the list names account ids; these accounts' pseudonyms are the households above
    key = b"policy-key"
    accounts = {h: f"A{i}" for i, h in enumerate(households)}
    dnc_file = tmp_path / "do_not_contact.csv"
    dnc_file.write_text(
        "account_id,channel,reason,effective_from,effective_to\n"
        f"{accounts['h2']},all,customer_request,2023-01-01,\n"          # in force: no contact at all
        f"{accounts['h3']},all,medical_certificate,2022-01-01,2023-03-31\n"  # expired: targetable
        + "".join(f"{accounts['h5']},{c},legal,,\n" for c in ("email", "sms", "phone", "direct_mail")),
        encoding="utf-8")
    dnc = read_do_not_contact(spark, dnc_file, pseudonym_key=key)
    rename = spark.createDataFrame([(pseudonym_py(a, key=key, namespace="account"), h) for h, a in accounts.items()],
                                   "_p string, _h string")
    dnc = dnc.join(rename, F.col("household_id") == F.col("_p")).withColumn("household_id", F.col("_h")).drop("_p", "_h")
    empty_contacts = spark.createDataFrame([], "household_id string, started_at timestamp")
    empty_collections = spark.createDataFrame([], "household_id string, event_date date, event_type string")
    got = T.campaign_targets(
        benefit, campaign="autopay", channels_df=channels, contacts_df=empty_contacts,
        collections_df=empty_collections, rules=T.SuppressionRules(max_campaign_contacts_30d=3), run_id="p-1",
        created_at=F.current_timestamp(), marketing_df=marketing, dnc_df=dnc,
    ).select("household_id", "preferred_channel", "suppression_reason", "rank")
    expected = spark.createDataFrame([
        ("h1", "email", None, 1), ("h2", None, "do_not_contact", None), ("h3", "direct_mail", None, 2),
        ("h4", "direct_mail", None, 3), ("h5", None, "no_permitted_channel", None),
        ("h6", "direct_mail", "frequency_cap", None), ("h7", "direct_mail", None, 4), ("h8", "sms", None, 5),
    ], "household_id string, preferred_channel string, suppression_reason string, rank int")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_collections_worklist_plants_each_moratorium(spark):
    """Issue 21, collections moratoria: the collections worklist ranks households with arrears by
    payment risk x arrears; a medical certificate in force (whatever channel it names) and extreme
    weather at the household's station on the day or the day before hold a household, each with
    its reason in the audit; a cold spell three days back holds nobody. On a later day (activation
    re-asks) the weather moratoria have lapsed and the certificate still holds."""
    snap = spark.createDataFrame(
        [("c1", AS_OF, 200.0), ("c2", AS_OF, 0.0), ("c3", AS_OF, 300.0), ("c4", AS_OF, 100.0),
         ("c5", AS_OF, 100.0), ("c6", AS_OF, 80.0), ("c7", AS_OF, 50.0)],
        "household_id string, as_of_date date, arrears_usd double")
    scores = spark.createDataFrame([("c1", "payment_risk", 0.5), ("c3", "payment_risk", 0.9)],
                                   "household_id string, model_name string, score double")
    rows = T.collections_rows(snap, scores)
    stations = spark.createDataFrame(
        [("c1", "W1"), ("c2", "W1"), ("c3", "W1"), ("c4", "W2"), ("c5", "W3"), ("c6", "W4"), ("c7", "W2")],
        "household_id string, station_id string")
    hourly = [("W1", datetime(2023, 6, d, h), 70.0 + h / 2) for d in (27, 28, 29, 30) for h in range(24)]
    hourly += [("W2", datetime(2023, 6, 30, h), 40.0 - 1.0 * h) for h in range(24)]       # min 17 F on the day
    hourly += [("W3", datetime(2023, 6, 29, h), 80.0 + h) for h in range(24)]             # max 103 F the day before
    hourly += [("W4", datetime(2023, 6, 27, h), 10.0) for h in range(24)]                 # 3 days back: lapsed
    weather = spark.createDataFrame(hourly, "station_id string, observed_at timestamp, temp_f double")
    extremes = T.daily_extremes(weather, time_zone="UTC")
    dnc = spark.createDataFrame(
        [("c3", "email", "medical_certificate", date(2023, 1, 1), None),
         ("c7", "phone", "medical_certificate", None, date(2023, 12, 31)),
         ("c1", "sms", "medical_certificate", date(2023, 7, 15), None)],   # not yet in force
        "household_id string, channel string, reason string, effective_from date, effective_to date")
    held = T.moratoria(snap.select("household_id", "as_of_date"), F.col("as_of_date"), stations_df=stations,
                       extremes_df=extremes, dnc_df=dnc, cold_f=32.0, heat_f=95.0)
    empty_contacts = spark.createDataFrame([], "household_id string, started_at timestamp")
    empty_collections = spark.createDataFrame([], "household_id string, event_date date, event_type string")
    got = T.campaign_targets(
        rows, campaign=T.COLLECTIONS, channels_df=spark.createDataFrame([], "household_id string, preferred_channel string"),
        contacts_df=empty_contacts, collections_df=empty_collections, rules=T.SuppressionRules(), run_id="m-1",
        created_at=F.current_timestamp(), dnc_df=dnc, campaign_rows=rows, moratoria_df=held,
    ).select("household_id", "expected_benefit", "preferred_channel", "suppression_reason", "rank")
    expected = spark.createDataFrame([
        ("c1", 100.0, "direct_mail", None, 1), ("c2", None, "direct_mail", "not_eligible", None),
        ("c3", 270.0, "direct_mail", "medical_certificate", None), ("c4", 100.0, "direct_mail", "extreme_weather", None),
        ("c5", 100.0, "direct_mail", "extreme_weather", None), ("c6", 80.0, "direct_mail", None, 2),
        ("c7", 50.0, "direct_mail", "medical_certificate", None),
    ], "household_id string, expected_benefit double, preferred_channel string, suppression_reason string, rank int")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    later = T.moratoria(snap.select("household_id"), F.lit(date(2023, 7, 2)), stations_df=stations,
                        extremes_df=extremes, dnc_df=dnc, cold_f=32.0, heat_f=95.0)
    assert_df_equality(later, spark.createDataFrame([("c3", "medical_certificate"), ("c7", "medical_certificate")],
                                                    "household_id string, moratorium string"),
                       ignore_row_order=True, ignore_nullable=True)
    with pytest.raises(ValueError, match="collections worklist's rows"):
        T.campaign_targets(rows, campaign="autopay", channels_df=spark.createDataFrame([], "household_id string, "
                           "preferred_channel string"), contacts_df=empty_contacts, collections_df=empty_collections,
                           rules=T.SuppressionRules(), run_id="m-2", created_at=F.current_timestamp(), campaign_rows=rows)


@pytest.mark.parametrize(("line", "message"), [
    ("A1,fax,legal,,", "row 2: channel not one of"),
    ("A1,all,because,,", "row 2: reason not one of"),
    (",all,legal,,", "row 2: no account_id"),
    ("A1,all,legal,2023-13-01,", "row 2: effective_from '2023-13-01' is not a date"),
])
def test_a_bad_do_not_contact_row_is_named(spark, tmp_path, line, message):
    from ucx_spark.pipelines.targeting import read_do_not_contact

    path = tmp_path / "dnc.csv"
    path.write_text(f"account_id,channel,reason,effective_from,effective_to\nA0,email,legal,,\n{line}\n",
                    encoding="utf-8")
    with pytest.raises(UcxError, match=message) as err:
        read_do_not_contact(spark, path, pseudonym_key=b"k")
    assert str(path) in str(err.value)
    assert read_do_not_contact(spark, tmp_path / "absent.csv", pseudonym_key=None) is None


def test_expected_benefit_and_next_best_action(spark):
    props = spark.createDataFrame(
        [
            ("h1", AS_OF, "autopay", True, False, 0.5), ("h1", AS_OF, "paperless", True, False, 0.5),
            ("h1", AS_OF, "solar", True, False, 0.9),    # no value: never the next best action
            ("h2", AS_OF, "autopay", True, True, 0.9), ("h2", AS_OF, "paperless", True, False, 0.1),
            ("h3", AS_OF, "autopay", False, False, None),
        ],
        "household_id string, as_of_date date, program string, is_eligible boolean, is_enrolled boolean, propensity double",
    )
    snap = spark.createDataFrame([("h1", 100.0, 1200.0), ("h2", 50.0, 600.0), ("h3", 80.0, 960.0)],
                                 "household_id string, mean_bill_12_usd double, annual_bill_usd double")
    scores = spark.createDataFrame([("h1", "payment_risk", 0.4), ("h2", "payment_risk", 0.1)],
                                   "household_id string, model_name string, score double")
    benefit = T.with_expected_benefit(props, snap, scores, liheap_annual_benefit_usd=600.0)
    got = {(r["household_id"], r["program"]): r["expected_benefit"] for r in benefit.collect()}
    # autopay h1: 0.5 x (0.4 x 0.30 x 2 x 100 + 2) = 13.0; paperless: 0.5 x 7.20 = 3.6
    assert got[("h1", "autopay")] == pytest.approx(13.0)
    assert got[("h1", "paperless")] == pytest.approx(3.6)
    assert got[("h1", "solar")] == 0.0 and got[("h3", "autopay")] is None
    nba = T.next_best_actions(benefit)
    expected = spark.createDataFrame([("h1", "autopay", 13.0), ("h2", "paperless", 0.72)],
                                     "household_id string, next_best_action string, next_best_action_benefit double")
    assert_df_equality(nba, expected, ignore_row_order=True, ignore_nullable=True, allow_nan_equality=True)


def _activation_warehouse(spark, insights_wh, targets, act: Path, **extra: str) -> dict[str, str]:
    """An activation warehouse at ``act``: the synthetic utility's household ids are not HMACs of
    its account ids, so ``targets`` are mapped through the frames (household -> account -> HMAC)
    and silver/accounts gets PII (and ``extra`` columns); returns household -> account."""
    accounts = insights_wh.frames["accounts"]
    to_account = dict(zip(accounts["household_id"], accounts["account_id"], strict=True))
    hmac_of = {a: pseudonym_py(a, key=TEST_KEY, namespace="account") for a in accounts["account_id"]}
    mapping = spark.createDataFrame([(h, hmac_of[a]) for h, a in to_account.items()], "household_id string, _hmac string")
    overwrite_table(targets.join(mapping, "household_id").withColumn("household_id", F.col("_hmac"))
                    .select(*targets.columns), act, "gold", "campaign_targets")
    pii = pd.DataFrame({
        "account_id": accounts["account_id"], "household_id": [hmac_of[a] for a in accounts["account_id"]],
        "customer_name": [f"Customer {a}" for a in accounts["account_id"]],
        "email": [f"{a.lower()}@example.com" for a in accounts["account_id"]],
        "phone": [f"555-{a[1:]}" for a in accounts["account_id"]],
        "service_address": [f"{i} Main St" for i in range(len(accounts))],
        "city": "Austin", "state": "TX", "zip": accounts["zip"],
        "start_date": accounts["start_date"], "end_date": accounts["end_date"], **extra,
    })
    overwrite_table(spark.createDataFrame(pii), act, "silver", "accounts")
    return to_account


def test_target_pipeline_and_activation(spark, insights_wh, tmp_path):
    from ucx_spark.pipelines import targeting as pipeline

    wh = copy_warehouse(insights_wh.warehouse, tmp_path / "wh",
                        ("gold/household_features", "gold/household_scores", "silver/accounts", "silver/programs",
                         "silver/contacts", "silver/collections", "silver/marketing"))
    rules = T.SuppressionRules(recent_contact_days=30)
    result = pipeline.run(spark, warehouse=str(wh), campaign="autopay", run_id="tgt-1", rules=rules, partitions=2)
    targets = read_table(spark, wh, "gold", "campaign_targets")
    assert forbidden_columns_in(targets.schema) == []
    assert targets.count() == 495 and result.households == 495
    enrolled = set(insights_wh.frames["programs"].query("program == 'autopay'")["household_id"])
    rows = targets.collect()
    assert all(r["suppression_reason"] == "already_enrolled" for r in rows if r["household_id"] in enrolled)
    ranked = sorted((r for r in rows if r["rank"] is not None), key=lambda r: r["rank"])
    assert [r["rank"] for r in ranked] == list(range(1, len(ranked) + 1)) == list(range(1, result.targets + 1))
    assert all(a["expected_benefit"] >= b["expected_benefit"] for a, b in zip(ranked, ranked[1:], strict=False))
    assert all(r["suppression_reason"] is None for r in ranked)
    assert {r["preferred_channel"] for r in rows} <= set(T.CHANNEL_ORDER)
    assert result.suppressed.get("recent_contact", 0) > 0

    # Activation (_activation_warehouse: the targets under HMAC ids, PII in silver/accounts)
    act = tmp_path / "act"
    to_account = _activation_warehouse(spark, insights_wh, targets, act)

    out = pipeline.activate(spark, warehouse=str(act), campaign="autopay", pseudonym_key=TEST_KEY, actor="analyst@test")
    folder = act / "_restricted" / "activation"
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(act / "_restricted").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(out.file).st_mode) == 0o600
    with open(out.file, encoding="utf-8", newline="") as fh:
        exported = list(csv.DictReader(fh))
    assert list(exported[0]) == list(T.ACTIVATION_COLUMNS)
    expected_accounts = [to_account[r["household_id"]] for r in ranked]
    assert [r["account_id"] for r in exported] == expected_accounts  # re-identified, in rank order
    first = exported[0]
    assert first["customer_name"] == f"Customer {first['account_id']}"
    for r in exported:  # only the contact detail the channel needs
        assert bool(r["email"]) == (r["preferred_channel"] == "email")
        assert bool(r["phone"]) == (r["preferred_channel"] in ("sms", "phone"))
        assert bool(r["mailing_address"]) == (r["preferred_channel"] == "direct_mail")
    log = spark.read.format("delta").load(str(act / "_restricted" / "activation_log")).collect()
    assert len(log) == 1
    entry = log[0]
    assert (entry["actor"], entry["campaign"], entry["file"], entry["row_count"]) == (
        "analyst@test", "autopay", out.file, len(expected_accounts))
    assert entry["sha256"] == hashlib.sha256(Path(out.file).read_bytes()).hexdigest()
    assert list(entry["columns"]) == list(T.ACTIVATION_COLUMNS)
    assert not (act / "gold" / "activation_log").exists()

    # a target put on the do-not-contact list after `ucx target` ran is held back at activation
    listed = expected_accounts[0]
    dnc_file = tmp_path / "dnc.csv"
    dnc_file.write_text(f"account_id,channel,reason,effective_from,effective_to\n{listed},all,customer_request,,\n",
                        encoding="utf-8")
    again = pipeline.activate(spark, warehouse=str(act), campaign="autopay", pseudonym_key=TEST_KEY, actor="x",
                              do_not_contact=pipeline.read_do_not_contact(spark, dnc_file, pseudonym_key=TEST_KEY))
    with open(again.file, encoding="utf-8", newline="") as fh:
        second = [r["account_id"] for r in csv.DictReader(fh)]
    assert again.held_back == 1 and second == expected_accounts[1:]
    assert again.file != out.file and Path(out.file).exists()  # same second or not, no export is overwritten
    assert "held back 1 target" in again.summary()

    with pytest.raises(UcxError, match="no targets"):
        pipeline.activate(spark, warehouse=str(act), campaign="paperless", pseudonym_key=TEST_KEY, actor="x")
    with pytest.raises(UcxError, match="pseudonym key"):
        pipeline.activate(spark, warehouse=str(act), campaign="autopay", pseudonym_key=b"wrong-key", actor="x")


def test_collections_worklist_pipeline_and_activation(spark, insights_wh, tmp_path):
    """`ucx target --campaign collections` on a copy of the shared warehouse: households with arrears
    ranked by payment risk x arrears; the households of a station that froze on the snapshot day
    are held (extreme_weather) and never ranked; activation holds back, and counts, a target whose
    medical certificate came in force after the worklist was made."""
    from ucx_spark.pipelines import targeting as pipeline

    wh = copy_warehouse(insights_wh.warehouse, tmp_path / "wh",
                        ("gold/household_features", "gold/household_scores", "silver/accounts", "silver/programs",
                         "silver/contacts", "silver/collections", "silver/marketing"))
    accounts = read_table(spark, wh, "silver", "accounts")
    with_station = accounts.withColumn("weather_station_id", F.when(F.col("zip") == F.lit(
        accounts.agg(F.min("zip")).first()[0]), F.lit("COLD")).otherwise(F.lit("MILD")))
    overwrite_table(with_station.localCheckpoint(), wh, "silver", "accounts")
    as_of = read_table(spark, wh, "gold", "household_features").agg(F.max("as_of_date")).first()[0]
    overwrite_table(spark.createDataFrame(
        [(s, datetime(as_of.year, as_of.month, as_of.day, h), t - h / 4) for s, t in (("COLD", 30.0), ("MILD", 60.0))
         for h in range(24)], "station_id string, observed_at timestamp, temp_f double"), wh, "silver", "weather")
    result = pipeline.run(spark, warehouse=str(wh), campaign=T.COLLECTIONS, run_id="col-1",
                          rules=T.SuppressionRules(), partitions=2, time_zone="UTC")
    targets = read_table(spark, wh, "gold", "campaign_targets").filter(F.col("campaign") == T.COLLECTIONS)
    snap = read_table(spark, wh, "gold", "household_features").filter(F.col("as_of_date") == F.lit(as_of))
    cold = {r[0] for r in with_station.filter(F.col("weather_station_id") == "COLD").select("household_id").collect()}
    rows = {r["household_id"]: r for r in targets.collect()}
    owing = {r[0] for r in snap.filter(F.col("arrears_usd") > 0).select("household_id").collect()} & set(rows)
    assert owing & cold and owing - cold  # the warehouse plants both
    assert {h for h, r in rows.items() if r["suppression_reason"] == "extreme_weather"} == owing & cold
    assert {h for h, r in rows.items() if r["suppression_reason"] == "not_eligible"} == set(rows) - owing
    ranked = sorted((r for r in rows.values() if r["rank"] is not None), key=lambda r: r["rank"])
    assert {r["household_id"] for r in ranked} == owing - cold and result.targets == len(ranked)
    assert all(a["expected_benefit"] >= b["expected_benefit"] for a, b in zip(ranked, ranked[1:], strict=False))
    assert result.suppressed["extreme_weather"] == len(owing & cold)

    # activation: the first target's medical certificate is in force today (not when the worklist was made)
    act = tmp_path / "act"
    to_account = _activation_warehouse(spark, insights_wh, targets, act, weather_station_id="MILD")
    overwrite_table(read_table(spark, wh, "silver", "weather"), act, "silver", "weather")
    first = to_account[ranked[0]["household_id"]]
    other = next(c for c in T.CHANNEL_ORDER if c != ranked[0]["preferred_channel"])  # the certificate, not the list
    dnc_file = tmp_path / "dnc.csv"
    dnc_file.write_text("account_id,channel,reason,effective_from,effective_to\n"
                        f"{first},{other},medical_certificate,{date.today().isoformat()},\n", encoding="utf-8")
    out = pipeline.activate(spark, warehouse=str(act), campaign=T.COLLECTIONS, pseudonym_key=TEST_KEY, actor="x",
                            do_not_contact=pipeline.read_do_not_contact(spark, dnc_file, pseudonym_key=TEST_KEY),
                            rules=T.SuppressionRules(), time_zone="UTC")
    with open(out.file, encoding="utf-8", newline="") as fh:
        exported = [r["account_id"] for r in csv.DictReader(fh)]
    assert exported == [to_account[r["household_id"]] for r in ranked[1:]]
    assert out.held_by_moratoria == {"medical_certificate": 1} and out.held_back == 0
    assert "medical_certificate 1" in out.summary()


def test_an_export_in_the_same_second_gets_its_own_file(tmp_path):
    """CI once ran two activations inside one second: the second export must not fail or overwrite."""
    from ucx_spark.pipelines import targeting as pipeline
    first, fd1 = pipeline._new_export_file(tmp_path, "autopay_20261207T211915Z")
    os.close(fd1)
    second, fd2 = pipeline._new_export_file(tmp_path, "autopay_20261207T211915Z")
    os.close(fd2)
    assert (first.name, second.name) == ("autopay_20261207T211915Z.csv", "autopay_20261207T211915Z_2.csv")
    assert stat.S_IMODE(os.stat(second).st_mode) == 0o600
