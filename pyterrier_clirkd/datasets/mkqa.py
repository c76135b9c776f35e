"""MKQA for ir_datasets: ``mkqa`` (every language) and ``mkqa/{lang}``, over the XOR-TyDi English passages.

MKQA (Longpre et al., 2021; CC BY-SA 3.0) translates 10,000 Natural Questions queries into 25 languages
and gives language-independent answers. Each query is ``query_id`` ("{example_id}-{lang}", unique across
languages), ``query``, ``lang``, ``answers`` (the English answers' texts and aliases, without the
"unanswerable" and "long_answer" ones, so a question with only those has none and is not scored by
Recall@Nkt) and ``query_en`` (the English query).

The file ``mkqa.jsonl.gz`` is read from ``$CLIRKD_MKQA_FILE`` if set, else downloaded from the official
repository into the ir_datasets home.

Example::

    ds = pt.get_dataset("irds:mkqa/ja")
    pt.Experiment([pipeline], ds.get_topics(), clirkd.answers(ds), [clirkd.measures.R5kt])
"""
from __future__ import annotations

import functools
from typing import Iterator, Optional

from ir_datasets import Dataset

from . import common, xor_tydi
from .common import DataFile, ListQueries, QAQuery

NAME = "mkqa"
LANGS = ("ar", "da", "de", "en", "es", "fi", "fr", "he", "hu", "it", "ja", "km", "ko", "ms", "nl", "no",
         "pl", "pt", "ru", "sv", "th", "tr", "vi", "zh_cn", "zh_hk", "zh_tw")
ENV_FILE = "CLIRKD_MKQA_FILE"
URL = "https://github.com/apple/ml-mkqa/raw/main/dataset/mkqa.jsonl.gz"
UNSCORED_TYPES = ("unanswerable", "long_answer")
DOCUMENTATION = common.Documentation(
    pretty_name="MKQA",
    desc="10,000 Natural Questions queries in 26 languages with English answers, over XOR-TyDi's passages.",
    bibtex="@article{mkqa, title={{MKQA}: A Linguistically Diverse Benchmark for Multilingual Open Domain "
           "Question Answering}, author={Longpre, Shayne and Lu, Yi and Daiber, Joachim}, "
           "journal={TACL}, year={2021}}",
)


def english_answers(record: dict) -> tuple:
    """The texts and aliases of a record's English answers, in order, without duplicates."""
    found = []
    for answer in record["answers"].get("en") or ():
        if answer.get("type") in UNSCORED_TYPES:
            continue
        for text in [answer.get("text"), *(answer.get("aliases") or ())]:
            if text and text not in found:
                found.append(text)
    return tuple(found)


def read_questions(lang: Optional[str] = None) -> Iterator[QAQuery]:
    """MKQA's queries in one language (all languages if None), in file order."""
    source = DataFile("mkqa.jsonl.gz", env_file=ENV_FILE, url=URL, cache="mkqa/mkqa.jsonl.gz")
    for record in common.read_jsonl(source):
        answers = english_answers(record)
        for query_lang in (lang,) if lang else LANGS:
            text = record["queries"].get(query_lang)
            if text:
                yield QAQuery(f"{record['example_id']}-{query_lang}", text, query_lang, answers,
                              record["queries"].get("en") or "")


def register() -> None:
    docs = xor_tydi.corpus()
    common.register(NAME, Dataset(docs, ListQueries(read_questions, QAQuery, NAME), DOCUMENTATION))
    for lang in LANGS:
        queries = ListQueries(functools.partial(read_questions, lang), QAQuery, NAME, lang=lang)
        common.register(f"{NAME}/{lang}", Dataset(docs, queries, DOCUMENTATION))
