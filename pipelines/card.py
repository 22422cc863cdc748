"""The dataset card (``README.md``) that the build writes beside every transfer set.

YAML front matter in the Hugging Face dataset-card convention (``huggingface_hub.DatasetCard``
parses it), then how the set was made: the command, the recipe, the tagger, the teacher, the
columns, the counts and how to load it. Everything comes from the manifest.
"""

from __future__ import annotations

import json

import yaml

TANG = """@article{tang2019distilling,
  title   = {Distilling Task-Specific Knowledge from {BERT} into Simple Neural Networks},
  author  = {Tang, Raphael and Lu, Yao and Liu, Linqing and Mou, Lili and Vechtomova, Olga
             and Lin, Jimmy},
  journal = {arXiv preprint arXiv:1903.12136},
  year    = {2019}
}"""
GLUE = """@inproceedings{wang2019glue,
  title     = {{GLUE}: A Multi-Task Benchmark and Analysis Platform for Natural Language
               Understanding},
  author    = {Wang, Alex and Singh, Amanpreet and Michael, Julian and Hill, Felix and
               Levy, Omer and Bowman, Samuel R.},
  booktitle = {International Conference on Learning Representations},
  year      = {2019}
}"""
_SIZES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"))
_SIZES += ((1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"))


def size_category(rows: int) -> str:
    return next((name for limit, name in _SIZES if rows < limit), "n>100M")


def front_matter(manifest: dict) -> dict:
    task = manifest["task"]
    return {
        "language": ["en"],
        "license": "other",
        "annotations_creators": ["machine-generated"],
        "language_creators": ["found", "machine-generated"],
        "multilinguality": ["monolingual"],
        "size_categories": [size_category(manifest["counts"]["written"])],
        "source_datasets": ["extended|glue"],
        "task_categories": ["text-classification"],
        "task_ids": ["semantic-similarity-scoring"] if manifest["regression"] else [],
        "pretty_name": f"transferset transfer set for GLUE {task}",
        "tags": ["knowledge-distillation", "data-augmentation", "transfer-set", f"glue-{task}"],
    }


def _table(rows: list[tuple]) -> list[str]:
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    return out + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows[1:]]


def render(manifest: dict) -> str:
    """The card's text: YAML front matter, then the body."""
    task, c, a = manifest["task"], manifest["counts"], manifest["augment"]
    t = manifest.get("teacher")
    versions = manifest.get("versions", {})
    tagger = manifest.get("spacy_model")
    tagger_version = versions.get(tagger)
    md = ["---", yaml.safe_dump(front_matter(manifest), sort_keys=False).rstrip(), "---", ""]
    md += [
        f"# Transfer set for GLUE {task}",
        "",
        f"A *transfer set* for task-specific knowledge distillation, built by transferset: the "
        f"{c['originals_written']:,} source rows of {task} plus {c['samples_written']:,} samples "
        "made from them with Tang et al. (2019)'s augmentation (masking, POS-guided word "
        "replacement, n-gram sampling)"
        + (", every row carrying the teacher's raw logits." if t else ", without teacher logits.")
        + " Samples have no gold label (-1, or NaN for regression).",
        "",
        "## How it was built",
        "",
        "```",
        manifest.get("command") or "transferset build ...",
        "```",
        "",
        f"- Input: {', '.join(manifest['input'])} ({manifest['format']})"
        if manifest["input"]
        else "- Input: a PCollection of examples (`BuildTransferSet` in a Beam pipeline)",
        f"- Seed: {manifest['seed']}; augmentation: `{json.dumps(a, sort_keys=True)}`",
        f"- POS tagger: spaCy `{tagger}` ({tagger_version or 'version not recorded'}), "
        f"`{a['tag_scheme']}` tags, one pass over the source sentences",
    ]
    if t:
        md += [
            f"- Teacher: `{t['path']}`, weights sha256 `{t['weights_sha256']}`",
            f"- Teacher labels (id2label): `{json.dumps(t['id2label'])}`, logit order applied "
            f"`{t['logit_order']}`; max length {t['max_length']} tokens; ran as "
            + (", ".join(f"{k} ({v:,} rows)" for k, v in t.get("ran", {}).items()) or "-")
            + f" (asked: dtype {t['dtype']}, device {t['device']})",
        ]
    md += ["", "## Columns", ""]
    md += _table(
        [
            ("column", "meaning"),
            ("id", "`{source_id}` for originals, `{source_id}-{i}` for sample i"),
            ("source_id", "id of the source row"),
            ("text_a, text_b", "the text (text_b null for single-sentence tasks)"),
            ("label", "gold label of originals; -1 / NaN for samples"),
            ("is_original", "true for source rows"),
            ("ops", "the ops that made a sample, e.g. mask+pos+ngram; empty for originals"),
        ]
        + ([("teacher_logits", "raw teacher logits in the task's label order")] if t else [])
    )
    md += ["", "## Counts", ""]
    md += _table([("stage", "rows"), *((k, f"{v:,}") for k, v in c.items())])
    reasons = manifest.get("dead_letter_reasons") or {}
    md += ["", "Dead-lettered rows by reason (`dead_letter/dead_letter.jsonl`): "]
    md[-1] += ", ".join(f"{k}: {v}" for k, v in reasons.items()) if reasons else "none."
    md += ["", "## Loading", "", *_loading(manifest.get("shard_format", "arrow")), "", SPLIT, ""]
    md += ["## Citations", "", "```bibtex", TANG, "", GLUE, "```", ""]
    return "\n".join(md)


SPLIT = (
    "To hold rows out, split by `source_id`, not by row: a sample is its source sentence with a "
    "few words masked or swapped, so a row split puts near-copies of test sentences in train. "
    "`distill.split_by_source(ds, test_size, seed)` keeps every source with all its samples on "
    "one side."
)


def _loading(shard_format: str) -> list[str]:
    if shard_format == "parquet":
        return [
            "```python",
            "import datasets",
            "",
            'ds = datasets.load_dataset("parquet", data_files="THIS_FOLDER/data-*.parquet", '
            'split="train")',
            "```",
            "",
            "The Parquet shards carry the `datasets` Features in their schema metadata, so the "
            "label's class names survive; polars (`pl.scan_parquet`), duckdb, Spark and "
            "`pyarrow.dataset` read them too.",
        ]
    return [
        "```python",
        "import datasets",
        "",
        'ds = datasets.load_from_disk("THIS_FOLDER")  # memory-mapped',
        'ds = datasets.load_dataset("arrow", data_files="THIS_FOLDER/data-*.arrow", split="train")',
        "```",
        "",
        '`datasets.load_dataset("THIS_FOLDER")` is refused by `datasets` for a folder written in '
        "the `save_to_disk` layout: use one of the two calls above. Glob `data-*.arrow`, not "
        "`*.arrow`: a later `.map()` writes `cache-*.arrow` files beside the shards.",
    ]
