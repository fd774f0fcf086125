"""The hooks sec_cybert calls to learn what this package adds (the entry point names this module)."""

from sec_cybert import hookimpl

from sec_cybert_freeze.profile import CIRunnerProfile
from sec_cybert_freeze.stage import FreezeEmbeddingsStage
from sec_cybert_freeze.tracker import JsonlTracker


@hookimpl
def register_stages(register):
    register("freeze-embeddings", FreezeEmbeddingsStage)  # the class, never an instance


@hookimpl
def register_hardware_profiles(register):
    register("ci-runner", CIRunnerProfile)  # called with no arguments


@hookimpl
def register_trackers(register):
    register("jsonl", JsonlTracker)
