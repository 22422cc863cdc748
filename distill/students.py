"""One interface over both students (and plain HF classifiers, for evaluating teachers):
encode texts once, cut batches, run the model, save and load.

Every kind of model is behind one adapter protocol (``StudentAdapter``): the BiLSTM and the
transformer here, the ONNX Runtime export in ``distill.export``. Callers never ask which kind
they hold; ``distill.api.load_model`` picks the adapter from what a folder holds."""

from __future__ import annotations

import json
import os
from typing import Protocol

import numpy as np
import torch

from distill.batching import Ragged
from distill.checkpoints import apply_umask
from distill.models import BiLSTMConfig, BiLSTMStudent

STUDENT_FILE = "student.json"


class StudentAdapter(Protocol):
    """What every kind of student implements."""

    kind: str
    eval_batch_size: int  # rows per inference batch, measured best on a 2-core CPU
    eval_max_tokens: int | None  # padded tokens per batch, when the kind batches by budget

    def encode(self, texts_a, texts_b=None) -> dict: ...  # texts -> Ragged token ids by name
    def lengths(self, enc) -> np.ndarray: ...  # tokens per row (for length-sorted batches)
    def forward(self, enc, idx) -> torch.Tensor: ...  # logits of rows ``idx``
    def eval(self) -> None: ...  # inference mode (dropout off); a no-op for an export
    def num_parameters(self) -> int: ...
    def onnx_feed(self, enc, idx) -> dict: ...  # the exported graph's named inputs
    def quantized(self) -> StudentAdapter: ...  # dynamic int8 (torch); refused by an export


def _arrow_lists(r: Ragged):
    import pyarrow as pa

    return pa.ListArray.from_arrays(
        pa.array(r.offsets.astype(np.int32)), pa.array(r.flat.astype(np.int32))
    )


class BiLSTMAdapter:
    kind = "bilstm"
    eval_batch_size, eval_max_tokens = 128, None  # measured best on a 2-core CPU
    columns = ("ids_a", "ids_b")

    def __init__(self, model: BiLSTMStudent, vocab):
        from distill.vocab import WordIds

        self.model, self.vocab = model, vocab
        self.word_ids = WordIds.for_vocab(vocab)

    def encode(self, texts_a, texts_b=None) -> dict:
        """``{"ids_a": Ragged[, "ids_b": Ragged]}``: token ids of each text."""
        enc = {"ids_a": self.word_ids(texts_a)}
        if texts_b is not None:
            enc["ids_b"] = self.word_ids(texts_b)
        return enc

    @staticmethod
    def lengths(enc) -> np.ndarray:
        a = enc["ids_a"].lengths
        return a + enc["ids_b"].lengths if "ids_b" in enc else a

    def forward(self, enc, idx) -> torch.Tensor:
        ids, lengths = enc["ids_a"].rows(idx)
        args = [torch.from_numpy(ids), torch.from_numpy(lengths)]
        if "ids_b" in enc:
            ids, lengths = enc["ids_b"].rows(idx)
            args += [torch.from_numpy(ids), torch.from_numpy(lengths)]
        return self.model(*args)  # (batch, num_labels)

    def eval(self) -> None:
        self.model.eval()

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def onnx_feed(self, enc, idx) -> dict:
        ids, lengths = enc["ids_a"].rows(idx)
        feed = {"ids": ids, "lengths": lengths}
        if "ids_b" in enc:
            ids, lengths = enc["ids_b"].rows(idx)
            feed |= {"ids_b": ids, "lengths_b": lengths}
        return feed

    def quantized(self) -> BiLSTMAdapter:
        out = BiLSTMAdapter.__new__(BiLSTMAdapter)
        out.model, out.vocab, out.word_ids = quantize_dynamic(self.model), self.vocab, self.word_ids
        return out

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
        apply_umask(out)


