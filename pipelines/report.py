"""``transferset report DIR``: what a transfer set holds, as ``report.md`` plus PNG plots.

One streaming pass over the shards (``ROWS`` at a time): exact counts, op mix, teacher
confidence, entropy and label mix over every row; histograms over a seeded subsample of at most
``HIST_ROWS`` rows; text diversity (distinct-n, self-BLEU, BLEU to the source), the samples
kept per source against the recipe's prediction, and example samples, over a seeded sample of
sources (``--sources``, chosen by a hash of their id, so the same sources in any shard order).
Memory is set by those three numbers, not by the set.
"""

from __future__ import annotations

import os
from collections import Counter

import numpy as np

from augment.seeding import stable_hash64
from augment.tasks import has_gold
from pipelines.plots import bars, hist, md_table, plt_module, save
from pipelines.transfer_set import POS_VOCABULARY, REPORT, open_set, read_manifest

ROWS = 20_000  # rows read at once
HIST_ROWS = 200_000  # rows behind the histograms, at most
SOURCES = 2_000  # sources behind the diversity and yield numbers


class _Stream:
    """Running sums of one pass, split by originals / samples."""

    def __init__(self, names, keep_hist: float, rng: np.random.Generator):
        self.names, self.keep_hist, self.rng = names, keep_hist, rng
        self.rows = {"originals": 0, "samples": 0}
        self.ops: Counter = Counter()
        self.hist: dict[str, dict[str, list]] = {}
        self.sums: dict[str, Counter] = {"originals": Counter(), "samples": Counter()}
        self.argmax = {"originals": Counter(), "samples": Counter()}
        self.gold: Counter = Counter()
        self.agree = [0, 0]

    def addhist(self, name: str, group: str, values) -> None:
        self.hist.setdefault(name, {}).setdefault(group, []).extend(np.asarray(values).tolist())

    def update(self, table, tokenize) -> None:
        original = table.column("is_original").to_numpy(zero_copy_only=False).astype(bool)
        self.rows["originals"] += int(original.sum())
        self.rows["samples"] += int((~original).sum())
        ops = table.column("ops").to_pylist()
        self.ops.update(o for o, keep in zip(ops, ~original, strict=True) if keep)
        picked = self.rng.random(len(original)) < self.keep_hist
        if picked.any():
            idx = np.flatnonzero(picked)
            texts_a = table.column("text_a").take(idx).to_pylist()
            texts_b = table.column("text_b").take(idx).to_pylist()
            pairs = zip(tokenize(texts_a), _tok(tokenize, texts_b), strict=True)
            lengths = np.array([len(a) + len(b or ()) for a, b in pairs])
            for group, mask in _groups(original[idx]):
                self.addhist("lengths", group, lengths[mask])
        if "teacher_logits" not in table.column_names:
            return
        import pyarrow.compute as pc

        flat = pc.list_flatten(table.column("teacher_logits"))  # respects a slice's offset
        logits = flat.to_numpy().reshape(len(original), -1).astype(np.float64)
        if not self.names:
            for group, mask in _groups(original):
                self.addhist("scores", group, logits[mask & picked, 0])
            return
        z = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        confidence = p.max(axis=1)
        entropy = -(p * np.log(np.clip(p, 1e-12, None))).sum(axis=1)
        argmax = logits.argmax(axis=1)
        gold = table.column("label").to_numpy(zero_copy_only=False)
        for group, mask in _groups(original):
            self.sums[group].update(
                {"confidence": float(confidence[mask].sum()), "entropy": float(entropy[mask].sum())}
            )
            self.argmax[group].update(argmax[mask].tolist())
            self.addhist("confidence", group, confidence[mask & picked])
            self.addhist("entropy", group, entropy[mask & picked])
        labelled = original & has_gold(gold)
        self.gold.update(gold[labelled].astype(int).tolist())
        self.agree[0] += int((argmax[labelled] == gold[labelled]).sum())
        self.agree[1] += int(labelled.sum())


def _groups(original: np.ndarray):
    return (("originals", original), ("samples", ~original))


def _tok(tokenize, texts):
    """Token lists of optional texts (``None`` stays ``None``)."""
    present = [t for t in texts if t is not None]
    it = iter(tokenize(present) if present else [])
    return [next(it) if t is not None else None for t in texts]


