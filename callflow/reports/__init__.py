"""Call-tracking reports over the CDR database: pure queries, renderers and charts.

Each report has a query function returning plain dataclasses (``summary``, ``missed``,
``callers``, ``sources``, ``geo``, ``targets``, ``heatmap``, ``compare``, ``caller_calls``) and a
``*_report`` function turning them into a renderable :class:`Report`. Reports read through
their own read-only connection (:class:`ReportDb`).
"""

from callflow.reports.caller import caller_calls, caller_report
from callflow.reports.callers import callers, callers_report
from callflow.reports.compare import compare, compare_report
from callflow.reports.db import Filters, ReportDb
from callflow.reports.geo import geo, geo_report
from callflow.reports.heatmap import heatmap, heatmap_report
from callflow.reports.missed import missed, missed_report
from callflow.reports.render import Report, render
from callflow.reports.sources import sources, sources_report
from callflow.reports.summary import summary, summary_report
from callflow.reports.targets import targets, targets_report

__all__ = [
    "Filters",
    "Report",
    "ReportDb",
    "caller_calls",
    "caller_report",
    "callers",
    "callers_report",
    "compare",
    "compare_report",
    "geo",
    "geo_report",
    "heatmap",
    "heatmap_report",
    "missed",
    "missed_report",
    "render",
    "sources",
    "sources_report",
    "summary",
    "summary_report",
    "targets",
    "targets_report",
]
