"""The report's figures and Markdown tables (matplotlib, loaded only when a plot is drawn)."""

from __future__ import annotations

import os

import numpy as np


def plt_module():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, out: str, name: str) -> str:
    fig.tight_layout()
    fig.savefig(os.path.join(out, name), dpi=100)
    plt_module().close(fig)
    return name


def hist(out, name, title, xlabel, series: dict[str, np.ndarray], bins=30) -> str:
    plt = plt_module()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    values = [v for v in series.values() if len(v)]
    edges = np.histogram_bin_edges(np.concatenate(values), bins=bins) if values else bins
    for label, v in series.items():
        if len(v):
            ax.hist(v, bins=edges, alpha=0.6, label=f"{label} ({len(v)})", density=True)
    ax.set(title=title, xlabel=xlabel, ylabel="share")
    ax.legend()
    return save(fig, out, name)


def bars(out, name, title, groups: dict[str, dict[str, float]]) -> str:
    plt = plt_module()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    keys = sorted({k for g in groups.values() for k in g})
    width = 0.8 / max(1, len(groups))
    for j, (label, g) in enumerate(groups.items()):
        ax.bar(np.arange(len(keys)) + j * width, [g.get(k, 0) for k in keys], width, label=label)
    ax.set_xticks(np.arange(len(keys)) + width * (len(groups) - 1) / 2, keys, rotation=20)
    ax.set(title=title, ylabel="share")
    ax.legend()
    return save(fig, out, name)


def md_table(rows: list[tuple], header: tuple) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return lines
