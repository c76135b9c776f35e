"""The pieces every clirkd dataset shares: record types, file lookup, document handlers and ``answers()``.

(No ``from __future__ import annotations`` here: PyTerrier reads the record types' field annotations.)
"""
import contextlib
import csv
import gzip
import io
import json
import os
from pathlib import Path
from typing import Callable, Iterator, NamedTuple, Optional, Tuple

import ir_datasets
import pandas as pd
from ir_datasets.formats import BaseDocs, BaseQueries
from ir_datasets.indices import Docstore, PickleLz4FullStore

from ..measures import SKIPPED_ANSWERS

#: the folder of data files shipped inside the package
PACKAGE_DATA = Path(__file__).parent / "data"


class QAQuery(NamedTuple):
    """A question with short answers (XOR-TyDi, MKQA). ``query_en``: its English human translation, or ""."""
    query_id: str
    query: str
    lang: str
    answers: Tuple[str, ...]
    query_en: str

    def default_text(self):
        return self.query


class ParallelQuery(NamedTuple):
    """A query of a bundled collection, with the English original (``query_en``) it was translated from."""
    query_id: str
    query: str
    lang: str
    query_en: str

    def default_text(self):
        return self.query


class PassageDoc(NamedTuple):
    doc_id: str
    title: str
    text: str

    def default_text(self):
        return f"{self.title} {self.text}"


def open_text(path: str | os.PathLike) -> io.TextIOBase:
    """Opens a UTF-8 text file for reading, gunzipping it if its name ends in ``.gz``."""
    if str(path).endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def read_line_pairs(source: str | os.PathLike, english: str | os.PathLike) -> list[tuple[str, str]]:
    """(non-English, English) pairs from two line-aligned text files (plain or ``.gz``), stripped; pairs with a
    blank side are dropped. Files of different lengths are an error.

    Example::

        pairs = read_line_pairs("translations/ja-en/ja.txt", "translations/ja-en/en.txt")
    """
    sides = []
    for path in (source, english):
        with open_text(path) as f:
            text = f.read()
        lines = text.split("\n")
        if text.endswith("\n"):
            lines.pop()
        sides.append([line.strip() for line in lines])
    if len(sides[0]) != len(sides[1]):
        raise ValueError(f"{source} has {len(sides[0])} lines but {english} has {len(sides[1])}: parallel files "
                         f"must be line-aligned")
    return [(s, e) for s, e in zip(*sides) if s and e]


class DataFile:
    """One data file, found in this order: a local folder named by an environment variable (``env_dir``, the
    official file name ``name`` inside it) or a file named by one (``env_file``); the copy shipped in the
    package (``packaged``); a download of ``url`` cached in the ir_datasets home (``cache``), only while the
    environment variable is unset (a user who points at local files gets an error, not a surprise download).

    It serves as an ir_datasets download handle (``path()``, ``stream()``), and looks nothing up before used.
    """

    def __init__(self, name: str, *, env_dir: Optional[str] = None, env_file: Optional[str] = None,
                 packaged: Optional[str] = None, url: Optional[str] = None, cache: Optional[str] = None):
        self.name = name
        self.env_dir = env_dir
        self.env_file = env_file
        self.packaged = packaged
        self.url = url
        self.cache = cache

    def __repr__(self):
        return f"DataFile({self.name!r})"

    def local_path(self) -> Optional[Path]:
        """The first local copy that exists, or None."""
        candidates = []
        if self.env_file and os.environ.get(self.env_file):
            candidates.append(Path(os.environ[self.env_file]))
        if self.env_dir and os.environ.get(self.env_dir):
            candidates.append(Path(os.environ[self.env_dir]) / self.name)
        if self.packaged:
            candidates.append(PACKAGE_DATA / self.packaged)
        return next((p for p in candidates if p.is_file()), None)

    def path(self, force: bool = True) -> Path:
        local = self.local_path()
        if local is not None:
            return local
        variables = [v for v in (self.env_dir, self.env_file) if v]
        chosen = [f"${v}={os.environ[v]}" for v in variables if os.environ.get(v)]
        if chosen:
            raise FileNotFoundError(f"{self.name} not found by {' and '.join(chosen)}"
                                    + (f" (unset it to download {self.url})" if self.url else ""))
        if self.url is None:
            raise FileNotFoundError(f"{self.name} not found: point {' or '.join('$' + v for v in variables)} at it")
        target = ir_datasets.util.home_path() / "clirkd" / self.cache
        if force and not target.exists():
            download = ir_datasets.util.Download([ir_datasets.util.RequestsDownload(self.url)], cache_path=str(target))
            download.path()
        return target

    @contextlib.contextmanager
    def stream(self):
        with open(self.path(), "rb") as f:
            yield f

    def open_text(self) -> io.TextIOBase:
        return open_text(self.path())


def read_jsonl(source: DataFile) -> Iterator[dict]:
    with source.open_text() as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


