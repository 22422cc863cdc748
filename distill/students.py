"""One interface over both students (and plain HF classifiers, for evaluating teachers):
encode texts once, cut batches, run the model, save and load."""

from __future__ import annotations

import json
import os

import numpy as np
import torch

from distill.models import BiLSTMConfig, BiLSTMStudent

STUDENT_FILE = "student.json"


def _pad(seqs: list[list[int]], pad: int = 0) -> torch.Tensor:
    out = np.full((len(seqs), max(len(s) for s in seqs)), pad, dtype=np.int64)
    for r, s in enumerate(seqs):
        out[r, : len(s)] = s
    return torch.from_numpy(out)  # (batch, longest)


class BiLSTMAdapter:
    kind = "bilstm"
    eval_batch_size, eval_max_tokens = 128, None  # measured best on a 2-core CPU

    def __init__(self, model: BiLSTMStudent, vocab):
        from augment import word_tokenizer

        self.model, self.vocab = model, vocab
        self.tokenize = word_tokenizer(vocab.mask_token)

    def encode(self, texts_a, texts_b=None) -> dict:
        enc = {"a": [self.vocab.encode(t) for t in self.tokenize(texts_a)]}
        if texts_b is not None:
            enc["b"] = [self.vocab.encode(t) for t in self.tokenize(texts_b)]
        return enc

    @staticmethod
    def lengths(enc) -> np.ndarray:
        a = np.array([len(x) for x in enc["a"]])
        return a + np.array([len(x) for x in enc["b"]]) if "b" in enc else a

    def forward(self, enc, idx) -> torch.Tensor:
        a = [enc["a"][i] for i in idx]
        args = [_pad(a), torch.tensor([len(x) for x in a])]
        if "b" in enc:
            b = [enc["b"][i] for i in idx]
            args += [_pad(b), torch.tensor([len(x) for x in b])]
        return self.model(*args)  # (batch, num_labels)

    def save(self, out: str, meta: dict) -> None:
        from dataclasses import asdict

        from safetensors.torch import save_file

        os.makedirs(out, exist_ok=True)
        save_file(
            {k: v.contiguous() for k, v in self.model.state_dict().items()},
            os.path.join(out, "model.safetensors"),
        )
        with open(os.path.join(out, "vocab.json"), "w") as f:
            f.write(self.vocab.to_json())
        with open(os.path.join(out, STUDENT_FILE), "w") as f:
            json.dump(meta | {"kind": self.kind, "model": asdict(self.model.cfg)}, f, indent=2)


class TransformerAdapter:
    kind = "transformer"
    eval_batch_size, eval_max_tokens = 64, 2048  # the teacher stage's CPU defaults

    def __init__(self, model, tokenizer, max_length: int = 128):
        self.model, self.tokenizer, self.max_length = model, tokenizer, max_length

    def encode(self, texts_a, texts_b=None) -> dict:
        return dict(
            self.tokenizer(
                list(texts_a),
                list(texts_b) if texts_b is not None else None,
                truncation=True,
                max_length=self.max_length,
            )
        )

    @staticmethod
    def lengths(enc) -> np.ndarray:
        return np.array([len(x) for x in enc["input_ids"]])

    def forward(self, enc, idx) -> torch.Tensor:
        ids = [enc["input_ids"][i] for i in idx]
        batch = {
            "input_ids": _pad(ids, self.tokenizer.pad_token_id or 0),
            "attention_mask": _pad([[1] * len(x) for x in ids]),
        }
        if "token_type_ids" in enc:
            batch["token_type_ids"] = _pad([enc["token_type_ids"][i] for i in idx])
        return self.model(**batch).logits

    def save(self, out: str, meta: dict) -> None:
        self.model.save_pretrained(out, safe_serialization=True)
        self.tokenizer.save_pretrained(out)
        with open(os.path.join(out, STUDENT_FILE), "w") as f:
            json.dump(meta | {"kind": self.kind, "max_length": self.max_length}, f, indent=2)


def num_parameters(adapter) -> int:
    return sum(p.numel() for p in adapter.model.parameters())


def predict(
    adapter, texts_a, texts_b=None, batch_size: int | None = None, max_tokens: int | None = None
) -> np.ndarray:
    """Logits for every text (pair), in input order; batches sorted by length, sized by the
    adapter's defaults unless given (a BiLSTM likes many rows, a transformer a token budget)."""
    from distill.batching import bucketed_batches

    enc = adapter.encode(texts_a, texts_b)
    lengths = adapter.lengths(enc)
    batch_size = batch_size or adapter.eval_batch_size
    max_tokens = max_tokens or adapter.eval_max_tokens
    out = None
    adapter.model.eval()
    with torch.inference_mode():
        for idx in bucketed_batches(lengths, batch_size, max_tokens=max_tokens):
            logits = adapter.forward(enc, idx).float().numpy()
            if out is None:
                out = np.zeros((len(lengths), logits.shape[1]), dtype=np.float32)
            out[idx] = logits
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)


def load_model(path: str):
    """A saved student, or any local HF sequence classifier (to evaluate teachers alike).

    Returns ``(adapter, meta)``.
    """
    meta_path = os.path.join(path, STUDENT_FILE)
    meta = {}
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
    if meta.get("kind") == "bilstm":
        from safetensors.torch import load_file

        from distill.vocab import StudentVocab

        with open(os.path.join(path, "vocab.json")) as f:
            vocab = StudentVocab.from_json(f.read())
        model = BiLSTMStudent(BiLSTMConfig(**meta["model"]))
        model.load_state_dict(load_file(os.path.join(path, "model.safetensors")))
        return BiLSTMAdapter(model.eval(), vocab), meta
    if not os.path.exists(os.path.join(path, "config.json")):
        raise FileNotFoundError(
            f"{path!r} holds no student ({STUDENT_FILE}) and no "
            "transformers checkpoint (config.json)"
        )
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(path, use_safetensors=True)
    tokenizer = AutoTokenizer.from_pretrained(path)
    return TransformerAdapter(model.eval(), tokenizer, meta.get("max_length", 128)), meta
