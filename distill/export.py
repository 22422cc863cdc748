"""``transferset export``: a trained student as an ONNX graph plus what is needed to feed it
(vocabulary or tokenizer files, ``export.json``), and the ONNX Runtime adapter that serves it.

The BiLSTM's training graph packs sequences (``pack_padded_sequence``), which ONNX cannot
express; the exported graph runs the two directions as plain LSTMs on padded input, the
backward one over each row reversed within its length, and reads each direction's state at
the row's last token. That is the packed computation exactly (tested against torch).
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import os
import shutil
import uuid
import warnings

import numpy as np
import torch
from torch import nn

from distill.checkpoints import apply_umask, discard, hold_lock, recover_swap, replace_folder
from distill.students import BiLSTMAdapter, TransformerAdapter, load_trained

logger = logging.getLogger(__name__)
EXPORT_FILE = "export.json"
OPSET = 17
# An exported graph is refused, nothing written, when its logits on probe_texts() are off the
# torch model's by more than a share of their spread (max - min, at least 1): the fp32 graph's
# largest difference (measured: ~1e-6 of it), the int8 graph's mean difference (BiLSTM students
# 0.004-0.006, the MiniLM teacher 0.058 with 0.1 points of SST-2 dev accuracy lost; the siamese
# BiLSTMs before quantize_int8's fix 0.15-0.36).
FP32_TOLERANCE = 1e-3
QUANTIZED_TOLERANCE = 0.1


def bilstm_graph(model, pairs: bool):
    """The BiLSTM student as an ONNX graph, built node by node: embeddings -> one
    bidirectional ``LSTM`` node fed ``sequence_lens`` (ONNX Runtime stops each row at its
    length in both directions: no packing, no padded steps) -> its final states (or, with
    ``pooling="max"``, each feature's max over the row's steps) -> the head.
    torch's gate order (i, f, g, o) becomes ONNX's (i, o, f, c)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    cfg, enc = model.cfg, model.encoder
    lstm = enc.lstm
    hidden = lstm.hidden_size
    order = [0, 3, 1, 2]

    def gates(w: torch.Tensor) -> np.ndarray:
        chunks = w.detach().float().numpy().reshape(4, hidden, *w.shape[1:])
        return np.concatenate([chunks[k] for k in order])

    def both(name: str) -> np.ndarray:
        return np.stack([gates(getattr(lstm, name)), gates(getattr(lstm, name + "_reverse"))])

    bias = np.concatenate([both("bias_ih_l0"), both("bias_hh_l0")], axis=1)  # (2, 8H)
    fc1, fc2 = model.head[0], model.head[3]
    weights = {
        "embed": enc.table(),
        "W": both("weight_ih_l0"),
        "R": both("weight_hh_l0"),
        "B": bias,
        "fc1_w": fc1.weight,
        "fc1_b": fc1.bias,
        "fc2_w": fc2.weight,
        "fc2_b": fc2.bias,
    }
    if enc.static is not None:
        weights["static"] = enc.static.weight
    if enc.pooling == "last":
        weights["flat"] = np.array([0, 2 * hidden], dtype=np.int64)
    else:
        weights |= {
            "i0": np.array(0, dtype=np.int64),
            "i1": np.array(1, dtype=np.int64),
            "ax0": np.array([0], dtype=np.int64),
            "ax1": np.array([1], dtype=np.int64),
            "ax2": np.array([2], dtype=np.int64),
            "flat3": np.array([0, 0, 2 * hidden], dtype=np.int64),
            "neg_inf": np.array(-np.inf, dtype=np.float32),
        }
    inits = [
        numpy_helper.from_array(
            v.detach().float().numpy() if isinstance(v, torch.Tensor) else v, name=k
        )
        for k, v in weights.items()
    ]
    nodes = []

    def encoder(ids: str, lengths: str, tag: str) -> str:
        x = f"x{tag}"
        nodes.append(helper.make_node("Gather", ["embed", ids], [x]))
        if enc.static is not None:
            nodes.append(helper.make_node("Gather", ["static", ids], [f"xs{tag}"]))
            nodes.append(helper.make_node("Concat", [x, f"xs{tag}"], [f"xc{tag}"], axis=-1))
            x = f"xc{tag}"
        nodes.append(helper.make_node("Transpose", [x], [f"xt{tag}"], perm=[1, 0, 2]))
        nodes.append(helper.make_node("Cast", [lengths], [f"sl{tag}"], to=TensorProto.INT32))
        nodes.append(
            helper.make_node(
                "LSTM",
                [f"xt{tag}", "W", "R", "B", f"sl{tag}"],
                [f"y{tag}", f"hn{tag}"],
                direction="bidirectional",
                hidden_size=hidden,
            )
        )  # y: (seq, 2, batch, H), every step's state; hn: (2, batch, H), the final ones
        if enc.pooling == "max":
            return max_pool(f"y{tag}", ids, lengths, tag)
        nodes.append(helper.make_node("Transpose", [f"hn{tag}"], [f"ht{tag}"], perm=[1, 0, 2]))
        nodes.append(helper.make_node("Reshape", [f"ht{tag}", "flat"], [f"h{tag}"]))
        return f"h{tag}"

    def max_pool(y: str, ids: str, lengths: str, tag: str) -> str:
        """Each feature's max over the steps before the row's length (torch's masked max)."""

        def node(op: str, ins: list[str], out: str, **attrs) -> None:
            nodes.append(helper.make_node(op, ins, [out], **attrs))

        node("Transpose", [y], f"yb{tag}", perm=[2, 0, 1, 3])  # (batch, seq, 2, H)
        node("Reshape", [f"yb{tag}", "flat3"], f"yr{tag}")  # (batch, seq, 2H)
        node("Shape", [ids], f"shape{tag}")
        node("Gather", [f"shape{tag}", "i1"], f"seq{tag}", axis=0)
        node("Range", ["i0", f"seq{tag}", "i1"], f"steps{tag}")
        node("Unsqueeze", [f"steps{tag}", "ax0"], f"steps2{tag}")  # (1, seq)
        node("Unsqueeze", [lengths, "ax1"], f"len2{tag}")  # (batch, 1)
        node("Less", [f"steps2{tag}", f"len2{tag}"], f"valid{tag}")  # (batch, seq)
        node("Unsqueeze", [f"valid{tag}", "ax2"], f"valid3{tag}")
        node("Where", [f"valid3{tag}", f"yr{tag}", "neg_inf"], f"ym{tag}")
        node("ReduceMax", [f"ym{tag}"], f"h{tag}", axes=[1], keepdims=0)  # (batch, 2H)
        return f"h{tag}"

    h = encoder("ids", "lengths", "a")
    inputs = [
        helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "seq"]),
        helper.make_tensor_value_info("lengths", TensorProto.INT64, ["batch"]),
    ]
    if pairs:
        h2 = encoder("ids_b", "lengths_b", "b")
        inputs += [
            helper.make_tensor_value_info("ids_b", TensorProto.INT64, ["batch", "seq_b"]),
            helper.make_tensor_value_info("lengths_b", TensorProto.INT64, ["batch"]),
        ]
        nodes.append(helper.make_node("Mul", [h, h2], ["prod"]))
        nodes.append(helper.make_node("Sub", [h, h2], ["diff"]))
        nodes.append(helper.make_node("Abs", ["diff"], ["absdiff"]))
        nodes.append(helper.make_node("Concat", [h, h2, "prod", "absdiff"], ["feat"], axis=1))
        h = "feat"
    nodes.append(helper.make_node("Gemm", [h, "fc1_w", "fc1_b"], ["z1"], transB=1))
    nodes.append(helper.make_node("Relu", ["z1"], ["r1"]))
    nodes.append(helper.make_node("Gemm", ["r1", "fc2_w", "fc2_b"], ["logits"], transB=1))
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", cfg.num_labels])
    graph = helper.make_graph(nodes, "bilstm_student", inputs, [out], inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    proto.ir_version = 8
    onnx.checker.check_model(proto)
    return proto


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
    model_dir: str,
    out: str,
    *,
    fmt: str = "onnx",
    quantize: bool = False,
    overwrite: bool = False,
    allow_pickle: bool = False,
) -> dict:
    """Write ``out/model.onnx``, what feeds it and ``export.json``; returns ``export.json``."""
    if fmt != "onnx":
        raise ValueError(f"unknown export format {fmt!r}; onnx is the one there is")
    src, dst = os.path.realpath(model_dir), os.path.realpath(out)
    if dst == src or dst.startswith(src + os.sep) or src.startswith(dst + os.sep):
        raise ValueError(
            f"--out {out!r} is the model folder {model_dir!r} or holds it (or sits inside it): "
            "--overwrite would delete the model being exported; choose another folder"
        )
    if os.path.exists(os.path.join(model_dir, EXPORT_FILE)):
        raise ValueError(f"{model_dir!r} is already an export")
    adapter, meta = load_trained(model_dir, allow_pickle=allow_pickle)
    if os.path.exists(out) and os.listdir(out) and not overwrite:
        raise ValueError(f"{out!r} is not empty (pass --overwrite to replace it)")
    return _publish(
        out, overwrite, lambda folder: _write(adapter, meta, model_dir, folder, quantize)
    )


