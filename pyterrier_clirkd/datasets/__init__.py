"""Datasets for ir_datasets and PyTerrier: XOR-TyDi, MKQA and the small bundled CLIR collections.

Importing this package registers their names with ir_datasets (no file is read until a dataset is used):
``xor-tydi``, ``xor-tydi/{train,dev,test}[/{lang}]``, ``mkqa[/{lang}]``,
``clirkd-mini/debian-faq[/{ja,ko,ru}]`` and ``clirkd-mini/countries[/{ar,bn,fi,ja,ko,ru,te}]``.

Example::

    import pyterrier as pt, pyterrier_clirkd as clirkd
    topics = pt.get_dataset("irds:xor-tydi/dev/ja").get_topics()
"""
from . import mini, mkqa, xor_tydi
from .common import PassageDoc, ParallelQuery, QAQuery, answers
from .xor_tydi import xor_tydi_translations

xor_tydi.register()
mkqa.register()
mini.register()

__all__ = ["answers", "xor_tydi_translations", "QAQuery", "ParallelQuery", "PassageDoc"]