def _sampled(source_ids: list[str], fraction: float, seed: int) -> np.ndarray:
    limit = fraction * 2.0**64
    return np.array([stable_hash64(f"report/{seed}/{s}") < limit for s in source_ids], bool)


def _diversity_section(groups: dict, tokenize, manifest: dict, path: str, out: str) -> list[str]:
    """distinct-n, self-BLEU, BLEU to the source, yield by length and example samples, over
    the sampled sources (``groups``: source id -> {"original": row, "samples": [rows]})."""
    from augment.diversity import bleu_to_source, distinct_n, self_bleu

    sources = [g for g in groups.values() if g["original"] is not None]
    if not sources:
        return ["", "## Diversity", "", "No sources to sample."]

    def tokens(row) -> list[str]:
        a, b = row["tokens_a"], row["tokens_b"]
        return a if b is None else [*a, "|||", *b]

    for g in sources:  # tokenise the sampled rows once
        rows = [g["original"], *g["samples"]]
        for row, ta, tb in zip(
            rows,
            tokenize([r["text_a"] for r in rows]),
            _tok(tokenize, [r["text_b"] for r in rows]),
            strict=True,
        ):
            row["tokens_a"], row["tokens_b"] = ta, tb
    originals = [tokens(g["original"]) for g in sources]
    samples = [tokens(r) for g in sources for r in g["samples"]]
    md = ["", "## Diversity", ""]
    md.append(
        f"Over a seeded sample of {len(sources):,} sources and their {len(samples):,} samples "
        "(tokens as the student sees them; NLTK n-grams and BLEU-4 with smoothing method 1)."
    )
    md.append("")
    rows = []
    for n in (1, 2, 3):
        rows.append(
            (f"distinct-{n}", f"{distinct_n(originals, n):.3f}", f"{distinct_n(samples, n):.3f}")
        )
    siblings = [[tokens(r) for r in g["samples"]] for g in sources if len(g["samples"]) >= 2]
    sb = [self_bleu(s) for s in siblings]
    to_src = [
        bleu_to_source([tokens(r) for r in g["samples"]], tokens(g["original"]))
        for g in sources
        if g["samples"]
    ]
    rows.append(("self-BLEU among a source's samples", "", _mean(sb)))
    rows.append(("BLEU of samples against their source", "", _mean(to_src)))
    md += md_table(rows, ("metric", "originals", "samples"))
    md += _yield_section(sources, manifest, path, out)
    md += _examples_section(sources)
    return md


def _mean(values) -> str:
    values = [v for v in values if not np.isnan(v)]
    return f"{np.mean(values):.3f}" if values else "n/a"