def _publish(out: str, overwrite: bool, write) -> dict:
    """``write(folder)`` into a new folder beside ``out``, then that folder swapped in whole: a
    refused graph, an error or a kill leaves ``out`` as it was (what a kill leaves beside it,
    ``<out>.exporting-*``, the next export into ``out`` removes). Where no folder can be made
    beside ``out`` (a mount point, a parent it cannot write), ``write`` runs in ``out`` itself
    and a failure leaves it empty."""
    out = os.path.realpath(out)  # a link's target is replaced, not the link; no trailing slash
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    if os.path.ismount(out) or not os.access(parent, os.W_OK):
        logger.warning("%s: no folder can be made beside it; the export is written in place", out)
        os.makedirs(out, exist_ok=True)
        lock = hold_lock(out, f"--out {out!r}")  # a folder's descriptor takes a flock too
        try:
            _empty(out)
            return write(out)
        except BaseException:
            _empty(out)
            raise
        finally:
            os.close(lock)
    # a second export into ``out`` waits for nothing: it stops, and cannot sweep the staging
    # folder of the one that holds the lock
    lock = hold_lock(f"{out}.lock", f"--out {out!r}")
    try:
        return _swap_in(out, overwrite, write)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(f"{out}.lock")
        os.close(lock)


def _swap_in(out: str, overwrite: bool, write) -> dict:
    recover_swap(out, ".exporting-*")  # a kill between the two renames of a swap
    for stale in glob.glob(glob.escape(out) + ".exporting-*"):
        shutil.rmtree(stale, ignore_errors=True)
    staged = f"{out}.exporting-{uuid.uuid4().hex[:12]}"
    try:
        os.mkdir(staged)
        info = write(staged)
        if not overwrite and os.path.exists(out) and os.listdir(out):
            raise ValueError(f"{out!r} was filled while the export ran; nothing was replaced")
        old = replace_folder(staged, out)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    discard(old)
    return info


