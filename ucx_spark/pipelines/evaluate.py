"""`ucx evaluate`: the household models against a generated utility's planted truth.

For a warehouse built from ``ucx generate`` output (whose ``_truth/`` only this
command reads; the pipeline never does). Models are trained into a private
tracking store (``<warehouse>/_mlflow_eval``) so evaluation never moves a
production alias:

- the production models (every usable row), scored at the latest as_of_date D:
  EV adoption against the generator's adoption dates in (D, D + 12 months],
  outcomes after the end of the data that no training step could see (the
  population at risk as in training); CSAT and NPS against the latent truth
  (``latent_csat``; ``latent_nps`` = 2.4 latent - 1.5 on the 0-10 scale, as
  planted) on the active households that never answered a survey: Spearman,
  MAE and mean bias; the utility's NPS as if everyone answered, beside the
  survey NPS of the latest month in gold/cx_kpis;
- payment risk: the truth has no notices after the data, so a holdout model is
  trained with data cut at E (the latest as_of_date with a complete 6-month
  window), scored at E, and judged on the disconnect notices of (E, E + 6 months];
- planted drivers: the share of scored households whose top 3 drivers include a
  feature of a planted effect (``PLANTED_KEYWORDS``);
- what-if (``WHATIF_SCENARIOS``): the delta ``ucx whatif`` estimates with the
  trained CSAT and payment-risk models (household bootstrap interval) beside the
  true delta the generator's own formulas give for the same households
  (``generate/counterfactual.py``: the payment process played forward over the
  6-month horizon, factual and under the scenario, with the same random numbers;
  LIHEAP enrols exactly the households the what-if chose): sign, interval and
  ratio per outcome (payment risk, expected arrears, CSAT).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ucx_spark.catalog import CX_KPIS, HOUSEHOLD_FEATURES
from ucx_spark.errors import UcxError
from ucx_spark.identity import pseudonym_py
from ucx_spark.io.delta import read_optional, read_table
from ucx_spark.models import labels
from ucx_spark.models.metrics import answer_scores, binary_scores
from ucx_spark.models.predictor import Prediction
from ucx_spark.models.score import active_households, household_scores, load_model

# planted effect -> regular expressions (re.search) that name it among feature names
PLANTED_KEYWORDS: dict[str, tuple[str, ...]] = {
    "income_band": ("income",),
    "tenure=owner": ("^tenure$",),
    "home_type=single_family": ("home_type",),
    "has_solar": ("solar", "export"),
    "hidden_ev_load": ("ev_block", "night", "overnight", "load_factor"),
    "energy_burden": ("burden", "bill_usd", "annual_bill"),
    "arrears_history": ("arrear", "past_due", "late", "collection", "notice", "days_past_due", "credit"),
    "autopay": ("autopay",),
    "outage_minutes": ("outage",),
    "etr_error_minutes": ("etr",),
    "bill_shock": ("bill_shock", "same_season_bill"),
    "unresolved_contacts": ("unresolved", "fcr", "complaint"),
    "arrears_usd": ("arrear", "past_due"),
}
SURVEY_MODELS = ("csat", "nps")
WHATIF_SCENARIOS = ("rate_increase_usd=5", "liheap_enrollment_pct=+10")
# what-if outcome -> the counterfactual's outcome of the same meaning
WHATIF_OUTCOMES = {"payment_risk": "payment_risk", "expected_arrears_usd": "arrears_usd", "csat": "csat"}


@dataclass
class EvaluateResult:
    as_of_date: str
    models: dict[str, dict[str, float]] = field(default_factory=dict)  # model -> figures
    winners: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    whatif: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # scenario -> outcome -> figures
    contacts: dict[str, float] = field(default_factory=dict)  # topic read from transcripts vs the contacts' causes

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, default=str)

    def summary(self) -> str:
        lines = [f"evaluation against the planted truth, scored as of {self.as_of_date}"]
        for model, m in self.models.items():
            shown = ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in m.items())
            lines.append(f"  {model} ({self.winners.get(model, '?')}): {shown}")
        for scenario, outcomes in self.whatif.items():
            lines.append(f"  what-if {scenario}:")
            for outcome, f in outcomes.items():
                lines.append(
                    f"    {outcome:<21} what-if {f['whatif_delta']:+.4f} [{f['whatif_ci_low']:+.4f}, {f['whatif_ci_high']:+.4f}]"
                    f"  truth {f['truth_delta']:+.4f} (se {f['truth_se']:.4f})  ratio {f['ratio']:.2f}"
                    + (f"  truth 0: sign and factor not judged (what-if {abs(f['whatif_delta']):.4f} from 0)"
                       if f.get("truth_zero") else
                       f"  sign {'ok' if f['sign_ok'] else 'WRONG'}, factor 2 {'ok' if f['within_factor_2'] else 'no'}")
                )
        if self.contacts:
            c = self.contacts
            lines.append(f"  contact topics ({int(c['contacts'])} transcripts): topic read from the text agrees with "
                         f"the cause {c['topic_agreement']:.3f}, the agent's code {c['reason_agreement']:.3f}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def truth_frame(spark: SparkSession, truth_dir: Path, key: bytes) -> DataFrame:
    """household_id, latent_csat, latent_nps, ev_adoption_date, survey_responses of the truth file."""
    path = truth_dir / "households.csv"
    if not path.is_file():
        raise UcxError(f"--truth {truth_dir}: no households.csv (point it at a `ucx generate` output or its _truth)")
    truth = pd.read_csv(path, dtype={"account_id": str}, keep_default_na=False)
    out = pd.DataFrame({"household_id": [pseudonym_py(a, key=key, namespace="account") for a in truth["account_id"]]})
    out["latent_csat"] = pd.to_numeric(truth["latent_csat"]).astype("float64")
    latent_nps = truth["latent_nps"] if "latent_nps" in truth else np.clip(2.4 * out["latent_csat"] - 1.5, 0, 10)
    out["latent_nps"] = pd.to_numeric(latent_nps).astype("float64")
    out["ev_adoption_date"] = pd.to_datetime(truth["ev_adoption_date"].replace("", None)).dt.date
    out["survey_responses"] = pd.to_numeric(truth["survey_responses"]).astype("int64")
    return spark.createDataFrame(out, "household_id string, latent_csat double, latent_nps double, "
                                      "ev_adoption_date date, survey_responses long")


def planted_share(scored_pdf: pd.DataFrame, effects: list[str], *, k: int = 3) -> float:
    """Share of rows whose top ``k`` drivers name a planted effect of ``effects``."""
    patterns = [p for e in effects for p in PLANTED_KEYWORDS.get(e, ())]
    if not patterns or scored_pdf.empty:
        return float("nan")

    def hit(drivers: Any) -> bool:
        names = [str(d["feature"]).lower() for d in list(drivers)[:k]]
        return any(re.search(p, n) for p in patterns for n in names)

    return float(scored_pdf["top_drivers"].map(hit).mean())


def calibration(truth: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """How the scores spread against the truth: the ratio of their standard deviations, and the
    mean bias in the lower and upper half of the *scores* (a calibrated score, the truth's
    expectation given what it knows, is unbiased in both halves of itself, whatever its
    correlation; halves of the truth would show regression to the mean instead).
    ``answer_scores`` gives the calibration slope."""
    y, s = np.asarray(truth, dtype=np.float64), np.asarray(score, dtype=np.float64)
    if len(y) < 3 or float(np.var(s)) == 0.0:
        return {}
    upper = s >= np.median(s)
    return {
        "score_sd_ratio": float(np.std(s) / np.std(y)) if np.std(y) > 0 else math.nan,
        "mean_bias_lower_scores": float((s - y)[~upper].mean()),
        "mean_bias_upper_scores": float((s - y)[upper].mean()),
    }


def _hand_over(df: DataFrame, *cols: str) -> pd.DataFrame:
    """One row per household: a model-sized hand-off."""
    return df.select(*cols).toPandas()


def run(
    spark: SparkSession,
    *,
    warehouse: str,
    truth_dir: str,
    key: bytes,
    time_zone: str,
    trials: int = 10,
    planted: dict[str, list[str]] | None = None,
    seed: int = 42,
    replicates: int = 200,
) -> EvaluateResult:
    """Train privately, score, and compare with the truth (see the module doc)."""
    from ucx_spark.pipelines import train as train_pipeline

    truth_path = Path(truth_dir)
    if not (truth_path / "_truth").is_dir() and truth_path.name == "_truth":
        truth_path = truth_path.parent
    manifest_params = None
    if (truth_path / "_truth").is_dir():
        manifest = truth_path / "_manifest.json"
        if manifest.is_file():
            doc = json.loads(manifest.read_text())
            if planted is None:
                planted = {m: [e["feature"] for e in effects] for m, effects in doc["planted_effects"].items()}
            manifest_params = {k: doc[k] for k in ("seed", "households", "months", "interval_minutes", "time_zone", "end_date")
                               if k in doc}
            if len(manifest_params) < 6:
                manifest_params = None
        truth_path = truth_path / "_truth"
    planted = planted or {}
    eval_dir = Path(warehouse).resolve() / "_mlflow_eval"
    eval_dir.mkdir(parents=True, exist_ok=True)
    uri_main, uri_holdout = f"sqlite:///{eval_dir / 'main.db'}", f"sqlite:///{eval_dir / 'holdout.db'}"
    features_df = read_table(spark, warehouse, "gold", HOUSEHOLD_FEATURES).cache()
    accounts_df = read_table(spark, warehouse, "silver", "accounts")
    dates = sorted(r[0] for r in features_df.select("as_of_date").distinct().collect())  # month ends: few
    latest = dates[-1]
    truth_df = truth_frame(spark, truth_path, key).cache()
    result = EvaluateResult(as_of_date=str(latest))

    main = train_pipeline.run(spark, warehouse=warehouse, tracking_uri=uri_main, experiment="ucx-eval",
                              models=["all"], trials=trials, run_id="eval", time_zone=time_zone)
    active_df = active_households(features_df, accounts_df).cache()
    for name, res in main.models.items():
        if res.status != "trained":
            result.notes.append(f"{name}: not trained ({res.reason})")
            continue
        result.winners[name] = res.winner
        model = _trained(uri_main, name, str(res.version))
        figures: dict[str, float] = {f"validation_{k}": float(v) for k, v in res.metrics.items()
                                     if k in ("auc", "spearman", "rps", "nps_error", "nps_month_abs_error_mean",
                                              "nps_month_abs_error_max", "nps_months_judged")}
        if name == "ev_adoption":
            programs_df = read_table(spark, warehouse, "silver", "programs")
            rows_df = active_df.join(labels.ev_adopted(active_df, programs_df).select("household_id"),
                                     "household_id", "left_anti")
            scored = _hand_over(household_scores(rows_df, [model], scored_at=_now()).join(truth_df, "household_id"),
                                "score", "top_drivers", "ev_adoption_date")
            end = (pd.Timestamp(latest) + pd.DateOffset(months=labels.EV_HORIZON_MONTHS)).date()
            adopted = np.array([d is not None and latest < d <= end for d in scored["ev_adoption_date"]])
            m = binary_scores(adopted.astype(float), scored["score"].to_numpy())
            figures.update({"truth_auc": m["auc"], "truth_pr_auc": m["pr_auc"], "n": m["n"],
                            "base_rate": m["base_rate"]})
        elif name in SURVEY_MODELS:
            scored_df = household_scores(active_df, [model], scored_at=_now()).join(
                truth_df.filter(F.col("survey_responses") == 0), "household_id")
            scored = _hand_over(scored_df, "score", "top_drivers", "p_promoter", "p_detractor", f"latent_{name}")
            m = answer_scores(scored[f"latent_{name}"].to_numpy(), Prediction(scored["score"].to_numpy()))
            figures.update({"never_respondents_spearman": m["spearman"], "never_respondents_mae": m["mae"],
                            "never_respondents_mean_bias": m["mean_bias"], "n": m["n"],
                            "never_respondents_calibration_slope": m["calibration_slope"],
                            **calibration(scored[f"latent_{name}"].to_numpy(), scored["score"].to_numpy())})
            if name == "nps":
                everyone = _hand_over(household_scores(active_df, [model], scored_at=_now()),
                                      "p_promoter", "p_detractor")
                figures["utility_nps_predicted"] = float(100 * (everyone["p_promoter"].mean()
                                                                - everyone["p_detractor"].mean()))
                survey = _survey_nps(spark, warehouse)
                if survey is not None:
                    figures["survey_nps_latest_month"] = survey
        else:
            continue  # payment risk: the holdout below
        # NPS answers are planted from the latent CSAT: the same drivers
        effects = planted.get(name) or (planted.get("csat", []) if name == "nps" else [])
        figures["planted_driver_top3_share"] = planted_share(scored, effects)
        result.models[name] = figures

    usable = labels.usable_as_of_dates(dates, data_end=latest, horizon_months=labels.PAYMENT_HORIZON_MONTHS)
    if usable:
        cut = usable[-1]
        hold = train_pipeline.run(spark, warehouse=warehouse, tracking_uri=uri_holdout, experiment="ucx-eval-holdout",
                                  models=["payment_risk"], trials=trials, run_id="eval-holdout", time_zone=time_zone,
                                  data_end=cut)
        res = hold.models["payment_risk"]
        if res.status == "trained":
            model = _trained(uri_holdout, "payment_risk", str(res.version))
            at_cut_df = features_df.filter(F.col("as_of_date") == F.lit(cut))
            outcome_df = labels.payment_risk_labels(at_cut_df, read_table(spark, warehouse, "silver", "collections"),
                                                    data_end=latest)
            rows_df = at_cut_df.join(outcome_df.select("household_id", "as_of_date", "label"),
                                     ["household_id", "as_of_date"])
            scored_df = household_scores(rows_df.drop("label"), [model], scored_at=_now()).join(
                rows_df.select("household_id", "label"), "household_id")
            scored = _hand_over(scored_df, "score", "label", "top_drivers")
            m = binary_scores(scored["label"].to_numpy(), scored["score"].to_numpy())
            result.models["payment_risk"] = {
                "validation_auc": float(res.metrics.get("auc", float("nan"))), "truth_auc": m["auc"],
                "truth_pr_auc": m["pr_auc"], "n": m["n"], "base_rate": m["base_rate"], "cut": str(cut),  # type: ignore[dict-item]
                "holdout_winner": res.winner,  # type: ignore[dict-item]
                "planted_driver_top3_share": planted_share(scored, planted.get("payment_risk", [])),
            }
    else:
        result.notes.append("payment risk: no as-of date with a complete 6-month window to hold out")
    trained = {n: r for n, r in main.models.items() if r.status == "trained"}
    if manifest_params is None:
        result.notes.append("what-if: no _manifest.json beside the truth (the generator's parameters): not compared")
    elif {"csat", "payment_risk"} <= set(trained):
        models = {n: _trained(uri_main, n, str(trained[n].version)) for n in ("csat", "payment_risk")}
        result.whatif = evaluate_whatif(spark, warehouse, models, manifest_params, truth_path, key, seed=seed,
                                        replicates=replicates)
    else:
        result.notes.append("what-if: needs the csat and payment_risk models trained: not compared")
    features_df.unpersist()
    truth_df.unpersist()
    active_df.unpersist()
    result.contacts = _contact_topics(spark, warehouse, truth_path, time_zone=time_zone, notes=result.notes)
    return result


def _contact_topics(spark: SparkSession, warehouse: str, truth_path: Path, *, time_zone: str,
                    notes: list[str]) -> dict[str, float]:
    """`ucx contacts`' topics judged against the generator's record of why each contact happened."""
    from ucx_spark.pipelines import contacts

    if not (truth_path / "contacts.csv").is_file():
        notes.append("contact topics: no _truth/contacts.csv (a utility generated before it existed): not judged")
        return {}
    agreement = contacts.topic_agreement(spark, warehouse, truth_path, time_zone=time_zone)
    return {"contacts": float(agreement.contacts), "topic_agreement": agreement.topic_agreement,
            "reason_agreement": agreement.reason_agreement,
            **{f"topic_agreement_{cause}": v for cause, v in sorted(agreement.by_cause.items())}}


def evaluate_whatif(
    spark: SparkSession,
    warehouse: str,
    models: dict,
    params: dict,
    truth_path: Path,
    key: bytes,
    *,
    seed: int,
    replicates: int,
    bootstrap: int = 1000,
    confidence_level: float = 0.95,
) -> dict[str, dict[str, dict[str, float]]]:
    """Per WHATIF_SCENARIOS scenario and outcome: the what-if's mean delta over the households both
    worlds hold, its household-bootstrap interval, the true delta and its Monte Carlo standard error,
    their ratio, ``sign_ok`` (same sign and an interval excluding 0) and ``within_factor_2``."""
    from ucx_spark.generate import counterfactual
    from ucx_spark.generate.utility import simulate_world
    from ucx_spark.insights import whatif
    from ucx_spark.pipelines.insights_common import (
        read_arrears_history,
        read_arrears_model,
        read_bill_history,
        read_snapshot,
    )

    truth = pd.read_csv(truth_path / "households.csv", dtype={"account_id": str}, keep_default_na=False)
    account_of = {pseudonym_py(a, key=key, namespace="account"): a for a in truth["account_id"]}
    world = simulate_world(**params)
    snapshot_df, features_version = read_snapshot(spark, warehouse)
    snapshot_df = snapshot_df.cache()
    arrears_model = read_arrears_model(spark, warehouse, features_version)
    arrears_history_df = read_arrears_history(spark, warehouse, features_version).cache()
    bill_history_df = read_bill_history(spark, warehouse, features_version).cache()
    rng = np.random.default_rng(seed)
    lo_q, hi_q = (1 - confidence_level) / 2, 1 - (1 - confidence_level) / 2
    out: dict[str, dict[str, dict[str, float]]] = {}
    try:
        for label in WHATIF_SCENARIOS:
            scenario = whatif.parse_scenario(label)
            sim_df = whatif.simulate(snapshot_df, scenario, models,
                                     liheap_annual_benefit_usd=counterfactual.PLANTED_LIHEAP_ANNUAL_USD,
                                     liheap_benefit_months=counterfactual.ASSISTANCE_MONTHS,
                                     liheap_take_up=counterfactual.ASSISTANCE_TAKE_UP,
                                     csat_top2box_threshold=3.5, arrears_model=arrears_model,
                                     arrears_history_df=arrears_history_df, bill_history_df=bill_history_df)
            cols = [c for o in WHATIF_OUTCOMES for c in (f"{o}_baseline", f"{o}_scenario")]
            est = _hand_over(sim_df, "household_id", "touched", *cols)
            est["account_id"] = est["household_id"].map(account_of)
            touched = frozenset(est.loc[est["touched"], "account_id"].dropna())
            per = counterfactual.simulate(
                world,
                extra_bill_usd=scenario.value if scenario.kind == "rate_increase_usd" else 0.0,
                liheap_accounts=touched if scenario.kind == "liheap_enrollment_pct" else frozenset(),
                horizon_months=labels.PAYMENT_HORIZON_MONTHS, replicates=replicates, seed=seed,
            )
            both = est[est["account_id"].isin(set(per["account_id"]))].reset_index(drop=True)
            true_effects = counterfactual.effects(per, replicates=replicates, accounts=set(both["account_id"]))
            idx = rng.integers(0, len(both), size=(bootstrap, len(both)))
            figures: dict[str, dict[str, float]] = {}
            for outcome, truth_outcome in WHATIF_OUTCOMES.items():
                d = (both[f"{outcome}_scenario"] - both[f"{outcome}_baseline"]).to_numpy(dtype=float)
                reps = d[idx].mean(axis=1)
                lo, hi = (float(v) for v in np.quantile(reps, [lo_q, hi_q]))
                eff = true_effects[truth_outcome]
                est_delta = float(d.mean())
                ratio = est_delta / eff.delta if eff.delta else float("nan")
                figures[outcome] = {
                    "whatif_delta": est_delta, "whatif_ci_low": lo, "whatif_ci_high": hi,
                    "truth_delta": eff.delta, "truth_se": eff.delta_se, "truth_factual": eff.factual,
                    "ratio": ratio,
                    "sign_ok": bool(np.sign(est_delta) == np.sign(eff.delta) and (lo > 0 or hi < 0)),
                    "within_factor_2": bool(0.5 <= ratio <= 2.0),
                    # the scenario does not move the truth (within 2 standard errors of 0)
                    "truth_zero": bool(abs(eff.delta) <= 2 * eff.delta_se),
                    "n": float(len(both)), "n_touched": float(both["touched"].sum()),
                }
            out[label] = figures
    finally:
        snapshot_df.unpersist()
        arrears_history_df.unpersist()
        bill_history_df.unpersist()
    return out


def _trained(uri: str, model: str, version: str):  # noqa: ANN202 - LoadedModel
    """The version this run trained (not @champion: in a reused store an older one may keep it)."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return load_model(f"models:/ucx_{model}/{version}", model_name=model, version=version)


def _now():  # noqa: ANN202
    from datetime import UTC, datetime

    return datetime.now(UTC).replace(microsecond=0)


def _survey_nps(spark: SparkSession, warehouse: str) -> float | None:
    kpis_df = read_optional(spark, warehouse, "gold", CX_KPIS)
    if kpis_df is None:
        return None
    row = (kpis_df.filter((F.col("kpi") == "nps") & (F.col("segment_type") == "all") & F.col("value").isNotNull())
           .orderBy(F.desc("month")).select("value").first())
    return None if row is None else float(row["value"])