def _yield_section(sources, manifest: dict, path: str, out: str) -> list[str]:
    """Samples kept per source, by source length, beside the recipe's prediction."""
    from augment import AugmentConfig, PosVocabulary, load_tagger, tag_texts
    from augment.diversity import predicted_survivors

    md = ["", "## Samples kept per source", ""]
    aug = manifest.get("augment")
    vocab_path = os.path.join(path, POS_VOCABULARY)
    if not aug or sources[0]["original"]["text_b"] is not None:
        return md + ["Shown for single-sentence tasks (pairs augment A, B or both)."]
    if not os.path.exists(vocab_path):
        return md + ["No `pos_vocabulary.json` beside the shards (a set built before it was kept)."]
    with open(vocab_path) as f:
        vocab = PosVocabulary.from_json(f.read())
    config = AugmentConfig(**(aug | {"ngram_sizes": tuple(aug["ngram_sizes"])}))
    nlp = load_tagger(manifest.get("spacy_model"), scheme=config.tag_scheme, fallback=True)
    texts = [g["original"]["text_a"] for g in sources]
    tagged = list(tag_texts(nlp, texts, scheme=config.tag_scheme))
    by_length: dict[int, list[tuple[int, float]]] = {}
    for g, sentence in zip(sources, tagged, strict=True):
        kept = len(g["samples"])
        by_length.setdefault(len(sentence), []).append(
            (kept, predicted_survivors(sentence, vocab, config))
        )
    lengths = sorted(by_length)
    measured = [np.mean([k for k, _ in by_length[n]]) for n in lengths]
    predicted = [max(0.0, np.mean([p for _, p in by_length[n]])) for n in lengths]
    plt = plt_module()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(lengths, measured, "o", ms=3, label="kept (measured)")
    ax.plot(lengths, predicted, "-", label="draws surviving the drop rules (predicted)")
    ax.axhline(config.n_iter, color="grey", lw=0.8, ls=":")
    ax.set(title="samples per source", xlabel="source length (spaCy tokens)", ylabel="samples")
    ax.legend()
    name = save(fig, out, "yield.png")
    md.append(
        f"A draw is dropped when it equals its source (probability "
        f"`prod_i(1 - p_mask - p_pos + p_pos * s_i) * ((1 - p_ng) + p_ng * P(n >= L))`, "
        f"`s_i` = the chance that a POS swap draws token i's own word) or when every token it "
        f"keeps was replaced; the prediction is `n_iter` ({config.n_iter}) times what is left. "
        "Kept samples are fewer where survivors repeat a sibling or a text already in the set "
        "(the build keeps one copy of each text): most for short sources."
    )
    md += ["", f"![yield]({name})", ""]
    rows = []
    for lo, hi in ((1, 1), (2, 2), (3, 5), (6, 10), (11, 20), (21, 10_000)):
        ks = [x for n in lengths if lo <= n <= hi for x in by_length[n]]
        if ks:
            label = f"{lo}" if lo == hi else (f"{lo}-{hi}" if hi < 10_000 else f">= {lo}")
            rows.append(
                (
                    label,
                    f"{len(ks):,}",
                    f"{np.mean([k for k, _ in ks]):.2f}",
                    f"{max(0.0, np.mean([p for _, p in ks])):.2f}",
                )
            )
    md += md_table(rows, ("source tokens", "sources", "kept per source", "predicted survivors"))
    return md


def _examples_section(sources, per_mix: int = 2) -> list[str]:
    """A few samples per op mix beside their source: sources in hash order (seeded), at most
    one sample of a source per mix, so the examples come from different sources."""
    by_mix: dict[str, list] = {}
    for g in sorted(sources, key=lambda g: stable_hash64(g["original"]["source_id"])):
        used = set()
        for r in g["samples"]:
            mix = r["ops"] or "(none)"
            found = by_mix.setdefault(mix, [])
            if len(found) < per_mix and mix not in used:
                found.append((g["original"], r))
                used.add(mix)
    md = ["", "## Example samples", ""]

    def cell(row) -> str:
        text = row["text_a"] if row["text_b"] is None else f"{row['text_a']} ‖ {row['text_b']}"
        return text.strip().replace("|", "\\|").replace("\n", " ")[:160]

    rows = [(mix, cell(src), cell(r)) for mix in sorted(by_mix) for src, r in by_mix[mix]]
    return md + md_table(rows, ("ops", "source", "sample"))


def write_report(
    path: str, out: str | None = None, *, sources: int = SOURCES, seed: int = 0
) -> str:
    """Write ``report.md`` and its PNGs into ``out`` (default: the transfer set folder)."""

    from augment import word_tokenizer

    out = out or path
    os.makedirs(out, exist_ok=True)
    ds = open_set(path)
    found = read_manifest(path)
    manifest = found.to_dict() if found else {}
    names = ds.features["label"].names if hasattr(ds.features["label"], "names") else None
    tokenize = word_tokenizer(manifest.get("augment", {}).get("mask_token", "[MASK]"))
    n_sources = manifest.get("counts", {}).get("originals_written") or max(1, len(ds))
    fraction = min(1.0, sources / max(1, n_sources))
    stream = _Stream(names, min(1.0, HIST_ROWS / max(1, len(ds))), np.random.default_rng(seed))
    groups: dict[str, dict] = {}
    arrow = ds.with_format("arrow")
    cols = ["source_id", "is_original", "text_a", "text_b", "ops"]
    for start in range(0, len(ds), ROWS):
        table = arrow[start : start + ROWS]
        stream.update(table, tokenize)
        ids = table.column("source_id").to_pylist()
        chosen = np.flatnonzero(_sampled(ids, fraction, seed))
        if len(chosen):
            for row in table.select(cols).take(chosen).to_pylist():
                g = groups.setdefault(row["source_id"], {"original": None, "samples": []})
                if row["is_original"]:
                    g["original"] = row
                else:
                    g["samples"].append(row)
    md = _summary(path, manifest, stream, out)
    md += _diversity_section(groups, tokenize, manifest, path, out)
    reasons = manifest.get("dead_letter_reasons")
    md += ["", "## Dead letters", ""]
    if reasons:
        md += md_table(sorted(reasons.items(), key=lambda kv: -kv[1]), ("reason", "rows"))
        md += ["", "Details: `dead_letter/dead_letter.jsonl`."]
    else:
        md.append("None.")
    report = os.path.join(out, REPORT)
    with open(report, "w") as f:
        f.write("\n".join(md) + "\n")
    return report


