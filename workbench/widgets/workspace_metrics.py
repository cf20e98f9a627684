"""Moved to :mod:`workbench.workspace.reports`; kept so that
``from workbench.widgets.workspace_metrics import workspace_reports`` keeps working."""

from __future__ import annotations

from ..workspace.reports import (
    REPORT_FORMAT,
    long_metric_frame,
    report_from_json,
    report_key,
    report_to_json,
    workspace_report,
    workspace_reports,
)

__all__ = [
    "REPORT_FORMAT",
    "long_metric_frame",
    "report_from_json",
    "report_key",
    "report_to_json",
    "workspace_report",
    "workspace_reports",
]
