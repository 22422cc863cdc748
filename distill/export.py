"""``transferset export``: a trained student as an ONNX graph plus what is needed to feed it
(vocabulary or tokenizer files, ``export.json``), and the ONNX Runtime adapter that serves it.

The BiLSTM's training graph packs sequences (``pack_padded_sequence``), which ONNX cannot
express; the exported graph runs the two directions as plain LSTMs on padded input, the
backward one over each row reversed within its length, and reads each direction's state at
the row's last token. That is the packed computation exactly (tested against torch).
"""

from __future__ import annotations

import json
import os
import shutil
import warnings

import numpy as np
import torch
from torch import nn

from distill.students import BiLSTMAdapter, TransformerAdapter, load_model

EXPORT_FILE = "export.json"
OPSET = 17


class _PaddedBiLSTM(nn.Module):
    """The student's encoder without packing (weights shared with the trained one)."""

    def __init__(self, encoder):
        super().__init__()
        lstm = encoder.lstm
        self.embed, self.static, self.hidden = encoder.embed, encoder.static, lstm.hidden_size
        self.fwd = nn.LSTM(lstm.input_size, lstm.hidden_size, batch_first=True)
        self.bwd = nn.LSTM(lstm.input_size, lstm.hidden_size, batch_first=True)
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            setattr(self.fwd, name, getattr(lstm, name))
            setattr(self.bwd, name, getattr(lstm, name + "_reverse"))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids)  # (batch, seq, embed)
        if self.static is not None:
            x = torch.cat([x, self.static(ids)], dim=-1)
        steps = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0)  # (1, seq)
        lengths = lengths.unsqueeze(1)  # (batch, 1)
        backwards = torch.where(steps < lengths, lengths - 1 - steps, steps)  # (batch, seq)
        x_rev = torch.gather(x, 1, backwards.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        out_f, _ = self.fwd(x)  # (batch, seq, hidden)
        out_b, _ = self.bwd(x_rev)
        last = (lengths - 1).clamp(min=0).unsqueeze(-1).expand(-1, 1, self.hidden)
        h_f = out_f.gather(1, last).squeeze(1)  # (batch, hidden)
        h_b = out_b.gather(1, last).squeeze(1)
        return torch.cat([h_f, h_b], dim=-1)  # (batch, 2 * hidden)


class PaddedBiLSTMStudent(nn.Module):
    """``BiLSTMStudent`` with the padded encoder: the graph that is exported."""

    def __init__(self, student):
        super().__init__()
        self.encoder, self.head, self.pairs = _PaddedBiLSTM(student.encoder), student.head, False
        self.pairs = student.cfg.pairs

    def forward(self, ids, lengths, ids_b=None, lengths_b=None) -> torch.Tensor:
        h = self.encoder(ids, lengths)
        if self.pairs:
            h2 = self.encoder(ids_b, lengths_b)
            h = torch.cat([h, h2, h * h2, (h - h2).abs()], dim=-1)
        return self.head(h)


class _TransformerLogits(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        return self.model(**kwargs).logits


def probe_texts(n: int = 64, seed: int = 0) -> list[str]:
    """Fixed texts of 1..40 words (common English, a mask token, an unknown word), enough to
    compare two runtimes on every length a batch mixes."""
    words = (
        "the a film is not very good bad movie it 's funny and but , . ! story actors "
        "[MASK] zyxqv plot boring great worst best too long ever"
    ).split()
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(words, size=1 + (k * 7) % 40)) for k in range(n)]


def export_model(
    model_dir: str, out: str, *, fmt: str = "onnx", quantize: bool = False, overwrite: bool = False
) -> dict:
    """Write ``out/model.onnx``, what feeds it and ``export.json``; returns ``export.json``."""
    if fmt != "onnx":
        raise ValueError(f"unknown export format {fmt!r}; onnx is the one there is")
    adapter, meta = load_model(model_dir)
    if isinstance(adapter, OnnxAdapter):
        raise ValueError(f"{model_dir!r} is already an export")
    if os.path.exists(out) and os.listdir(out):
        if not overwrite:
            raise ValueError(f"{out!r} is not empty (pass --overwrite to replace it)")
        shutil.rmtree(out)
    os.makedirs(out, exist_ok=True)
    onnx_path = os.path.join(out, "model.onnx")
    texts = probe_texts()
    pairs = isinstance(adapter, BiLSTMAdapter) and adapter.model.cfg.pairs
    enc = adapter.encode(texts, texts[::-1] if pairs else None)
    idx = np.arange(len(texts))
    if isinstance(adapter, BiLSTMAdapter):
        module = PaddedBiLSTMStudent(adapter.model).eval()
        names = ["ids", "lengths"] + (["ids_b", "lengths_b"] if pairs else [])
        axes = {"ids": {0: "batch", 1: "seq"}, "lengths": {0: "batch"}}
        if pairs:
            axes |= {"ids_b": {0: "batch", 1: "seq_b"}, "lengths_b": {0: "batch"}}
        with open(os.path.join(out, "vocab.json"), "w") as f:
            f.write(adapter.vocab.to_json())
        tokenizer = {
            "kind": "spacy-words",
            "spacy_lang": "en",
            "spacy_version": _spacy_version(),
            "lowercase": adapter.vocab.lowercase,
            "mask_token": adapter.vocab.mask_token,
        }
    elif isinstance(adapter, TransformerAdapter):
        module = _TransformerLogits(adapter.model).eval()
        names = ["input_ids", "attention_mask"] + (
            ["token_type_ids"] if "token_type_ids" in enc else []
        )
        axes = {n: {0: "batch", 1: "seq"} for n in names}
        adapter.tokenizer.save_pretrained(out)
        tokenizer = {"kind": "transformers", "max_length": adapter.max_length}
    else:  # pragma: no cover - load_model returns one of the two
        raise TypeError(type(adapter).__name__)
    inputs = _onnx_inputs(adapter, enc, idx)
    with torch.inference_mode():
        expected = adapter.forward(enc, idx).float().numpy()
    with warnings.catch_warnings():  # tracer notes on shapes: the export is checked below
        warnings.simplefilter("ignore")
        _export(module, inputs, names, axes, onnx_path)
    fp32_diff = _max_diff(onnx_path, inputs, expected)
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp = onnx_path + ".fp32"
        os.replace(onnx_path, tmp)
        quantize_dynamic(tmp, onnx_path, weight_type=QuantType.QInt8)
        os.remove(tmp)
    info = {
        "format": "onnx",
        "opset": OPSET,
        "kind": adapter.kind,
        "task": meta.get("task"),
        "label_names": meta.get("label_names"),
        "pairs": bool(pairs) or "token_type_ids" in names,
        "inputs": names,
        "tokenizer": tokenizer,
        "quantized": quantize,
        "source": os.path.abspath(model_dir),
        "max_abs_diff_vs_torch": fp32_diff,  # the fp32 graph, on probe_texts()
    }
    if quantize:
        info["max_abs_diff_quantized_vs_torch"] = _max_diff(onnx_path, inputs, expected)
    with open(os.path.join(out, EXPORT_FILE), "w") as f:
        json.dump(info, f, indent=2)
    return info


