"""The small CLIR collections shipped in the package (built by ``scripts/build_mini_collections.py``).

* ``clirkd-mini/debian-faq`` and ``/{ja,ko,ru}``: translated Debian FAQ question titles (116 ja, 110 ko,
  105 ru) -> the 148 English FAQ sections (``doc_id`` = the section's anchor, ``title``, ``text``).
* ``clirkd-mini/countries`` and ``/{ar,bn,fi,ja,ko,ru,te}``: CLDR territory names (209 a language) ->
  their WordNet 3.0 noun synset (``title``: its English lemmas, ``text``: its gloss), among 20,209 synsets.

Queries: ``query_id`` ("{lang}-{anchor or territory code}"), ``query`` (native), ``lang``, ``query_en``
(the English title or name they translate; for ``MTQueryRewriter.from_table``). One relevant document
each. The collection without a language suffix holds every language's queries. Everything is read from
the package, offline.

Example::

    ds = pt.get_dataset("irds:clirkd-mini/debian-faq/ja")
    pt.Experiment([pipeline], ds.get_topics(), ds.get_qrels(), [pt.measures.RR@10])
"""
from __future__ import annotations

import functools
from typing import Iterator

from ir_datasets import Dataset
from ir_datasets.datasets.base import FilteredQrels
from ir_datasets.formats import TrecQrels

from . import common
from .common import DataFile, JsonlDocs, ListQueries, ParallelQuery

PREFIX = "clirkd-mini"
COLLECTIONS = {
    "debian-faq": ("ja", "ko", "ru"),
    "countries": ("ar", "bn", "fi", "ja", "ko", "ru", "te"),
}
DOCUMENTATION = {
    "debian-faq": common.Documentation(
        pretty_name="Debian FAQ (clirkd-mini)",
        desc="Translated Debian FAQ question titles as queries over the English FAQ sections (Debian packages "
             "debian-faq, -ja, -ko, -ru; permission notice in the package data)."),
    "countries": common.Documentation(
        pretty_name="CLDR territories -> WordNet (clirkd-mini)",
        desc="CLDR territory names (babel) as known-item queries over WordNet 3.0 noun synsets "
             "(lemmas and gloss); licences in the package data."),
}


def read_queries(source: DataFile) -> Iterator[ParallelQuery]:
    for row in common.read_jsonl(source):
        yield ParallelQuery(row["query_id"], row["query"], row["lang"], row["query_en"])


def _query_ids(queries: ListQueries) -> set:
    return {q.query_id for q in queries.queries_iter()}


def register() -> None:
    for name, langs in COLLECTIONS.items():
        base = f"{PREFIX}/{name}"
        docs = JsonlDocs(DataFile(f"{name}.docs.jsonl.gz", packaged=f"{name}.docs.jsonl.gz"), base)
        read = functools.partial(read_queries, DataFile(f"{name}.queries.jsonl", packaged=f"{name}.queries.jsonl"))
        qrels = TrecQrels(DataFile(f"{name}.qrels.txt", packaged=f"{name}.qrels.txt"), {1: "the relevant document"})
        common.register(base, Dataset(docs, ListQueries(read, ParallelQuery, base), qrels, DOCUMENTATION[name]))
        for lang in langs:
            queries = ListQueries(read, ParallelQuery, base, lang=lang)
            lang_qrels = FilteredQrels(qrels, functools.partial(_query_ids, queries))
            common.register(f"{base}/{lang}", Dataset(docs, queries, lang_qrels, DOCUMENTATION[name]))
