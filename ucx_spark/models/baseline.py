"""The plain baseline every candidate must beat: a linear model on standardised features.

Logistic regression for the classifiers, ridge regression for CSAT (Spark ML,
L2 penalty ``REG_PARAM``), on the same split, the same feature matrix
(``FeatureSpec``: numeric columns plus one-hot levels) and, for CSAT, the same
inverse-propensity weights as the tree models. Missing values take the
training mean; every column is standardised with the training mean and
standard deviation (constant columns drop out). If a tuned xgboost cannot beat
this on honest validation, its extra capacity is fitting noise.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ucx_spark.errors import DataError
from ucx_spark.models.spec import FeatureSpec

REG_PARAM = 0.01
MAX_ITER = 200


@dataclass(frozen=True)
class Baseline:
    algorithm: str
    params: dict[str, object]
    valid_pred_df: DataFrame  # label, score [, weight]


def _standardised(spec: FeatureSpec, train_df: DataFrame) -> tuple[list[str], list]:  # type: ignore[type-arg]
    """(kept matrix columns, standardised column expressions) from one aggregation over training."""
    mat_df = spec.with_matrix(train_df)
    aggs = []
    for i, name in enumerate(spec.encoded):
        aggs += [F.avg(F.col(name)).alias(f"m{i}"), F.stddev_pop(F.col(name)).alias(f"s{i}")]
    row = mat_df.agg(*aggs).first()
    kept, exprs = [], []
    for i, name in enumerate(spec.encoded):
        mean, std = row[f"m{i}"], row[f"s{i}"]
        if mean is None or std is None or std <= 1e-12:
            continue
        kept.append(name)
        exprs.append(((F.coalesce(F.col(name), F.lit(mean)) - F.lit(mean)) / F.lit(std)).alias(name))
    return kept, exprs


def fit_baseline(
    spec: FeatureSpec,
    train_df: DataFrame,
    valid_df: DataFrame,
    *,
    task: str,
    weight_col: str | None = None,
    score_min: float | None = None,
    score_max: float | None = None,
) -> Baseline:
    """Fit on ``train_df`` (raw features + label [+ weight]) and score ``valid_df``."""
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.functions import vector_to_array
    from pyspark.ml.regression import LinearRegression

    kept, exprs = _standardised(spec, train_df)
    if not kept:
        raise DataError("the baseline has no feature column that varies on the training rows")
    extra = ["label", *([weight_col] if weight_col else [])]

    def matrix(df: DataFrame) -> DataFrame:
        mat_df = spec.with_matrix(df, *extra).select(*extra, *exprs)
        return VectorAssembler(inputCols=kept, outputCol="features", handleInvalid="keep").transform(mat_df)

    common = {"featuresCol": "features", "labelCol": "label", "regParam": REG_PARAM, "elasticNetParam": 0.0,
              "maxIter": MAX_ITER, "standardization": False}
    if weight_col:
        common["weightCol"] = weight_col
    fit_df = matrix(train_df).withColumn("label", F.col("label").cast("double"))
    if task == "binary":
        algorithm = "pyspark.ml LogisticRegression (L2)"
        model = LogisticRegression(**common).fit(fit_df)
        score = vector_to_array(F.col("probability"))[1]
    else:
        algorithm = "pyspark.ml LinearRegression (ridge)"
        model = LinearRegression(**common).fit(fit_df)
        score = F.col("prediction")
        if score_min is not None:
            score = F.greatest(score, F.lit(score_min))
        if score_max is not None:
            score = F.least(score, F.lit(score_max))
    pred_df = model.transform(matrix(valid_df)).select(*extra, score.cast("double").alias("score"))
    params: dict[str, object] = {"algorithm": algorithm, "reg_param": REG_PARAM, "elastic_net": 0.0,
                                 "standardised": "train mean/std, missing = train mean", "n_columns": len(kept)}
    return Baseline(algorithm, params, pred_df)
