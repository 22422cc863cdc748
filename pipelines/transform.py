"""``BuildTransferSet``: the whole build as one ``PTransform`` inside a user's own pipeline.

    with beam.Pipeline() as p:
        (p | beam.Create(examples)
           | BuildTransferSet(BuildOptions(task="sst2", out="kd", n_iter=2)))
    datasets.load_from_disk("kd")

Examples are dicts or ``beam.Row``s with ``text_a``, ``text_b`` (pair tasks), ``label`` (a
label name or index, a float for regression; absent or ``None``: unlabelled) and ``id``
(optional: without one, a hash of the texts and label). Anything else is a dead letter with
its reason. The stages are the file build's (``graph.stages``); the set is staged beside
``out`` and put in place by the pipeline's last step, whole, as ``build_transfer_set`` does.
"""

from __future__ import annotations

import typing

import apache_beam as beam

from pipelines import outdir
from pipelines.finish import FinishTransferSet
from pipelines.graph import stages
from pipelines.options import BuildOptions, plan
from pipelines.read_stage import FromElements


@beam.typehints.with_input_types(typing.Any)
@beam.typehints.with_output_types(dict[str, typing.Any])
class BuildTransferSet(beam.PTransform):
    """A ``PCollection`` of examples -> a transfer set at ``options.out``; returns a
    ``PCollection`` with one element, the set's manifest (a dict), once it is in place.

    The options are checked (``plan``) when the transform is applied, so a bad setting fails
    while the pipeline is built, before it runs."""

    def __init__(self, options: BuildOptions):
        super().__init__()
        self.options = options

    def expand(self, examples):
        the_plan = plan(self.options, elements=True)
        # the staging folder is made now, beside ``out``; on a local disk its lock is this
        # process's until it exits, so a build that starts meanwhile leaves it alone, and the
        # first build after this process is gone removes what a failed run left. It is never
        # removed at exit: a runner that returns before the job ends (Dataflow) still needs it
        staging = outdir.Staging(the_plan.out, the_plan.out_state, the_plan.overwrite)
        staging.__enter__()
        read = examples | "FromElements" >> FromElements(
            the_plan.spec, staging.work, the_plan.id_buckets, the_plan.scale,
            the_plan.augment.max_chars,
        )  # fmt: skip
        produced = stages(read, the_plan, staging.path, staging.work)
        return produced | "FinishTransferSet" >> FinishTransferSet(
            the_plan, staging.path, staging.committer()
        )