def _export(module, inputs: dict, names: list[str], axes: dict, path: str) -> None:
    torch.onnx.export(
        module,
        tuple(torch.from_numpy(inputs[n]) for n in names),
        path,
        input_names=names,
        output_names=["logits"],
        dynamic_axes=axes | {"logits": {0: "batch"}},
        opset_version=OPSET,
        dynamo=False,
    )


def _spacy_version() -> str:
    import spacy

    return spacy.__version__


def _onnx_inputs(adapter, enc, idx) -> dict:
    """The graph's named inputs for rows ``idx`` of an encoding."""
    if isinstance(adapter, BiLSTMAdapter) or adapter.kind == "bilstm":
        ids, lengths = enc["ids_a"].rows(idx)
        feed = {"ids": ids, "lengths": lengths}
        if "ids_b" in enc:
            ids, lengths = enc["ids_b"].rows(idx)
            feed |= {"ids_b": ids, "lengths_b": lengths}
        return feed
    ids, lengths = enc["input_ids"].rows(idx, pad=adapter.pad_id)
    feed = {
        "input_ids": ids,
        "attention_mask": (np.arange(ids.shape[1])[None, :] < lengths[:, None]).astype(np.int64),
    }
    if "token_type_ids" in enc:
        feed["token_type_ids"] = enc["token_type_ids"].rows(idx)[0]
    return feed


def _session(path: str, threads: int | None = None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def _max_diff(onnx_path: str, inputs: dict, expected: np.ndarray) -> float:
    got = _session(onnx_path).run(["logits"], inputs)[0]
    return float(np.abs(got - expected).max())


class OnnxAdapter:
    """An exported student behind the same interface as the torch adapters."""

    model = None

    def __init__(self, path: str, threads: int | None = None):
        self.path = path
        with open(os.path.join(path, EXPORT_FILE)) as f:
            self.info = json.load(f)
        self.kind = self.info["kind"]
        self.session = _session(os.path.join(path, "model.onnx"), threads)
        self.input_names = [i.name for i in self.session.get_inputs()]
        if self.kind == "bilstm":
            from distill.vocab import StudentVocab, WordIds

            with open(os.path.join(path, "vocab.json")) as f:
                vocab = StudentVocab.from_json(f.read())
            self.word_ids = WordIds.for_vocab(vocab)
            # ONNX Runtime runs the LSTM over padded steps: small length-sorted batches pad
            # least (32 measured best on SST-2 dev: 16 and 64 within 2%, 128 12% slower)
            self.eval_batch_size, self.eval_max_tokens = 32, None
        else:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(path)
            max_length = self.info["tokenizer"]["max_length"]
            self.torch_like = TransformerAdapter(None, tokenizer, max_length)
            self.pad_id = self.torch_like.pad_id
            self.eval_batch_size = TransformerAdapter.eval_batch_size
            self.eval_max_tokens = TransformerAdapter.eval_max_tokens

    def encode(self, texts_a, texts_b=None) -> dict:
        if self.kind == "bilstm":
            enc = {"ids_a": self.word_ids(texts_a)}
            if texts_b is not None:
                enc["ids_b"] = self.word_ids(texts_b)
            return enc
        return self.torch_like.encode(texts_a, texts_b)

    def lengths(self, enc) -> np.ndarray:
        if self.kind == "bilstm":
            return BiLSTMAdapter.lengths(enc)
        return TransformerAdapter.lengths(enc)

    def forward(self, enc, idx) -> torch.Tensor:
        feed = _onnx_inputs(self, enc, idx)
        feed = {k: v for k, v in feed.items() if k in self.input_names}
        return torch.from_numpy(self.session.run(["logits"], feed)[0])

    def num_parameters(self) -> int:
        import onnx

        graph = onnx.load(os.path.join(self.path, "model.onnx"), load_external_data=False)
        return int(sum(np.prod(t.dims) for t in graph.graph.initializer))
