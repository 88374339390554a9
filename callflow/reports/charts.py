"""The natural chart of each report, drawn with matplotlib (Agg) as PNG, SVG or an HTML page."""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from callflow.reports.compare import MetricChange
from callflow.reports.geo import GeoRow
from callflow.reports.heatmap import WEEKDAYS, HeatCell
from callflow.reports.missed import MissedTotals
from callflow.reports.sources import SourceRow
from callflow.reports.summary import SummaryRow
from callflow.reports.targets import TargetRow

__all__ = ["CHART_SUFFIXES", "chart"]

CHART_SUFFIXES: Final = (".png", ".svg", ".html")
_GREEN, _RED, _ORANGE, _GREY, _BLUE = "#2e7d32", "#c62828", "#ef6c00", "#9e9e9e", "#1565c0"


def _figure(width: float = 10, height: float = 5) -> Figure:
    """A new figure on the Agg canvas (no display needed)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def save(fig: Figure, path: Path, title: str) -> None:
    """Write the figure as PNG or SVG, or an HTML page embedding the SVG."""
    suffix = path.suffix.lower()
    if suffix not in CHART_SUFFIXES:
        raise ValueError(f"--chart must end in {', '.join(CHART_SUFFIXES)}")
    if suffix == ".html":
        buf = io.StringIO()
        fig.savefig(buf, format="svg")
        svg = buf.getvalue()
        svg = svg[svg.index("<svg") :]
        page = (
            f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title></head>\n<body>\n"
            f"<h1>{html.escape(title)}</h1>\n{svg}\n</body></html>\n"
        )
        path.write_text(page, encoding="utf-8")
    else:
        fig.savefig(path, format=suffix[1:], dpi=110)


def _summary(fig: Figure, rows: Sequence[SummaryRow]) -> None:
    """Stacked bars answered / missed / abandoned per bucket, answer rate on a second axis."""
    ax = fig.subplots()
    x = range(len(rows))
    answered = [r.counts.answered for r in rows]
    missed = [r.counts.missed for r in rows]
    abandoned = [r.counts.abandoned for r in rows]
    ax.bar(x, answered, color=_GREEN, label="answered", width=0.9)
    ax.bar(x, missed, bottom=answered, color=_RED, label="missed", width=0.9)
    ax.bar(
        x,
        abandoned,
        bottom=[a + m for a, m in zip(answered, missed, strict=True)],
        color=_ORANGE,
        label="abandoned",
        width=0.9,
    )
    ax.set_ylabel("calls")
    rate = ax.twinx()
    rate.plot(
        x,
        [(r.counts.answer_rate or 0) * 100 for r in rows],
        color=_BLUE,
        lw=1.5,
        label="answer rate %",
    )
    rate.set_ylim(0, 100)
    rate.set_ylabel("answer rate %")
    step = max(1, len(rows) // 12)
    ax.set_xticks(list(x)[::step], [r.label for r in rows][::step], rotation=30, ha="right")
    ax.legend(loc="upper left")


def _heatmap(fig: Figure, cells: Sequence[HeatCell]) -> None:
    """Two weekday x hour heat maps: calls and missed."""
    axes = fig.subplots(2, 1, sharex=True)
    for ax, key, cmap in ((axes[0], "calls", "YlGnBu"), (axes[1], "missed", "OrRd")):
        grid = [[0] * 24 for _ in range(7)]
        for c in cells:
            grid[c.weekday][c.hour] = getattr(c, key)
        image = ax.imshow(grid, aspect="auto", cmap=cmap)
        ax.set_yticks(range(7), WEEKDAYS)
        ax.set_title(key)
        fig.colorbar(image, ax=ax)
    axes[1].set_xticks(range(24), [str(h) for h in range(24)])
    axes[1].set_xlabel("hour of day")


def _hbars(
    fig: Figure, labels: Sequence[str], series: Sequence[tuple[str, Sequence[float], str]]
) -> None:
    """Grouped horizontal bars, first label on top."""
    ax = fig.subplots()
    n = len(series)
    height = 0.8 / max(n, 1)
    for i, (name, values, color) in enumerate(series):
        ax.barh(
            [y + i * height for y in range(len(labels))],
            values,
            height=height,
            color=color,
            label=name,
        )
    ax.set_yticks([y + height * (n - 1) / 2 for y in range(len(labels))], labels)
    ax.invert_yaxis()
    ax.legend()


def _missed(fig: Figure, totals: MissedTotals) -> None:
    """Missed calls by result: reached later vs not."""
    labels = list(totals.by_disposition)
    reached = [totals.by_disposition[d][1] for d in labels]
    lost = [totals.by_disposition[d][0] - totals.by_disposition[d][1] for d in labels]
    ax = fig.subplots()
    ax.bar(labels, lost, color=_RED, label="not reached")
    ax.bar(labels, reached, bottom=lost, color=_GREEN, label="reached later")
    ax.set_ylabel("calls")
    ax.legend()


def _compare(fig: Figure, changes: Sequence[MetricChange], labels: tuple[str, str]) -> None:
    """Before/after bars for the per-day counts."""
    counts = [m for m in changes if not m.rate and m.metric.endswith("/ day")]
    _hbars(
        fig,
        [m.metric for m in counts],
        [
            (labels[0], [m.before or 0 for m in counts], _GREY),
            (labels[1], [m.after or 0 for m in counts], _BLUE),
        ],
    )


def _caller(fig: Figure, calls: Sequence[Any]) -> None:
    """Talk seconds of each call over time, coloured by result."""
    from datetime import UTC, datetime

    ax = fig.subplots()
    colours = {"answered": _GREEN, "abandoned": _ORANGE}
    ax.scatter(
        [datetime.fromtimestamp(c.started_at, UTC) for c in calls],  # type: ignore[arg-type]
        [c.talk_seconds or 0 for c in calls],
        c=[colours.get(c.disposition or "", _RED) for c in calls],
    )
    ax.set_ylabel("talk seconds")
    fig.autofmt_xdate()


def chart(kind: str, data: Any, path: Path, title: str, **extra: Any) -> None:
    """Draw report ``kind`` from its data rows and save it to ``path``."""
    fig = _figure(11, 7 if kind == "heatmap" else 5.5)
    if kind == "summary":
        _summary(fig, data)
    elif kind == "heatmap":
        _heatmap(fig, data)
    elif kind == "missed":
        _missed(fig, data)
    elif kind == "sources":
        rows: Sequence[SourceRow] = data[:20]
        _hbars(
            fig,
            [" / ".join(str(k) for k in r.key) for r in rows],
            [
                ("calls", [r.calls for r in rows], _GREY),
                ("answered", [r.answered for r in rows], _GREEN),
                ("conversions", [r.conversions for r in rows], _BLUE),
            ],
        )
    elif kind == "geo":
        places: Sequence[GeoRow] = data[:20]
        _hbars(
            fig,
            [p.place for p in places],
            [
                ("calls", [p.calls for p in places], _GREY),
                ("answered", [p.answered for p in places], _GREEN),
                ("missed", [p.missed for p in places], _RED),
            ],
        )
    elif kind == "targets":
        targets: Sequence[TargetRow] = data
        _hbars(
            fig,
            [f"{t.target} ({t.level})" for t in targets],
            [
                ("offered", [t.offered for t in targets], _GREY),
                ("answered", [t.answered for t in targets], _GREEN),
                ("missed", [t.missed for t in targets], _RED),
            ],
        )
    elif kind == "callers":
        tops = data[:20]
        _hbars(
            fig,
            [t.caller for t in tops],
            [
                ("calls", [t.calls for t in tops], _GREY),
                ("answered", [t.answered for t in tops], _GREEN),
            ],
        )
    elif kind == "compare":
        _compare(fig, data, extra.get("labels", ("before", "after")))
    elif kind == "caller":
        _caller(fig, data)
    else:
        raise ValueError(f"no chart for {kind!r}")
    fig.suptitle(title)
    save(fig, path, title)