def _empty(folder: str) -> None:
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.remove(path)


def _write(adapter, meta: dict, model_dir: str, out: str, quantize: bool) -> dict:
    """The export's files, into the empty folder ``out``; returns ``export.json``."""
    onnx_path = os.path.join(out, "model.onnx")
    texts = probe_texts()
    pairs = isinstance(adapter, BiLSTMAdapter) and adapter.model.cfg.pairs
    enc = adapter.encode(texts, texts[::-1] if pairs else None)
    idx = np.arange(len(texts))
    if isinstance(adapter, BiLSTMAdapter):
        module = None
        names = ["ids", "lengths"] + (["ids_b", "lengths_b"] if pairs else [])
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
    inputs = adapter.onnx_feed(enc, idx)
    with torch.inference_mode():
        expected = adapter.forward(enc, idx).float().numpy()
    if module is None:  # the BiLSTM: its graph is written directly
        import onnx

        onnx.save(bilstm_graph(adapter.model, pairs), onnx_path)
    else:
        with warnings.catch_warnings():  # tracer notes on shapes: the export is checked below
            warnings.simplefilter("ignore")
            _export(module, inputs, names, axes, onnx_path)
    spread = max(float(expected.max() - expected.min()), 1.0)  # of the logits on probe_texts()
    fp32_diff, _ = _diffs(onnx_path, inputs, expected)
    _refuse_if_off("fp32 graph's largest", fp32_diff, FP32_TOLERANCE * spread)
    if quantize:
        tmp = onnx_path + ".fp32"
        os.replace(onnx_path, tmp)
        quantize_int8(tmp, onnx_path)
        os.remove(tmp)
        int8_diff, int8_mean = _diffs(onnx_path, inputs, expected)
        _refuse_if_off("int8 graph's mean", int8_mean, QUANTIZED_TOLERANCE * spread)
    info = {
        "format": "onnx",
        "opset": OPSET,
        "kind": adapter.kind,
        "task": meta.get("task"),
        "label_names": label_names(adapter, meta),
        "pairs": bool(pairs) or "token_type_ids" in names,
        "inputs": names,
        "tokenizer": tokenizer,
        "quantized": quantize,
        "parameters": adapter.num_parameters(),  # of the trained model
        "contract": contract(adapter, names, tokenizer, label_names(adapter, meta)),
        "source": os.path.abspath(model_dir),
        "max_abs_diff_vs_torch": fp32_diff,  # the fp32 graph, on probe_texts()
    }
    if quantize:
        info["max_abs_diff_quantized_vs_torch"] = int8_diff
        info["mean_abs_diff_quantized_vs_torch"] = int8_mean
    with open(os.path.join(out, EXPORT_FILE), "w") as f:
        json.dump(info, f, indent=2)
    apply_umask(out)
    return info


