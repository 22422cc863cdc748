"""``transferset report DIR``: what a transfer set holds, as ``report.md`` plus PNG plots."""

from __future__ import annotations

import json
import os
from collections import Counter

import numpy as np

from augment.tasks import has_gold


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: str, name: str) -> str:
    fig.tight_layout()
    fig.savefig(os.path.join(out, name), dpi=100)
    _plt().close(fig)
    return name


def _hist(out, name, title, xlabel, series: dict[str, np.ndarray], bins=30) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    values = [v for v in series.values() if len(v)]
    edges = np.histogram_bin_edges(np.concatenate(values), bins=bins) if values else bins
    for label, v in series.items():
        if len(v):
            ax.hist(v, bins=edges, alpha=0.6, label=f"{label} ({len(v)})", density=True)
    ax.set(title=title, xlabel=xlabel, ylabel="share")
    ax.legend()
    return _save(fig, out, name)


def _bars(out, name, title, groups: dict[str, dict[str, float]]) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    keys = sorted({k for g in groups.values() for k in g})
    width = 0.8 / max(1, len(groups))
    for j, (label, g) in enumerate(groups.items()):
        ax.bar(np.arange(len(keys)) + j * width, [g.get(k, 0) for k in keys], width, label=label)
    ax.set_xticks(np.arange(len(keys)) + width * (len(groups) - 1) / 2, keys, rotation=20)
    ax.set(title=title, ylabel="share")
    ax.legend()
    return _save(fig, out, name)


def _table(rows: list[tuple], header: tuple) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return lines


def write_report(path: str, out: str | None = None) -> str:
    """Write ``report.md`` and its PNGs into ``out`` (default: the transfer set folder)."""
    import datasets

    out = out or path
    os.makedirs(out, exist_ok=True)
    ds = datasets.load_from_disk(path)
    manifest = {}
    if os.path.exists(os.path.join(path, "manifest.json")):
        with open(os.path.join(path, "manifest.json")) as f:
            manifest = json.load(f)
    original = np.asarray(ds["is_original"], dtype=bool)
    lengths = np.array(
        [
            len(t.split()) + (len(b.split()) if b else 0)
            for t, b in zip(ds["text_a"], ds["text_b"], strict=True)
        ]
    )
    ops = Counter(o for o, keep in zip(ds["ops"], ~original, strict=True) if keep)
    md = [f"# Transfer set report: `{os.path.abspath(path)}`", ""]
    md += [
        f"Task **{manifest.get('task', '?')}**, {len(ds):,} rows "
        f"({int(original.sum()):,} originals, {int((~original).sum()):,} samples)."
    ]
    aug = manifest.get("augment")
    if aug:
        md += [
            "",
            "Augmentation: "
            + ", ".join(f"{k}={aug[k]}" for k in ("p_mask", "p_pos", "p_ng", "n_iter", "seed")),
        ]
    counts = manifest.get("counts", {})
    if counts:
        md += ["", "## Counts per stage", ""]
        md += _table([(k, f"{v:,}") for k, v in counts.items()], ("stage", "rows"))
    md += ["", "## Mix of ops (samples)", ""]
    total = max(1, sum(ops.values()))
    md += _table(
        [(k or "(none)", f"{v:,}", f"{v / total:.1%}") for k, v in ops.most_common()],
        ("ops", "samples", "share"),
    )

    def split(values: np.ndarray) -> dict[str, np.ndarray]:  # originals vs samples
        return {"originals": values[original], "samples": values[~original]}

    def image(name: str) -> str:
        return f"![{name.removesuffix('.png')}]({name})"

    md += ["", "## Lengths (whitespace tokens)", ""]
    md.append(image(_hist(out, "lengths.png", "lengths", "tokens", split(lengths))))
    names = ds.features["label"].names if hasattr(ds.features["label"], "names") else None
    if "teacher_logits" in ds.column_names:
        logits = np.asarray(list(ds["teacher_logits"]), dtype=np.float64)
        md += ["", "## Teacher", ""]
        if names:
            z = logits - logits.max(axis=1, keepdims=True)
            p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
            confidence = p.max(axis=1)
            entropy = -(p * np.log(np.clip(p, 1e-12, None))).sum(axis=1)
            md.append(
                image(
                    _hist(
                        out,
                        "teacher_confidence.png",
                        "teacher confidence (max softmax)",
                        "probability",
                        split(confidence),
                    )
                )
            )
            md.append("")
            md.append(
                image(_hist(out, "teacher_entropy.png", "teacher entropy", "nats", split(entropy)))
            )
            argmax = logits.argmax(axis=1)
            gold = np.asarray(ds["label"])
            labelled = original & has_gold(gold)

            def shares(values: np.ndarray) -> dict[str, float]:
                return {names[k]: float(np.mean(values == k)) for k in range(len(names))}

            dist = {"teacher (originals)": shares(argmax[original])}
            if labelled.any():
                dist["gold (originals)"] = shares(gold[labelled])
            if (~original).any():
                dist["teacher (samples)"] = shares(argmax[~original])
            md.append("")
            md.append(image(_bars(out, "label_distribution.png", "label distribution", dist)))
            if labelled.any():
                agree = float(np.mean(argmax[labelled] == gold[labelled]))
                md += [
                    "",
                    f"Teacher argmax agrees with the gold label on {agree:.1%} of the "
                    f"{int(labelled.sum()):,} labelled originals.",
                ]
        else:
            md.append(
                image(
                    _hist(out, "teacher_scores.png", "teacher output", "score", split(logits[:, 0]))
                )
            )
    else:
        md += ["", "No teacher logits in this transfer set (built without `--teacher`)."]
    reasons = manifest.get("dead_letter_reasons")
    md += ["", "## Dead letters", ""]
    if reasons:
        md += _table(sorted(reasons.items(), key=lambda kv: -kv[1]), ("reason", "rows"))
        md += ["", "Details: `dead_letter/dead_letter.jsonl`."]
    else:
        md.append("None.")
    report = os.path.join(out, "report.md")
    with open(report, "w") as f:
        f.write("\n".join(md) + "\n")
    return report
