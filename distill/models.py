"""Students: Tang et al.'s BiLSTM (single and siamese) and a DistilBERT-style transformer."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


@dataclass
class BiLSTMConfig:
    vocab_size: int
    num_labels: int
    embed_dim: int = 300  # Tang: 300-d word vectors; 50 when initialised from GloVe 6B 50d
    hidden: int = 150  # one BiLSTM layer, 150 per direction
    fc: int = 200  # ReLU layer before the logits
    two_channels: bool = False  # a static and a trainable embedding, concatenated
    pairs: bool = False  # siamese: [h1, h2, h1*h2, |h1-h2|]
    pooling: str = "last"  # last: the final fwd / bwd states (Tang); max: max over the tokens
    dropout: float = 0.0
    frozen_words: int = 0  # the vocabulary's last rows keep their initial vectors (not trained)


class BiLSTMEncoder(nn.Module):
    def __init__(self, cfg: BiLSTMConfig, vectors: torch.Tensor | None = None):
        super().__init__()
        trained = cfg.vocab_size - cfg.frozen_words
        self.embed = nn.Embedding(trained, cfg.embed_dim, padding_idx=0)
        # frozen rows apart, so the optimiser never touches them (dense updates of a large
        # table cost more than the LSTM); they get no gradient either way
        self.frozen = None
        if cfg.frozen_words:
            self.frozen = nn.Parameter(
                torch.zeros(cfg.frozen_words, cfg.embed_dim), requires_grad=False
            )
        if vectors is not None:
            self.embed.weight.data.copy_(vectors[:trained])
            if self.frozen is not None:
                self.frozen.data.copy_(vectors[trained:])
        self.static = None
        if cfg.two_channels:
            self.static = nn.Embedding(cfg.vocab_size, cfg.embed_dim, padding_idx=0)
            self.static.weight.data.copy_(self.table())
            self.static.weight.requires_grad_(False)
        width = cfg.embed_dim * (2 if cfg.two_channels else 1)
        self.lstm = nn.LSTM(width, cfg.hidden, batch_first=True, bidirectional=True)
        self.drop = nn.Dropout(cfg.dropout)
        self.pooling = cfg.pooling

    def table(self) -> torch.Tensor:
        """The whole embedding table, trained rows then frozen ones."""
        if self.frozen is None:
            return self.embed.weight
        return torch.cat([self.embed.weight, self.frozen])

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        if self.frozen is None:
            return self.embed(ids)
        trained = self.embed.num_embeddings
        known = ids < trained
        x = self.embed(ids.masked_fill(~known, 0))
        extra = nn.functional.embedding((ids - trained).clamp(min=0), self.frozen)
        return torch.where(known.unsqueeze(-1), x, extra)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.lookup(ids)  # (batch, seq, embed)
        if self.static is not None:
            x = torch.cat([x, self.static(ids)], dim=-1)  # (batch, seq, 2 * embed)
        packed = pack_padded_sequence(
            self.drop(x), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        out, (h, _) = self.lstm(packed)  # h: (2, batch, hidden)
        if self.pooling == "max":  # each feature's largest value over the row's own tokens
            y, lens = pad_packed_sequence(out, batch_first=True)  # rows back in input order
            pad = torch.arange(y.shape[1])[None, :] >= lens[:, None]
            y = y.masked_fill(pad.to(y.device).unsqueeze(-1), float("-inf"))
            return y.max(dim=1).values  # (batch, 2 * hidden)
        return torch.cat([h[0], h[1]], dim=-1)  # (batch, 2 * hidden) final fwd / bwd states


class BiLSTMStudent(nn.Module):
    """Embeddings -> BiLSTM -> [fwd; bwd] final states (or their max over the tokens) ->
    ReLU(fc) -> logits."""

    def __init__(self, cfg: BiLSTMConfig, vectors: torch.Tensor | None = None):
        super().__init__()
        self.cfg = cfg
        self.encoder = BiLSTMEncoder(cfg, vectors)
        features = 2 * cfg.hidden * (4 if cfg.pairs else 1)
        self.head = nn.Sequential(
            nn.Linear(features, cfg.fc),
            nn.ReLU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.fc, cfg.num_labels),
        )

    def forward(self, ids, lengths, ids_b=None, lengths_b=None) -> torch.Tensor:
        h1 = self.encoder(ids, lengths)  # (batch, 2H)
        if self.cfg.pairs:
            h2 = self.encoder(ids_b, lengths_b)  # the same encoder for both sentences
            h1 = torch.cat([h1, h2, h1 * h2, (h1 - h2).abs()], dim=-1)  # (batch, 8H)
        return self.head(h1)  # (batch, num_labels)


def teacher_layer_map(teacher_layers: int, student_layers: int) -> list[int]:
    """DistilBERT's choice, spread from the first teacher layer to the last: 12 -> 6 gives
    [0, 2, 4, 7, 9, 11] (the layers DistilBERT kept), 6 -> 3 gives [0, 3, 5]."""
    if not 1 <= student_layers <= teacher_layers:
        raise ValueError(f"student layers must be in 1..{teacher_layers}, got {student_layers}")
    if student_layers == 1:
        return [0]
    step = (teacher_layers - 1) / (student_layers - 1)
    return [int(j * step + 0.5) for j in range(student_layers)]


def parse_layer_map(text: str, teacher_layers: int) -> list[int]:
    """``"0,2,4"`` -> ``[0, 2, 4]``: distinct teacher layers, in increasing order."""
    try:
        layers = [int(x) for x in text.split(",")]
    except ValueError:
        raise ValueError(f"--layer-map: expected teacher layers like 0,2,4, got {text!r}") from None
    if layers != sorted(set(layers)) or not all(0 <= x < teacher_layers for x in layers):
        raise ValueError(
            f"--layer-map {text!r}: distinct increasing layers in 0..{teacher_layers - 1}"
        )
    return layers


def transformer_student(
    teacher_path: str,
    layers: int = 3,
    *,
    layer_map: str | None = None,
    allow_pickle: bool = False,
):
    """A ``layers``-deep copy of the teacher: its embeddings, pooler and classifier, and the
    encoder layers ``layer_map`` names (default: ``teacher_layer_map``, DistilBERT's choice).
    Returns (model, tokenizer, layer map)."""
    import copy

    from transformers import AutoModelForSequenceClassification

    from distill.checkpoints import load_classifier, load_tokenizer

    tokenizer = load_tokenizer(teacher_path, role="teacher")
    teacher = load_classifier(teacher_path, allow_pickle=allow_pickle, role="teacher")
    cfg = copy.deepcopy(teacher.config)
    if layer_map:
        mapping = parse_layer_map(layer_map, cfg.num_hidden_layers)
    else:
        mapping = teacher_layer_map(cfg.num_hidden_layers, layers)
    cfg.num_hidden_layers = len(mapping)
    student = AutoModelForSequenceClassification.from_config(cfg)
    state = teacher.state_dict()
    base = teacher.base_model_prefix  # "bert", "roberta", "distilbert", ...
    renamed = {}
    for key, value in state.items():
        marker = f"{base}.encoder.layer."
        if key.startswith(marker):
            teacher_layer, _, rest = key[len(marker) :].partition(".")
            if int(teacher_layer) in mapping:
                renamed[f"{marker}{mapping.index(int(teacher_layer))}.{rest}"] = value
        else:
            renamed[key] = value
    missing, unexpected = student.load_state_dict(renamed, strict=False)
    if unexpected or [m for m in missing if "position_ids" not in m]:
        raise ValueError(
            f"could not map the teacher onto the student: missing {missing}, "
            f"unexpected {unexpected} (architecture {type(teacher).__name__})"
        )
    return student, tokenizer, mapping
