"""Tang et al. (2019) augmentation as pure, deterministic ops (no Beam, no torch).

>>> from augment import AugmentConfig, PosVocabulary, TaggedSentence, augment_example
"""

from augment.config import AugmentConfig
from augment.ops import mask, ngram, pos_replace
from augment.recipe import augment_batch, augment_example
from augment.seeding import source_rng, stable_hash64
from augment.tagger import load_tagger, tag_texts, word_tokenizer
from augment.types import Sample, TaggedSentence
from augment.vocab import PosVocabulary

__all__ = [
    "AugmentConfig",
    "PosVocabulary",
    "Sample",
    "TaggedSentence",
    "augment_batch",
    "augment_example",
    "load_tagger",
    "mask",
    "ngram",
    "pos_replace",
    "source_rng",
    "stable_hash64",
    "tag_texts",
    "word_tokenizer",
]
