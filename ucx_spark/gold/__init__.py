"""Gold layer: published tables (contract section 4) as DataFrame -> DataFrame transforms.

Modules: ``meter_daily_usage``, ``cx_kpis``, ``household_features``, with the
shared helpers ``local_time`` (utility-time-zone calendar), ``accounts``
(which account holds a meter or premise when) and ``privacy`` (suppression,
PII guard). Transforms read nothing and write nothing; ``pipelines.gold`` does.
"""
