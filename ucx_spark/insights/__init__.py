"""CX insights on top of gold and the champion models (issue 6).

Modules (each a set of DataFrame -> DataFrame transforms; reads and writes
live in ``ucx_spark/pipelines``):

- ``base``        the scoring snapshot (active households, latest as_of_date),
                  champion models, segment columns, privacy suppression;
- ``drivers``     global drivers (mean |SHAP| with direction) -> gold/model_drivers;
- ``whatif``      scenarios that change the inputs they would really change,
                  re-scored through the champions -> gold/whatif_results;
- ``segments``    personas and objective-driven segments -> gold/segments;
- ``saturation``  program potential and reachable enrollment -> gold/program_saturation;
- ``targeting``   ranked campaign lists, next best action, channel -> gold/campaign_targets;
- ``report``      the self-contained HTML CX report and the maturity self-assessment.

Gold tables hold pseudonymous household ids only; every published aggregate
carries ``n`` (distinct households) and is suppressed below
``privacy.min_households``.
"""
