"""Household models: labels with honest time, xgboost.spark training tuned by
Optuna and tracked in MLflow, SHAP explanations, registry aliases, scoring."""
