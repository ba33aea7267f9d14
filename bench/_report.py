"""docs/benchmarks.md: the machine, every ratio, one section and one PNG per benchmark."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from bench._common import Result

SOURCES = {
    "credits": "credits",
    "scale_rls": "scale",
    "scale_trust": "scale",
    "scale_audit": "scale",
    "gate_overhead": "gate_overhead",
    "mcp_e2e": "mcp_e2e",
    "db_breakdown": "db_breakdown",
    "audit_chains": "audit_scale",
    "audit_scale_append": "audit_scale",
    "audit_scale_ops": "audit_scale",
}


def write(path: Path, facts: dict[str, str], results: list[Result], failed: list[str]) -> None:
    """Write the report and its plots (in a folder named like the report, without .md)."""
    plots = path.parent / path.stem
    plots.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (`python bench/run_all.py`) on {facts['date']}, commit "
        f"`{facts['commit']}`, {facts['mode']} run, {facts['total_seconds']} s. Every ratio below "
        "was measured in this one run, side by side with its baseline. Client, servers and "
        "PostgreSQL share the machine's cores (and, where this ran, other people's work): read "
        "the ratios more than the absolute numbers.",
        "",
        "| machine | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in facts.items() if k not in ("date", "commit", "mode")],
        "",
        "## Summary: every ratio",
        "",
        "| benchmark | ratio | value |",
        "|---|---|---|",
        *[f"| {r.name} | {k} | {v:.2f} |" for r in results for k, v in r.ratios.items()],
        "",
    ]
    if failed:
        lines += [f"**Failed to run:** {', '.join(failed)} (see the run's output).", ""]
    for r in results:
        lines += _section(r, plots, path.parent)
    path.write_text("\n".join(lines) + "\n")


def _section(r: Result, plots: Path, base: Path) -> list[str]:
    source = r.source or SOURCES.get(r.name, r.name)
    doc = importlib.import_module(f"bench.{source}").__doc__ or ""
    out = [
        f"## {r.title}",
        "",
        f"Source: `bench/{source}.py`. " + doc.strip().split("\n\n")[0].replace("\n", " "),
        "",
    ]
    if r.rows:
        keys = list(dict.fromkeys(k for row in r.rows for k in row))
        out += ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        out += ["| " + " | ".join(str(row.get(k, "")) for k in keys) + " |" for row in r.rows]
        out.append("")
    out += [f"- **{k}**: {v:.2f}" for k, v in r.ratios.items()]
    out += [f"- {n}" for n in r.notes]
    png = _plot(r, plots)
    if png is not None:
        out += ["", f"![{r.title}]({png.relative_to(base).as_posix()})"]
    return [*out, ""]


def _plot(r: Result, folder: Path) -> Path | None:
    """One PNG per benchmark where a picture reads faster than the table."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
    rows = r.rows
    if r.plot is not None and rows:
        plot_from_spec(ax, rows, r.plot)
    elif r.name == "credits":
        _bars(ax, [x["method"] for x in rows], [x["attempts_per_s"] for x in rows], "attempts/s")
    elif r.name == "scale_rls":
        _grouped(
            ax,
            [x["read"] for x in rows],
            {"p50": [x["p50_ms"] for x in rows], "p99": [x["p99_ms"] for x in rows]},
            "ms per read",
        )
    elif r.name == "scale_trust":
        xs = [int(str(x["customer_accounts"]).replace(",", "")) for x in rows]
        ax.plot(xs, [x["p50_ms"] for x in rows], marker="o", label="p50")
        ax.plot(xs, [x["p99_ms"] for x in rows], marker="o", label="p99")
        ax.set_xscale("log")
        ax.set_xlabel("customer accounts")
        ax.set_ylabel("ms per session check (list_tools)")
        ax.set_ylim(bottom=0)
        ax.legend()
    elif r.name == "scale_audit":
        _bars(
            ax,
            [f"{x['log']} @{x['writers']}" for x in rows],
            [x["appends_per_s"] for x in rows],
            "appends/s",
        )
    elif r.name == "audit_chains":
        designs = list(dict.fromkeys(x["design"] for x in rows))
        chains = list(dict.fromkeys(x["chains"] for x in rows))
        series = {c: [next((x["appends_per_s"] for x in rows
                            if x["design"] == d and x["chains"] == c), 0) for d in designs]
                  for c in chains}
        _grouped(ax, designs, series, "appends/s (32 writers)")
    elif r.name == "audit_scale_append":
        xs = [int(str(x["rows_in_log"]).replace(",", "")) for x in rows]
        ax.plot(xs, [x["appends_per_s"] for x in rows], marker="o")
        ax.set_xlabel("rows in the audit log")
        ax.set_ylabel("appends/s (8 writers)")
        ax.set_ylim(bottom=0)
    elif r.name == "gate_overhead":
        _grouped(
            ax,
            [x["call"] for x in rows],
            {"p50": [x["p50_ms"] for x in rows], "p99": [x["p99_ms"] for x in rows]},
            "ms per call",
        )
    elif r.name == "one_org":
        _bars(ax, [x["callers"] for x in rows], [x["calls_per_s"] for x in rows], "calls/s")
    elif r.name == "gate_cpu":
        _bars(
            ax,
            [x["statement"] for x in rows],
            [x["backend_cpu_ms"] * 1000 for x in rows],
            "PostgreSQL backend CPU, microseconds per statement",
        )
    elif r.name == "db_breakdown":
        _bars(ax, [x["statement"] for x in rows], [x["p50_ms"] for x in rows], "p50 ms")
    else:
        plt.close(fig)
        return None
    ax.set_title(r.title.split(":")[0], fontsize=9)
    fig.tight_layout()
    path = folder / f"{r.name}.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_from_spec(ax: Any, rows: list[dict[str, Any]], spec: dict[str, Any]) -> None:
    """A benchmark's own plot, declared in its Result from its row keys:

    * ``{"kind": "bars", "label": k, "value": k}``: one horizontal bar per row;
    * ``{"kind": "grouped", "x": k, "series": k, "y": k}``: bars grouped by x, one colour per
      series (a missing cell draws 0);
    * ``{"kind": "line", "x": k, "series": k, "y": k, "log_x": bool}``: one line per series.

    ``unit`` labels the value axis (default: the value key).
    """
    kind = spec["kind"]
    if kind == "bars":
        _bars(
            ax,
            [str(x[spec["label"]]) for x in rows],
            [float(x[spec["value"]]) for x in rows],
            spec.get("unit", spec["value"]),
        )
        return
    xs = list(dict.fromkeys(x[spec["x"]] for x in rows))
    names = list(dict.fromkeys(x[spec["series"]] for x in rows)) if "series" in spec else [""]

    def cell(name: Any, at: Any) -> float:
        for x in rows:
            if x[spec["x"]] == at and ("series" not in spec or x[spec["series"]] == name):
                return float(x[spec["y"]])
        return 0.0

    series = {str(n): [cell(n, at) for at in xs] for n in names}
    if kind == "grouped":
        _grouped(ax, [f"{spec['x']} {at}" for at in xs], series, spec.get("unit", spec["y"]))
        return
    for name, values in series.items():
        ax.plot([float(str(at).replace(",", "")) for at in xs], values, marker="o", label=name)
    if spec.get("log_x"):
        ax.set_xscale("log")
    ax.set_xlabel(spec["x"])
    ax.set_ylabel(spec.get("unit", spec["y"]))
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7)


def _bars(ax: Any, labels: list[str], values: list[float], unit: str) -> None:
    ax.barh(labels, values, color="#4c72b0")
    ax.invert_yaxis()
    ax.set_xlabel(unit)
    ax.tick_params(axis="y", labelsize=8)
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:,.0f}", va="center", fontsize=8)


def _grouped(ax: Any, labels: list[str], series: dict[str, list[float]], unit: str) -> None:
    width = 0.8 / max(1, len(series))
    for n, (name, values) in enumerate(series.items()):
        xs = [i + n * width for i in range(len(labels))]
        ax.bar(xs, values, width, label=name)
    ax.set_xticks([i + width * (len(series) - 1) / 2 for i in range(len(labels))])
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel(unit)
    ax.legend(fontsize=7)
