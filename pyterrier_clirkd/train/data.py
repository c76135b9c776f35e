"""Readers for training data: ColBERT text triples (with an English twin file), and parallel text.

Each reader returns a pandas DataFrame:

- :func:`read_triples`: ``query``, ``positive``, ``negatives`` (a tuple of passages), and ``english`` with a twin file;
- :func:`read_parallel_folder` and :func:`read_parallel_files`: ``lang``, ``text`` (non-English), ``english``.

Example::

    triples = read_triples("xor_train_triples.tsv", english="xor_train_triples.en.tsv")
    pairs = read_parallel_folder("data/xor-tydi/translations", langs=["ja", "ko", "ru"])
    pairs = read_parallel_files("WikiMatrix.ja-en.ja", "WikiMatrix.ja-en.en", lang="ja")
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Optional, Sequence

import pandas as pd

from ..datasets.common import open_text, read_line_pairs


def _lines(path: str | os.PathLike) -> Iterator[str]:
    """Lines of a UTF-8 text file (gzipped when the name ends in .gz), without their line ends."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such file")
    with open_text(path) as f:
        for line in f:
            yield line.rstrip("\r\n")


def read_triples(path: str | os.PathLike, english: Optional[str | os.PathLike] = None) -> pd.DataFrame:
    """ColBERT text triples: one ``query<TAB>positive<TAB>negative[<TAB>negative...]`` a line.

    ``english`` names a row-aligned twin file with the English version of each question (the PrimeQA layout for
    IR-score distillation): either the English question alone on each line, or a full triples line whose passages
    must then be the same as in ``path``.

    Example::

        triples = read_triples("triples.tsv")                  # query, positive, negatives
        triples = read_triples("xor.tsv", english="xor.en.tsv")  # + english
    """
    rows = []
    width = None
    for number, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 3:
            raise ValueError(f"{path}:{number}: expected a query, a positive and at least one negative passage "
                             f"separated by tabs, found {len(fields)} field(s)")
        if width is None:
            width = len(fields)
        elif len(fields) != width:
            raise ValueError(f"{path}:{number}: {len(fields) - 2} negatives, but earlier lines have {width - 2}")
        rows.append((number, fields[0], fields[1], tuple(fields[2:])))
    if not rows:
        raise ValueError(f"{path}: no triples")
    frame = pd.DataFrame([r[1:] for r in rows], columns=["query", "positive", "negatives"])
    if english is not None:
        frame["english"] = _twin_questions(english, rows)
    return frame


def _twin_questions(english: str | os.PathLike, rows: list) -> list[str]:
    twin = [line for line in _lines(english) if line.strip()]
    if len(twin) != len(rows):
        raise ValueError(f"{english}: {len(twin)} lines, but the triples file has {len(rows)}; the English twin file "
                         f"must be row-aligned with the triples")
    questions = []
    for (number, _, positive, negatives), line in zip(rows, twin):
        fields = line.split("\t")
        if len(fields) > 1 and (fields[1], tuple(fields[2:])) != (positive, negatives):
            raise ValueError(f"{english}: the passages of the triple on line {number} differ from the triples file; "
                             f"the English twin file must be row-aligned with the triples")
        questions.append(fields[0])
    return questions


def read_parallel_files(source: str | os.PathLike, english: str | os.PathLike, lang: str = "") -> pd.DataFrame:
    """Two line-aligned files (OPUS style: one sentence a line), the non-English one first. Pairs with an empty side
    are dropped.

    Example::

        pairs = read_parallel_files("CCMatrix.en-ja.ja", "CCMatrix.en-ja.en", lang="ja")
    """
    pairs = [(lang, text, english_text) for text, english_text in read_line_pairs(source, english)]
    if not pairs:
        raise ValueError(f"{source} and {english}: no sentence pairs")
    return pd.DataFrame(pairs, columns=["lang", "text", "english"])


def read_parallel_folder(folder: str | os.PathLike, langs: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Parallel text laid out as ``{lang}-en/{lang}.txt`` with ``{lang}-en/en.txt`` (line-aligned; ``.txt.gz`` also
    read), as XOR-TyDi's question translations. ``langs`` picks languages (default: every ``*-en`` sub-folder).

    Example::

        pairs = read_parallel_folder("data/xor-tydi/translations", langs=["ja", "ko", "ru"])
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    found = sorted(p.name[:-3] for p in folder.glob("*-en") if p.is_dir() and p.name[:-3] != "en")
    if langs is None:
        langs = found
    missing = sorted(set(langs) - set(found))
    if missing or not langs:
        raise ValueError(f"{folder}: no {{lang}}-en/ sub-folder for {missing or 'any language'} "
                         f"(found: {found or 'none'})")
    frames = [read_parallel_files(_text_file(folder / f"{lang}-en", lang), _text_file(folder / f"{lang}-en", "en"),
                                  lang=lang) for lang in langs]
    return pd.concat(frames, ignore_index=True)


def _text_file(folder: Path, name: str) -> Path:
    for candidate in (folder / f"{name}.txt", folder / f"{name}.txt.gz"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{folder}: no {name}.txt (or {name}.txt.gz)")


def read_passages(path: str | os.PathLike) -> list[str]:
    """English passages for label-free distillation: one passage a line, or a ColBERT collection TSV
    (``pid<TAB>passage[<TAB>title]``, whose passage column is taken).

    Example::

        passages = read_passages("collection.tsv")
    """
    passages = []
    for line in _lines(path):
        fields = line.split("\t")
        text = fields[1] if len(fields) > 1 else fields[0]
        if text.strip():
            passages.append(text.strip())
    if not passages:
        raise ValueError(f"{path}: no passages")
    return passages
