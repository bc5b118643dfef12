"""``lit-genvision leaderboard``: rank results within a protocol, never across protocols.

A protocol is (dataset, split, extractor, number of samples, image size): two numbers are ranked
together only when all five agree. Output: a rich table per protocol and metric, a Markdown file
and a PNG of each model's metric against NFE.
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from lit_genvision.checks import check_writable
from lit_genvision.experiments.store import COMPARABLE, ResultsStore
from lit_genvision.metrics.scoring import lower_is_better


def latest(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest record per (model, checkpoint, sampler, steps, protocol, metric)."""
    keep: dict[tuple, dict[str, Any]] = {}
    for r in records:  # ordered by id
        key = (r["model"], r["checkpoint_hash"], r["sampler"], r["steps"], r["metric"])
        keep[(*key, *(r.get(k) for k in COMPARABLE))] = r
    return list(keep.values())


def groups(records: list[dict[str, Any]]) -> dict[tuple, list[dict[str, Any]]]:
    """Records grouped by (protocol…, bits per image, metric), each group ranked best first."""
    out: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        out[(*(r.get(k) for k in COMPARABLE), r["metric"])].append(r)
    for key, rows in out.items():
        rows.sort(key=lambda r: r["value"], reverse=not lower_is_better(key[-1]))
    return dict(sorted(out.items(), key=lambda kv: tuple(str(k) for k in kv[0])))


def _title(key: tuple) -> str:
    dataset, split, extractor, n, size, bits, metric = key
    rate = f" · {bits:g} bits/image" if bits is not None else ""
    return f"{metric} · {dataset}/{split} · {extractor} · N={n} · {size}px{rate}"


def markdown(grouped: dict[tuple, list[dict[str, Any]]]) -> str:
    lines = ["# Leaderboard", "", "Ranked within a protocol (dataset, split, extractor, N, image size) only.", ""]
    for key, rows in grouped.items():
        arrow = "lower is better" if lower_is_better(key[-1]) else "higher is better"
        lines += [
            f"## {_title(key)} ({arrow})",
            "",
            "| rank | model | family | sampler | NFE | value | checkpoint |",
            "|---:|---|---|---|---:|---:|---|",
        ]
        for i, r in enumerate(rows, 1):
            lines.append(
                f"| {i} | {r['model']} | {r['family']} | {r['sampler']} | {r['steps']} | {r['value']:.4f} "
                f"| {r['checkpoint_hash'] or '-'} |"
            )
        lines.append("")
    return "\n".join(lines)


def plot(grouped: dict[tuple, list[dict[str, Any]]], path: Path) -> Path | None:
    """Metric against NFE per (model, sampler family), one panel per Fréchet-type group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(k, rows) for k, rows in grouped.items() if k[-1] in ("digits_fd", "fid", "kid")]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    for ax, (key, rows) in zip(axes[0], panels, strict=True):
        series: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for r in rows:
            if r["family"] == "baseline":
                ax.axhline(r["value"], ls="--", lw=1, color="grey")
                ax.annotate(
                    r["model"],
                    (0, r["value"]),
                    xycoords=("axes fraction", "data"),
                    fontsize=7,
                    color="grey",
                    va="bottom",
                )
            else:
                sampler = re.sub(r"\(.*?\)", "", r["sampler"])  # ddim(eta=0)+cfg2 → ddim+cfg2: one line per setting
                series[f"{r['model']} · {sampler}"].append((r["steps"], r["value"]))
        for label, pts in sorted(series.items()):
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("NFE (network evaluations per image)")
        ax.set_ylabel(key[-1])
        ax.set_title(_title(key), fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default=None, help="results store (default runs/results.sqlite)")
    p.add_argument("--dataset", default=None, help="rank only the records of this dataset (default: every one)")
    p.add_argument("--metric", default=None, help="rank only this metric (default: every one)")
    p.add_argument("--family", default=None, help="rank only this family, with the baselines (default: every one)")
    p.add_argument("--out", default="runs/leaderboard", help="writes OUT.md and OUT.png")
    p.add_argument("--all", action="store_true", help="every record, not only the newest per setting")


def run(args: argparse.Namespace) -> dict[tuple, list[dict[str, Any]]]:
    """Rank the store's records within each protocol; print the tables and write OUT.md and OUT.png."""
    out = Path(args.out)
    for path in (out.with_suffix(".md"), out.with_suffix(".png")):
        check_writable(path, "--out")
    store = ResultsStore(args.store)
    records = store.records(dataset=args.dataset, metric=args.metric)
    store.close()
    if args.family:  # baselines stay as reference points
        records = [r for r in records if r["family"] in (args.family, "baseline")]
    records = [r for r in records if r["status"] == "ok"]
    if not args.all:
        records = latest(records)
    grouped = groups(records)
    console = Console()
    if not grouped:
        console.print(f"No results in {store.path} match; run `lit-genvision evaluate` first.")
        return grouped
    for key, rows in grouped.items():
        table = Table(title=_title(key) + (" ↓" if lower_is_better(key[-1]) else " ↑"))
        for col, just in [("#", "right"), ("model", "left"), ("sampler", "left"), ("NFE", "right"), ("value", "right")]:
            table.add_column(col, justify=just)
        for i, r in enumerate(rows, 1):
            table.add_row(str(i), r["model"], r["sampler"], str(r["steps"]), f"{r['value']:.4f}")
        console.print(table)
    out.with_suffix(".md").write_text(markdown(grouped))
    png = plot(grouped, out.with_suffix(".png"))
    console.print(f"Wrote {out.with_suffix('.md')}" + (f" and {png}" if png else ""))
    return grouped
