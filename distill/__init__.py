"""Students and their training, offline from a transfer set's cached logits (no Beam).

``from distill import Student`` serves a trained or exported student (``distill.api``).
"""

__all__ = ["Prediction", "Student"]


def __getattr__(name: str):
    if name in __all__:  # lazily: importing distill.vocab etc. should not load torch
        from distill import api

        return getattr(api, name)
    raise AttributeError(f"module 'distill' has no attribute {name!r}")
