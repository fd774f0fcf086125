"""Built-in maskers: ``token`` (BERT/RoBERTa 80/10/10) and ``whole-word``."""

from sec_cybert.hookspecs import hookimpl
from sec_cybert.masking import TokenMasker, WholeWordMasker


@hookimpl
def register_maskers(register):
    register("token", TokenMasker)
    register("whole-word", WholeWordMasker)
