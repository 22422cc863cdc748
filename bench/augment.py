"""P1: the cost of Tang augmentation relative to tagging, and against the authors' loop.

    python bench/augment.py [--limit N] [--n-iter 20]

Prints sentences/s of (a) spaCy tagging alone, (b) tagging once + vocabulary + n_iter samples
per sentence with ``augment/``, (c) the authors' loop structure (tag twice, ``random.choice``
over per-tag lists with duplicates, a Python loop per token), all on the same sentences with
the same spaCy components, in one run. Last line:
``P1 augment_cost_ratio=<(b) time / (a) time> naive_speedup=<(c) time / (b) time>``.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and would shadow the `augment`
# package with this very file: put the project root there instead.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from augment import AugmentConfig, PosVocabulary, augment_batch, load_tagger, tag_texts  # noqa: E402
from bench._glue import sst2_sentences  # noqa: E402

BATCH = 1000


def tag_only(nlp, texts):
    for _ in nlp.pipe(texts, batch_size=BATCH):
        pass


def ours(nlp, texts, cfg):
    tagged = list(tag_texts(nlp, texts, batch_size=BATCH))
    vocab = PosVocabulary.from_sentences(tagged)
    examples = [(str(i), s, None) for i, s in enumerate(tagged)]
    n = 0
    for k in range(0, len(examples), BATCH):
        n += sum(map(len, augment_batch(examples[k : k + BATCH], vocab=vocab, config=cfg)))
    return n


def naive(nlp, texts, cfg):
    """The authors' structure: two tagging passes and a Python loop per token and sample."""
    rnd = random.Random(cfg.seed)
    pos_words = defaultdict(list)
    for doc in nlp.pipe(texts, batch_size=BATCH):  # pass 1: the vocabulary, duplicates kept
        for tok in doc:
            pos_words[tok.tag_].append(tok.text)
    n = 0
    for doc in nlp.pipe(texts, batch_size=BATCH):  # pass 2: tag again, then augment
        words = [t.text for t in doc]
        tags = [t.tag_ for t in doc]
        seen = {" ".join(words)}
        for _ in range(cfg.n_iter):
            new = []
            for w, t in zip(words, tags, strict=True):
                x = rnd.random()
                if x < cfg.p_mask:
                    new.append(cfg.mask_token)
                elif x < cfg.p_mask + cfg.p_pos:
                    new.append(rnd.choice(pos_words[t]))
                else:
                    new.append(w)
            if rnd.random() < cfg.p_ng:
                size = rnd.randint(1, 5)
                if len(new) > size:
                    start = rnd.randint(0, len(new) - size)
                    new = new[start : start + size]
            text = " ".join(new)
            if text not in seen:
                seen.add(text)
                n += 1
    return n


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="first N sentences (default: all)")
    ap.add_argument("--n-iter", type=int, default=20)
    args = ap.parse_args(argv)
    texts = sst2_sentences(args.limit)
    cfg = AugmentConfig(n_iter=args.n_iter)
    nlp = load_tagger()
    tag_only(nlp, texts[:500])  # warm-up: the first batches of a fresh pipeline are slower
    gc.freeze()  # spaCy's long-lived objects out of the collector's way, for every variant alike
    print(f"{len(texts)} SST-2 sentences, n_iter={cfg.n_iter}, spaCy {nlp.pipe_names}")

    t = time.perf_counter()
    tag_only(nlp, texts)
    t_tag = time.perf_counter() - t
    print(f"tag_only:        {len(texts) / t_tag:9.0f} sentences/s  ({t_tag:.1f} s)")

    t = time.perf_counter()
    n_ours = ours(nlp, texts, cfg)
    t_ours = time.perf_counter() - t
    per_sample = (t_ours - t_tag) / (len(texts) * cfg.n_iter) * 1e6
    print(
        f"tag_and_augment: {len(texts) / t_ours:9.0f} sentences/s  ({t_ours:.1f} s, "
        f"{n_ours} samples kept, ~{per_sample:.1f} us per sample over tagging)"
    )

    t = time.perf_counter()
    n_naive = naive(nlp, texts, cfg)
    t_naive = time.perf_counter() - t
    print(
        f"naive:           {len(texts) / t_naive:9.0f} sentences/s  ({t_naive:.1f} s, "
        f"{n_naive} samples kept)"
    )
    print(f"P1 augment_cost_ratio={t_ours / t_tag:.3f} naive_speedup={t_naive / t_ours:.3f}")


if __name__ == "__main__":
    main()