def _summary(path: str, manifest: dict, stream: _Stream, out: str) -> list[str]:
    rows = stream.rows
    total_rows = rows["originals"] + rows["samples"]
    md = [f"# Transfer set report: `{os.path.abspath(path)}`", ""]
    md += [
        f"Task **{manifest.get('task', '?')}**, {total_rows:,} rows "
        f"({rows['originals']:,} originals, {rows['samples']:,} samples)."
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
        md += md_table([(k, f"{v:,}") for k, v in counts.items()], ("stage", "rows"))
    md += ["", "## Mix of ops (samples)", ""]
    total = max(1, sum(stream.ops.values()))
    md += md_table(
        [(k or "(none)", f"{v:,}", f"{v / total:.1%}") for k, v in stream.ops.most_common()],
        ("ops", "samples", "share"),
    )

    md += ["", "## Lengths (student tokens)", ""]
    md.append(_figure(stream, out, "lengths.png", "lengths", "tokens", "lengths"))
    if not stream.hist.get("scores") and not stream.sums["originals"]:
        return md + ["", "No teacher logits in this transfer set (built without `--teacher`)."]
    return md + ["", "## Teacher", "", *_teacher_section(stream, out)]


def _series(stream: _Stream, name: str) -> dict[str, np.ndarray]:
    h = stream.hist.get(name, {})
    return {g: np.asarray(h.get(g, [])) for g in ("originals", "samples")}


def _image(name: str) -> str:
    return f"![{name.removesuffix('.png')}]({name})"


def _figure(stream: _Stream, out: str, file: str, title: str, xlabel: str, name: str) -> str:
    """The histogram of one series, originals against samples, as a Markdown image."""
    return _image(hist(out, file, title, xlabel, _series(stream, name)))


def _teacher_section(stream: _Stream, out: str) -> list[str]:
    rows, names = stream.rows, stream.names
    md: list[str] = []
    if not names:
        return md + [
            _figure(stream, out, "teacher_scores.png", "teacher output", "score", "scores")
        ]
    title = "teacher confidence (max softmax)"
    md.append(_figure(stream, out, "teacher_confidence.png", title, "probability", "confidence"))
    md.append("")
    md.append(_figure(stream, out, "teacher_entropy.png", "teacher entropy", "nats", "entropy"))
    md += [""]
    means = []
    for g in ("originals", "samples"):
        n = rows[g]
        if n:
            s = stream.sums[g]
            means.append((g, f"{n:,}", f"{s['confidence'] / n:.3f}", f"{s['entropy'] / n:.3f}"))
    md += md_table(means, ("rows", "count", "mean confidence", "mean entropy (nats)"))

    def shares(counter: Counter) -> dict[str, float]:
        total = max(1, sum(counter.values()))
        return {names[k]: counter.get(k, 0) / total for k in range(len(names))}

    dist = {"teacher (originals)": shares(stream.argmax["originals"])}
    if stream.gold:
        dist["gold (originals)"] = shares(stream.gold)
    if rows["samples"]:
        dist["teacher (samples)"] = shares(stream.argmax["samples"])
    md.append("")
    md.append(_image(bars(out, "label_distribution.png", "label distribution", dist)))
    md += [""]
    md += md_table(
        [(k, *(f"{v[n]:.1%}" for n in names)) for k, v in dist.items()], ("label mix", *names)
    )
    if stream.agree[1]:
        agree, labelled = stream.agree[0] / stream.agree[1], stream.agree[1]
        md += [
            "",
            f"Teacher argmax agrees with the gold label on {agree:.1%} of the "
            f"{labelled:,} labelled originals.",
        ]
    return md
