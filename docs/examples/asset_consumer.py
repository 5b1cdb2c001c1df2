"""A DAG downstream of the sync DAGs, as docs/bundle.md shows it; tests/dags/test_doc_examples.py checks that its
assets are the ones the bundle's DAGs emit."""

from __future__ import annotations

# [START consumer]
from airflow.sdk import DAG, Asset, task

with DAG("project_costs", schedule=[Asset("acumatica://company/TimeEntry"), Asset("acumatica://company/Project")]):

    @task
    def rebuild(**context):
        for asset, events in context["triggering_asset_events"].items():
            print(asset.uri, [event.extra["rows"] for event in events])

    rebuild()
# [END consumer]