def quantize_int8(src: str, dst: str) -> None:
    """Dynamic int8 weights (ONNX Runtime's ``quantize_dynamic``), each LSTM node first given
    its own copy of ``W`` and ``R``. ORT's LSTM quantizer reuses the int8 weight it made for
    an earlier node that shares it, then transposes it a second time
    (``onnxruntime/quantization/operators/lstm.py``): the siamese student's second encoder got
    scrambled weights and the int8 MRPC student's logits were off by 4.2."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    proto = onnx.load(src)
    graph, seen, copied = proto.graph, set(), False
    inits = {i.name: i for i in graph.initializer}
    for k, node in enumerate(n for n in graph.node if n.op_type == "LSTM"):
        for j in (1, 2):  # W, R
            name = node.input[j]
            if name in seen and name in inits:
                copy = onnx.TensorProto()
                copy.CopyFrom(inits[name])
                copy.name = f"{name}_lstm{k}"
                graph.initializer.append(copy)
                node.input[j] = copy.name
                copied = True
            seen.add(name)
    if copied:
        onnx.save(proto, src)
    quantize_dynamic(src, dst, weight_type=QuantType.QInt8)


def contract(adapter, inputs: list[str], tokenizer: dict, labels: list[str] | None) -> dict:
    """What a client needs to feed the graph without this repository: how text becomes ids,
    the inputs and the output, by name, dtype and shape (README: *Serving without this repo*)."""
    width = len(labels) if labels else 1
    what = f"raw logits in the order {labels}" if labels else "the score (regression)"
    out = [{"name": "logits", "dtype": "float32", "shape": ["batch", width], "is": what}]
    if tokenizer["kind"] == "spacy-words":
        from distill.vocab import PAD, SPECIALS, UNK

        mask, index = tokenizer["mask_token"], adapter.vocab.index
        pad, unk, mask_id = index[PAD], index[UNK], index[mask]
        steps = [
            f"put one space before and after every occurrence of {mask!r} in the text",
            f"split with spaCy's tokenizer for English (spacy.blank('en'), spaCy "
            f"{tokenizer['spacy_version']}) with {mask!r} added as a special case "
            "(tokenizer.add_special_case(mask, [{ORTH: mask}])): one token",
            "drop the tokens that are whitespace only (token.is_space)",
            (f"lowercase every token (token.lower_) except {mask!r}, compared before lowercasing"
             if tokenizer["lowercase"] else "keep every token's case"),
            f"a token's id is {SPECIALS} + its index in vocab.json's \"words\"; [PAD] is {pad}, "
            f"[UNK] {unk}, {mask!r} {mask_id}; a token not in the list is {unk}",
            "a text with no tokens left is one [UNK] (length 1)",
        ]  # fmt: skip
        padded = f"token ids, each row padded with {pad} at its end"
        rows = [("ids", "int64", ["batch", "seq"], padded),
                ("lengths", "int64", ["batch"], "tokens in each row (>= 1)")]  # fmt: skip
        if "ids_b" in inputs:
            rows += [("ids_b", "int64", ["batch", "seq_b"], "the second text's ids, as ids"),
                     ("lengths_b", "int64", ["batch"], "the second text's lengths")]  # fmt: skip
        return {
            "tokenize": steps,
            "vocabulary": {
                "file": "vocab.json",
                "key": "words",
                "first_id": SPECIALS,
                "pad_id": pad,
                "unk_id": unk,
                "mask_id": mask_id,
            },  # fmt: skip
            "inputs": [{"name": n, "dtype": d, "shape": s, "is": w} for n, d, s, w in rows],
            "outputs": out,
        }
    steps = [
        "tokenize with the Hugging Face tokenizer saved here (tokenizer.json: the `tokenizers` "
        f"library's Tokenizer.from_file), truncated to {tokenizer['max_length']} tokens, "
        "special tokens added; a pair is encoded as one input",
    ]
    whats = {"input_ids": "token ids, padded with the tokenizer's pad id",
             "attention_mask": "1 for real tokens, 0 for padding",
             "token_type_ids": "0 for the first text, 1 for the second"}  # fmt: skip
    inputs_ = [
        {"name": n, "dtype": "int64", "shape": ["batch", "seq"], "is": whats[n]} for n in inputs
    ]
    return {"tokenize": steps, "inputs": inputs_, "outputs": out}


def label_names(adapter, meta: dict) -> list[str] | None:
    """The student's label names; a plain classifier checkpoint's from its ``id2label``."""
    names = meta.get("label_names")
    config = getattr(getattr(adapter, "model", None), "config", None)
    if names is None and config is not None and config.num_labels > 1:
        names = [config.id2label[i] for i in range(config.num_labels)]
    return names


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


def _session(path: str, threads: int | None = None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def _refuse_if_off(what: str, diff: float, bound: float) -> None:
    if diff <= bound:  # NaN is refused too
        return
    hint = "export without --quantize" if what.startswith("int8") else "a bug in the export"
    raise RuntimeError(
        f"the {what} difference from the trained model's logits on the probe texts is "
        f"{diff:.3g}, over the bound {bound:.3g}: nothing was written; {hint}"
    )


def _diffs(onnx_path: str, inputs: dict, expected: np.ndarray) -> tuple[float, float]:
    """The graph's largest and mean absolute difference from ``expected``."""
    diff = np.abs(_session(onnx_path).run(["logits"], inputs)[0] - expected)
    return float(diff.max()), float(diff.mean())


