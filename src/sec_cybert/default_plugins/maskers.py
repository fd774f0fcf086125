"""Built-in maskers: ``token`` (BERT/RoBERTa 80/10/10) and ``whole-word``."""

from sec_cybert.datapath.masking import TokenMasker, WholeWordMasker
from sec_cybert.plugins.hookspecs import hookimpl


@hookimpl
def register_maskers(register):
    register("token", TokenMasker)
    register("whole-word", WholeWordMasker)
