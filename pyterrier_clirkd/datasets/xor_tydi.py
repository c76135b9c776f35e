"""XOR-TyDi (XOR-Retrieve) for ir_datasets: ``xor-tydi`` (English passages), ``xor-tydi/{train,dev,test}``
and ``xor-tydi/{split}/{lang}``.

Questions carry ``query_id, query, lang, answers, query_en`` (the English human translation of XOR QA
where one exists for the exact question text, else ""). Where each file comes from (see ``DataFile``):

1. ``$CLIRKD_XOR_TYDI_DIR/<official name>`` if that variable names a folder holding the file;
2. the package's own copy: dev and train questions and the translations (CC BY-SA 4.0, see
   ``data/README.md``), so ``pt.get_dataset("irds:xor-tydi/dev").get_topics()`` works offline;
3. only while that variable is unset, a download from the official XOR QA site into the ir_datasets
   home: the test questions and the passages (``enwiki_20190201_w100.tsv``, 18M passages, 13 GB; its
   docstore is built on first use).

Example::

    import pyterrier as pt, pyterrier_clirkd as clirkd
    dev = pt.get_dataset("irds:xor-tydi/dev")
    topics = dev.get_topics()               # qid, query, lang, answers, query_en
    answers = clirkd.answers(dev)           # qid, answers, lang
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Iterator, Optional

import pandas as pd
from ir_datasets import Dataset

from . import common
from .common import DataFile, ListQueries, PassageTsvDocs, QAQuery

NAME = "xor-tydi"
LANGS = ("ar", "bn", "fi", "ja", "ko", "ru", "te")
ENV_DIR = "CLIRKD_XOR_TYDI_DIR"
URL = "https://nlp.cs.washington.edu/xorqa/XORQA_site/data/"
SPLITS = {
    "train": "xor_train_retrieve_eng_span.jsonl",
    "dev": "xor_dev_retrieve_eng_span_v1_1.jsonl",
    "test": "xor_test_retrieve_eng_span_q_only_v1_1.jsonl",
}
CORPUS = "enwiki_20190201_w100.tsv"
DOCUMENTATION = common.Documentation(
    pretty_name="XOR-TyDi (XOR-Retrieve)",
    desc="Questions in 7 languages whose answers are in English Wikipedia passages (2019-02-01, 100 words).",
    bibtex="@inproceedings{xorqa, title={{XOR QA}: Cross-lingual Open-Retrieval Question Answering}, "
           "author={Asai, Akari and Kasai, Jungo and Clark, Jonathan H. and Lee, Kenton and Choi, Eunsol "
           "and Hajishirzi, Hannaneh}, booktitle={NAACL}, year={2021}}",
)


def xor_file(relpath: str, url: Optional[str] = None) -> DataFile:
    """An XOR-TyDi file by its official path (``translations/ja-en/ja.txt``, ...)."""
    packaged = "xor-tydi." + relpath.replace("/", ".") + ".gz"
    return DataFile(relpath, env_dir=ENV_DIR, packaged=packaged, url=url, cache=f"{NAME}/{relpath}")


@functools.lru_cache(maxsize=None)
def _read_pairs(source: Path, english: Path) -> tuple:
    return tuple(common.read_line_pairs(source, english))


def _pairs(lang: str) -> tuple:
    if lang not in LANGS:
        raise ValueError(f"XOR-TyDi has no translations for {lang!r}; its languages are {LANGS}")
    return _read_pairs(xor_file(f"translations/{lang}-en/{lang}.txt").path(),
                       xor_file(f"translations/{lang}-en/en.txt").path())


def xor_tydi_translations(lang: str) -> pd.DataFrame:
    """The XOR QA human question translations into English for one language: ``lang, query, query_en``,
    one row per line pair (about 4,700 a language; parallel questions for IR-score KD).

    Example::

        pairs = xor_tydi_translations("ja")      # query: a Japanese question, query_en: its translation
    """
    return pd.DataFrame([(lang, s, e) for s, e in _pairs(lang)], columns=["lang", "query", "query_en"])


def english_translation(lang: str) -> dict:
    """{question text: English human translation} for one language ({} for a language without any);
    a question text translated twice keeps its first translation."""
    table = {}
    for text, text_en in (_pairs(lang) if lang in LANGS else ()):
        table.setdefault(text, text_en)
    return table


def read_questions(split: str) -> Iterator[QAQuery]:
    """The questions of one split, in file order, with the train file's ``" ar"`` read as ``"ar"``."""
    tables = {}
    for row in common.read_jsonl(xor_file(SPLITS[split], url=URL + SPLITS[split])):
        lang = row["lang"].strip()
        if lang not in tables:
            tables[lang] = english_translation(lang)
        yield QAQuery(str(row["id"]), row["question"], lang, tuple(row.get("answers") or ()),
                      tables[lang].get(row["question"], ""))


def corpus() -> PassageTsvDocs:
    return PassageTsvDocs(xor_file(CORPUS, url=URL + "models/" + CORPUS), NAME, f"{NAME}/{CORPUS}")


def register() -> None:
    docs = corpus()
    common.register(NAME, Dataset(docs, DOCUMENTATION))
    for split in SPLITS:
        read = functools.partial(read_questions, split)
        common.register(f"{NAME}/{split}", Dataset(docs, ListQueries(read, QAQuery, NAME), DOCUMENTATION))
        for lang in LANGS:
            queries = ListQueries(read, QAQuery, NAME, lang=lang)
            common.register(f"{NAME}/{split}/{lang}", Dataset(docs, queries, DOCUMENTATION))
