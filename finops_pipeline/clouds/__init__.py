"""One home per cloud: ``aws/``, ``gcp/`` and ``azure/`` hold the same files for the same jobs.

- ``source.py``: the bulk source the assets use (billing and metrics as Arrow tables, a page at a time);
- ``catalog.py``: what the source knows about the cloud as data: metrics, prices, required permissions;
- ``assets.py``: the two daily-partitioned Dagster assets (``<cloud>_cost``, ``<cloud>_metrics``);
- ``doctor.py``: the ``finops-pipeline doctor`` check of that cloud.

What the three share sits here: ``base.py`` (the source interface, API bookkeeping, errors),
``ingest.py`` (fetch a window -> write partitions -> report), ``restatement.py`` (which
landed days each provider may have restated) and ``doctor.py`` (the doctor's report lines).
"""

PROVIDERS = ("aws", "gcp", "azure")