class MemoryDocstore(Docstore):
    """All documents of a small collection in a dict, loaded on first use."""

    def __init__(self, docs_iter: Callable[[], Iterator[PassageDoc]]):
        super().__init__(PassageDoc, "doc_id")
        self._docs_iter = docs_iter
        self._docs: Optional[dict] = None

    def docs(self) -> dict:
        if self._docs is None:
            self._docs = {doc.doc_id: doc for doc in self._docs_iter()}
        return self._docs

    def get_many_iter(self, doc_ids):
        docs = self.docs()
        return (docs[d] for d in doc_ids if d in docs)

    def built(self) -> bool:
        return True

    def count(self) -> int:
        return len(self.docs())

    def __iter__(self):
        return iter(self.docs().values())


class PassageDocs(BaseDocs):
    """The docs of an English passage collection (:class:`PassageDoc` records) read from ``source``."""

    def __init__(self, source: DataFile, namespace: str):
        self._source = source
        self._namespace = namespace

    def docs_cls(self):
        return PassageDoc

    def docs_namespace(self):
        return self._namespace

    def docs_lang(self):
        return "en"


class JsonlDocs(PassageDocs):
    """A small English collection shipped as JSON lines (``doc_id, title, text``), kept in memory."""

    def __init__(self, source: DataFile, namespace: str):
        super().__init__(source, namespace)
        self._store = MemoryDocstore(self._read)

    def _read(self) -> Iterator[PassageDoc]:
        for row in read_jsonl(self._source):
            yield PassageDoc(row["doc_id"], row["title"], row["text"])

    def docs_iter(self):
        return iter(self._store)

    def docs_store(self, field: str = "doc_id"):
        return self._store

    def docs_count(self) -> int:
        return self._store.count()


class PassageTsvDocs(PassageDocs):
    """The DPR/XOR-TyDi passage format: a tab-separated file ``id, text, title`` with a header line and
    CSV quoting (read as the official evaluation reads it). Its docstore lives in the ir_datasets home."""

    def __init__(self, source: DataFile, namespace: str, store_name: str):
        super().__init__(source, namespace)
        self._store_name = store_name

    def _read(self) -> Iterator[PassageDoc]:
        with self._source.open_text() as f:
            rows = csv.reader(f, delimiter="\t")
            header = next(rows, None)
            if header is not None and header[:3] != ["id", "text", "title"]:
                raise ValueError(f"{self._source.name}: expected the header 'id, text, title', found {header}")
            for row in rows:
                yield PassageDoc(row[0], row[2], row[1])

    @ir_datasets.util.use_docstore
    def docs_iter(self):
        return self._read()

    def docs_store(self, field: str = "doc_id"):
        path = ir_datasets.util.home_path() / "clirkd" / f"{self._store_name}.pklz4"
        return PickleLz4FullStore(path=str(path), init_iter_fn=self._read, data_cls=PassageDoc,
                                  lookup_field=field, index_fields=["doc_id"])

    def docs_count(self):
        store = self.docs_store()
        return store.count() if store.built() else None


class ListQueries(BaseQueries):
    """Queries produced by a function (read when iterated), optionally only those of one language."""

    def __init__(self, read: Callable[[], Iterator[NamedTuple]], cls: type, namespace: str,
                 lang: Optional[str] = None):
        self._read = read
        self._cls = cls
        self._namespace = namespace
        self._lang = lang

    def queries_iter(self):
        for query in self._read():
            if self._lang is None or query.lang == self._lang:
                yield query

    def queries_cls(self):
        return self._cls

    def queries_namespace(self):
        return self._namespace

    def queries_lang(self):
        return self._lang


class Documentation:
    """The ``documentation()`` constituent of a dataset: a pretty name, a description, a citation."""

    def __init__(self, **fields: str):
        self._fields = fields

    def documentation(self) -> dict:
        return dict(self._fields)


def register(name: str, dataset: ir_datasets.Dataset) -> None:
    """Registers ``dataset`` with ir_datasets under ``name`` unless that name is taken already."""
    if name not in ir_datasets.registry._registered:
        ir_datasets.registry.register(name, dataset)


def _irds(dataset) -> ir_datasets.Dataset:
    if isinstance(dataset, str):
        return ir_datasets.load(dataset.removeprefix("irds:"))
    if hasattr(dataset, "irds_ref"):
        return dataset.irds_ref()
    return dataset


def answers(dataset) -> pd.DataFrame:
    """The short answers of a question-answering dataset, as the "qrels" of :mod:`pyterrier_clirkd.measures`.

    ``dataset``: a PyTerrier dataset (``pt.get_dataset("irds:xor-tydi/dev")``), an ir_datasets dataset or
    its name. Returns ``qid``, ``answers`` (a list of strings), ``lang``: one row per question that
    Recall@Nkt scores, i.e. with an answer other than "yes" and "no" (the official evaluation skips the
    others; on XOR-TyDi dev 1,928 of the 2,110 questions are scored).

    Example::

        ds = pt.get_dataset("irds:xor-tydi/dev")
        pt.Experiment([pipeline], ds.get_topics(), clirkd.answers(ds), [clirkd.measures.R5kt])
    """
    ds = _irds(dataset)
    if not ds.has_queries() or "answers" not in ds.queries_cls()._fields:
        raise ValueError(f"{dataset!r} has no questions with answers (its queries are not QAQuery records)")
    rows = [(q.query_id, list(q.answers), q.lang) for q in ds.queries_iter()
            if any(a not in SKIPPED_ANSWERS for a in q.answers)]
    return pd.DataFrame(rows, columns=["qid", "answers", "lang"])