class TransformerAdapter:
    kind = "transformer"
    eval_batch_size, eval_max_tokens = 64, 2048  # the teacher stage's CPU defaults
    columns = ("input_ids", "token_type_ids")

    def __init__(self, model, tokenizer, max_length: int = 128):
        self.model, self.tokenizer, self.max_length = model, tokenizer, max_length

    def encode(self, texts_a, texts_b=None) -> dict:
        out = self.tokenizer(
            list(texts_a),
            list(texts_b) if texts_b is not None else None,
            truncation=True,
            max_length=self.max_length,
        )
        return {k: Ragged.from_lists(out[k]) for k in self.columns if k in out}

    @staticmethod
    def lengths(enc) -> np.ndarray:
        return enc["input_ids"].lengths

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id or 0

    def forward(self, enc, idx) -> torch.Tensor:
        ids, lengths = enc["input_ids"].rows(idx, pad=self.pad_id)
        mask = np.arange(ids.shape[1])[None, :] < lengths[:, None]
        batch = {
            "input_ids": torch.from_numpy(ids),
            "attention_mask": torch.from_numpy(mask.astype(np.int64)),
        }
        if "token_type_ids" in enc:
            batch["token_type_ids"] = torch.from_numpy(enc["token_type_ids"].rows(idx)[0])
        return self.model(**batch).logits

    def eval(self) -> None:
        self.model.eval()

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def onnx_feed(self, enc, idx) -> dict:
        ids, lengths = enc["input_ids"].rows(idx, pad=self.pad_id)
        mask = (np.arange(ids.shape[1])[None, :] < lengths[:, None]).astype(np.int64)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in enc:
            feed["token_type_ids"] = enc["token_type_ids"].rows(idx)[0]
        return feed

    def quantized(self) -> TransformerAdapter:
        return TransformerAdapter(quantize_dynamic(self.model), self.tokenizer, self.max_length)

    def save(self, out: str, meta: dict) -> None:
        self.model.save_pretrained(out, safe_serialization=True)
        self.tokenizer.save_pretrained(out)
        with open(os.path.join(out, STUDENT_FILE), "w") as f:
            json.dump(meta | {"kind": self.kind, "max_length": self.max_length}, f, indent=2)
        apply_umask(out)


def encode_arrow(adapter, texts_a, texts_b=None) -> dict:
    """The adapter's encoding as Arrow ``list<int32>`` columns (for ``datasets.map``)."""
    return {k: _arrow_lists(v) for k, v in adapter.encode(texts_a, texts_b).items()}


def decode_arrow(table) -> dict:
    """The id columns of an Arrow table (a batch of encoded rows) as ``Ragged``."""
    return {
        k: Ragged.from_arrow(table.column(k))
        for k in ("ids_a", "ids_b", "input_ids", "token_type_ids")
        if k in table.column_names
    }


def quantize_dynamic(model):
    """int8 weights for the LSTM and linear layers, activations quantized on the fly."""
    from torch import nn

    return torch.ao.quantization.quantize_dynamic(model, {nn.LSTM, nn.Linear}, dtype=torch.qint8)


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
    adapter.eval()
    with torch.inference_mode():
        for idx in bucketed_batches(lengths, batch_size, max_tokens=max_tokens):
            logits = adapter.forward(enc, idx).float().numpy()
            if out is None:
                out = np.zeros((len(lengths), logits.shape[1]), dtype=np.float32)
            out[idx] = logits
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)


def load_trained(path: str, *, allow_pickle: bool = False):
    """A student saved by ``train-student``, or any local HF sequence classifier (to evaluate
    teachers alike), as torch. Returns ``(adapter, meta)``; ``distill.api.load_model`` also
    opens exports."""
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
    from distill.checkpoints import load_classifier, load_tokenizer

    tokenizer = load_tokenizer(path, role="model")
    model = load_classifier(path, allow_pickle=allow_pickle)
    return TransformerAdapter(model.eval(), tokenizer, meta.get("max_length", 128)), meta
