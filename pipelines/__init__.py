"""Everything Beam: the build as a typed call and as transforms to compose.

``from pipelines import BuildOptions, build_transfer_set`` runs a whole build from files;
``BuildTransferSet`` is the same build as a ``PTransform`` over a ``PCollection`` of examples
in your own pipeline; ``TeacherModelHandler`` is the teacher step alone, for
``RunInference``. Imported lazily, so that ``import pipelines.preflight`` (the CLI's) loads no
Beam.
"""

__all__ = [
    "BuildOptions",
    "BuildResult",
    "BuildTransferSet",
    "Manifest",
    "TeacherModelHandler",
    "build_transfer_set",
]
_WHERE = {
    "BuildOptions": "pipelines.options",
    "BuildResult": "pipelines.build",
    "build_transfer_set": "pipelines.build",
    "BuildTransferSet": "pipelines.transform",
    "Manifest": "pipelines.transfer_set",
    "TeacherModelHandler": "pipelines.teacher_stage",
}


def __getattr__(name: str):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'pipelines' has no attribute {name!r}")
