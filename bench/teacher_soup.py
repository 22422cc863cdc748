"""Several fine-tuned teachers into one: logit ensembles against weight soups, side by side.

    python bench/teacher_soup.py --task mrpc --select SEL.tsv --test TEST.tsv T1 T2 T3 ...

Each teacher (a ``finetune-teacher`` folder; all from one base) is scored on the selection
file and the reported file. Then, on the same two files:
  * the logit ensemble: the teachers' logits averaged (N forward passes per text);
  * the uniform soup: the teachers' weights averaged into one checkpoint (one forward pass;
    Wortsman et al. 2022, "Model soups");
  * the greedy soup: teachers added best first (by selection score), each kept only if the
    selection score does not drop.
Only the selection file picks anything; the reported file is printed beside it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402


def task_logits(model_dir: str, ds) -> np.ndarray:
    from distill.api import load_model
    from distill.checkpoints import label_order
    from distill.data import label_names
    from distill.export import label_names as model_label_names
    from distill.students import predict

    adapter, meta = load_model(model_dir)
    names = model_label_names(adapter, meta)
    perm = label_order(dict(enumerate(names or ["score"])), label_names(ds), role=model_dir)
    texts_b = list(ds["text_b"]) if ds["text_b"][0] is not None else None
    return predict(adapter, list(ds["text_a"]), texts_b)[:, perm]


def main_metric(task: str, logits: np.ndarray, ds) -> tuple[float, dict]:
    from augment.tasks import get_task
    from distill.metrics import score_logits

    metrics = score_logits(task, logits, list(ds["label"]))
    return metrics[get_task(task).main_metric], metrics


def write_soup(teachers: list[str], out: str) -> str:
    """The teachers' float weights averaged into ``out`` (config and tokenizer of the first)."""
    from safetensors.torch import load_file, save_file

    states = [load_file(os.path.join(t, "model.safetensors")) for t in teachers]
    soup = {}
    for key, first in states[0].items():
        if first.is_floating_point():
            soup[key] = sum(s[key].double() for s in states).div(len(states)).to(first.dtype)
        else:
            soup[key] = first
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(teachers[0]):
        if name not in ("model.safetensors", "finetune.json") and not name.endswith(".json.tmp"):
            path = os.path.join(teachers[0], name)
            if os.path.isfile(path):
                shutil.copy(path, out)
    save_file(soup, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", required=True)
    ap.add_argument("--select", required=True, help="the labelled file that picks")
    ap.add_argument("--test", required=True, help="the labelled file that is reported")
    ap.add_argument("teachers", nargs="+")
    args = ap.parse_args()
    from transferset_cli import _eval_dataset

    sel, test = _eval_dataset(args.select, args.task), _eval_dataset(args.test, args.task)

    def both(pair: tuple[np.ndarray, np.ndarray]) -> tuple[float, float]:
        return main_metric(args.task, pair[0], sel)[0], main_metric(args.task, pair[1], test)[0]

    logits = {t: (task_logits(t, sel), task_logits(t, test)) for t in args.teachers}
    rows = [(os.path.basename(t), *both(logits[t])) for t in args.teachers]
    mean = tuple(np.mean([logits[t][i] for t in args.teachers], axis=0) for i in (0, 1))
    rows.append((f"logit ensemble of {len(args.teachers)}", *both(mean)))
    with tempfile.TemporaryDirectory() as tmp:

        def soup(members: list[str]) -> tuple[float, float]:
            folder = write_soup(members, os.path.join(tmp, f"soup{len(os.listdir(tmp))}"))
            return both((task_logits(folder, sel), task_logits(folder, test)))

        rows.append((f"uniform soup of {len(args.teachers)}", *soup(args.teachers)))
        order = sorted(args.teachers, key=lambda t: -both(logits[t])[0])
        kept, (best, best_test) = [order[0]], both(logits[order[0]])
        for t in order[1:]:
            s, r = soup([*kept, t])
            if s >= best:
                kept, best, best_test = [*kept, t], s, r
        names = "+".join(os.path.basename(t) for t in kept)
        rows.append((f"greedy soup ({names})", best, best_test))
    print(f"| teacher | selection {args.task} | reported {args.task} |")
    print("|---|---:|---:|")
    for name, s, r in rows:
        print(f"| {name} | {s:.4f} | {r:.4f} |")


if __name__ == "__main__":
    main()