class OnnxAdapter:
    """An exported student behind the same interface as the torch adapters."""

    def __init__(self, path: str, threads: int | None = None):
        self.path = path
        with open(os.path.join(path, EXPORT_FILE)) as f:
            self.info = json.load(f)
        self.kind = self.info["kind"]
        self.session = _session(os.path.join(path, "model.onnx"), threads)
        self.input_names = [i.name for i in self.session.get_inputs()]
        # the torch adapter without its model: the same encoding and lengths as in training
        if self.kind == "bilstm":
            from distill.vocab import StudentVocab

            with open(os.path.join(path, "vocab.json")) as f:
                self.torch_like = BiLSTMAdapter(None, StudentVocab.from_json(f.read()))
            # ONNX Runtime runs the LSTM over padded steps: small length-sorted batches pad
            # least (32 measured best on SST-2 dev: 16 and 64 within 2%, 128 12% slower)
            self.eval_batch_size, self.eval_max_tokens = 32, None
        else:
            from distill.checkpoints import load_tokenizer

            tokenizer = load_tokenizer(path, role="export")
            max_length = self.info["tokenizer"]["max_length"]
            self.torch_like = TransformerAdapter(None, tokenizer, max_length)
            self.eval_batch_size = TransformerAdapter.eval_batch_size
            self.eval_max_tokens = TransformerAdapter.eval_max_tokens

    def encode(self, texts_a, texts_b=None) -> dict:
        return self.torch_like.encode(texts_a, texts_b)

    def lengths(self, enc) -> np.ndarray:
        return self.torch_like.lengths(enc)

    def forward(self, enc, idx) -> torch.Tensor:
        feed = {k: v for k, v in self.onnx_feed(enc, idx).items() if k in self.input_names}
        return torch.from_numpy(self.session.run(["logits"], feed)[0])

    def onnx_feed(self, enc, idx) -> dict:
        return self.torch_like.onnx_feed(enc, idx)

    def eval(self) -> None:
        pass  # an ONNX graph has no training mode

    def num_parameters(self) -> int:
        return int(self.info["parameters"])

    def quantized(self) -> OnnxAdapter:
        raise ValueError(
            f"{self.path!r} is an ONNX export: quantize it with `transferset export --quantize`"
        )
