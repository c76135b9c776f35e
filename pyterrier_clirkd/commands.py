"""The ``clirkd index``, ``clirkd retrieve`` and ``clirkd evaluate`` subcommands, and the files they read and write.

Files:

- documents (``--docs``): JSON lines (``{"docno": ..., "text": ..., "title": ...}``; ``doc_id`` or ``id`` also name
  the document), or TSV: ``docno<TAB>text[<TAB>title]`` lines, or the DPR / XOR-TyDi layout with the header
  ``id<TAB>text<TAB>title`` (CSV quoting); ``.gz`` is read too;
- topics (``--topics``): TSV ``qid<TAB>query[<TAB>lang]`` lines, or a header line naming the columns (``qid``,
  ``query`` and any others, e.g. ``lang``, ``query_en``);
- runs (``--output`` of retrieve, ``--run`` of evaluate): TREC run files (``.trec``, ``.txt``, ``.run``, also
  ``.gz``), or TSV with the header ``qid<TAB>docno<TAB>rank<TAB>score``; ranks start at 0, as in PyTerrier.

Example::

    clirkd index --model offline:me5-small --dataset irds:clirkd-mini/debian-faq --fields text --output faq.colbert
    clirkd retrieve --index faq.colbert --topics irds:clirkd-mini/debian-faq --mt-field query_en --output mt.trec
    clirkd evaluate --run mt.trec --dataset irds:clirkd-mini/debian-faq --metrics RR@10 nDCG@10 --per-language
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import gzip
import io
import itertools
import json
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Iterator, Optional, Sequence

import ir_measures
import pandas as pd
import pyterrier as pt

from .datasets import answers
from .index import ColBERTIndex, IndexInputError
from .index.search import NPROBE
from .measures import per_language as per_language_table
from .measures import recall_at_tokens
from .model import ColBERT
from .translate import MTQueryRewriter

DATASET_PREFIX = "irds:"
RUN_COLUMNS = ["qid", "docno", "rank", "score"]
TSV_SUFFIXES = (".tsv", ".tsv.gz")
TREC_SUFFIXES = (".trec", ".trec.gz", ".txt", ".txt.gz", ".run", ".run.gz", ".res", ".res.gz")
_HEADER_IDS = ("docno", "doc_id", "id", "pid")
_TOKEN_RECALL = re.compile(r"R@(\d+(?:\.\d+)?)kt")


# ---------------------------------------------------------------------- parsers
def add_index_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``clirkd index``: build a ColBERTIndex from a dataset's corpus or a documents file."""
    parser = subparsers.add_parser(
        "index", help="build a ColBERT index of English passages",
        description="Encode passages with a ColBERT model and store them as a compressed ColBERTIndex. An interrupted "
                    "build resumes when run again with the same settings; under torchrun the processes share the "
                    "encoding.")
    parser.add_argument("--model", required=True, help="the ColBERT: a saved clirkd or Stanford ColBERT folder, a "
                                                       "Hugging Face encoder (new head), or offline:me5-small")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help="a dataset whose corpus to index, e.g. irds:clirkd-mini/debian-faq")
    source.add_argument("--docs", type=Path, help="a documents file (.jsonl or .tsv, optionally .gz; see "
                                                  "pyterrier_clirkd/commands.py)")
    parser.add_argument("--output", required=True, type=Path, help="the index folder to create, e.g. wiki.colbert")
    parser.add_argument("--fields", nargs="+", metavar="FIELD",
                        help="document fields that make the indexed text, joined as 'first | second' (default: "
                             "title, where there is one, and text; the Debian FAQ's titles are its English "
                             "questions: index only its text)")
    parser.add_argument("--nbits", type=int, choices=(1, 2, 4, 16), default=2,
                        help="bits per dimension of the stored residuals; 16: uncompressed float16 (default: 2)")
    parser.add_argument("--doc-maxlen", type=int, help="passage length in tokens (default: the model's)")
    parser.add_argument("--batch-size", type=int, default=64, help="passages encoded at once (default: 64)")
    parser.add_argument("--chunk-size", type=int, default=2048,
                        help="passages per chunk written to disk, the unit of resuming (default: 2048)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing index at --output")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(run=run_index)
    return parser


def add_retrieve_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``clirkd retrieve``: search an index for topics, optionally translating them first."""
    parser = subparsers.add_parser(
        "retrieve", help="search a ColBERT index, optionally after translating the queries",
        description="Search a ColBERTIndex for each topic and write a run. With an --mt-* option the queries are "
                    "first rewritten into English (the teacher pipeline, MT >> ColBERT); with --query-model a "
                    "student encodes the native queries (it must search passage vectors of the index's model).")
    parser.add_argument("--index", required=True, type=Path, help="a ColBERTIndex folder")
    parser.add_argument("--topics", required=True,
                        help="the queries: a dataset (irds:clirkd-mini/debian-faq/ja, irds:xor-tydi/dev) or a TSV "
                             "file (qid<TAB>query[<TAB>lang], or with a header line)")
    parser.add_argument("--output", required=True, type=Path,
                        help="the run file: .trec (TREC format) or .tsv (qid, docno, rank, score); .gz compresses")
    parser.add_argument("-k", "--num-results", type=int, default=100, help="results per query (default: 100)")
    parser.add_argument("--query-model", help="a model that encodes the queries instead of the index's own, e.g. a "
                                              "student distilled with passages=teacher")
    mt = parser.add_argument_group("query translation (at most one)").add_mutually_exclusive_group()
    mt.add_argument("--mt-model", help="a Hugging Face seq2seq MT model (NLLB-200, M2M100, mBART-50, Marian)")
    mt.add_argument("--mt-table", type=Path, help="a TSV of translations: key<TAB>English a line (keys: --mt-key)")
    mt.add_argument("--mt-field", help="take the translations from this column of the topics, e.g. query_en (the "
                                       "human translations of clirkd-mini and XOR-TyDi)")
    parser.add_argument("--mt-key", choices=("query", "qid"), default="query",
                        help="what --mt-table is keyed by (default: the query text)")
    parser.add_argument("--mt-cache", type=Path, help="an sqlite file that keeps --mt-model translations")
    parser.add_argument("--mt-fallback", action="store_true",
                        help="keep the original query when it has no translation (default: an error)")
    parser.add_argument("--exhaustive", action="store_true", help="score every passage (exact, slow on big indexes)")
    parser.add_argument("--nprobe", type=int, default=NPROBE,
                        help="centroids probed per query token (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=64, help="queries encoded at once (default: 64)")
    parser.add_argument("--run-name", default="clirkd", help="the name in the TREC run file (default: clirkd)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(run=run_retrieve)
    return parser


def add_evaluate_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``clirkd evaluate``: score runs against a dataset's judgements or answers."""
    parser = subparsers.add_parser(
        "evaluate", help="measure runs against a dataset's relevance judgements or answers",
        description="Evaluate one or more runs with ir_measures (RR@10, nDCG@10, R@100, ...) against the dataset's "
                    "qrels, and XOR-TyDi's Recall@Nkt (R@2kt, R@5kt) against its answers (the passages' text "
                    "comes from the dataset). A query the run has no results for counts as 0.")
    parser.add_argument("--run", dest="runs", required=True, nargs="+", type=Path, metavar="RUN",
                        help="run file(s) to evaluate")
    judged = parser.add_mutually_exclusive_group(required=True)
    judged.add_argument("--dataset", help="the dataset the run answers, e.g. irds:clirkd-mini/debian-faq or "
                                          "irds:xor-tydi/dev (its queries, judgements or answers, languages)")
    judged.add_argument("--qrels", type=Path, help="a TREC qrels file (ir_measures measures only)")
    parser.add_argument("--metrics", nargs="+", default=["RR@10", "nDCG@10", "R@10"], metavar="MEASURE",
                        help="ir_measures names (RR@10, nDCG@10, R@100, ...) and R@Nkt (R@2kt, R@5kt) "
                             "(default: RR@10 nDCG@10 R@10)")
    parser.add_argument("--per-language", action="store_true",
                        help="the mean of each language and their unweighted mean (macro), as XOR-TyDi reports")
    parser.add_argument("--names", nargs="+", help="a name per run (default: the file names)")
    parser.add_argument("--output", type=Path, help="also write the table to this CSV file")
    parser.set_defaults(run=run_evaluate)
    return parser


# ---------------------------------------------------------------------- clirkd index
def run_index(args) -> None:
    if args.output.exists() and not args.overwrite:
        raise FileExistsError(f"{args.output} already exists; pass --overwrite to replace it")
    _check_positive(args, "batch_size", "chunk_size", "doc_maxlen")
    docs = SizedDocs(args.dataset, args.docs, args.fields)
    docs.check()
    overrides = {"doc_maxlen": args.doc_maxlen} if args.doc_maxlen else {}
    model = ColBERT.from_pretrained(args.model, **overrides)
    index = ColBERTIndex(args.output, model, nbits=args.nbits, mode="overwrite" if args.overwrite else "create",
                         chunk_size=args.chunk_size, batch_size=args.batch_size, verbose=not args.quiet)
    index.index(docs)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, once
        print(f"indexed {len(index)} passages into {args.output}")


class SizedDocs:
    """The documents of a dataset's corpus or of a file, as ``{"docno", "text"}`` dicts whose text joins ``fields``
    with ``" | "`` (empty ones left out; default: ``title`` where a document has one, then ``text``); iterable more
    than once, with a length (for progress bars). A document without one of the fields, or with a field that is
    not text, raises :class:`IndexInputError`.

    Example::

        docs = SizedDocs("irds:clirkd-mini/debian-faq", None, fields=["text"])   # the FAQ answers, not their titles
    """

    def __init__(self, dataset: Optional[str], path: Optional[Path], fields: Optional[Sequence[str]] = None):
        if (dataset is None) == (path is None):
            raise ValueError("give one of a dataset or a documents file")
        if fields is not None and not fields:
            raise ValueError("--fields needs at least one field")
        self.dataset = dataset
        self.path = path
        self.fields = list(fields) if fields is not None else None
        self._length: Optional[int] = None

    def _records(self) -> Iterator[dict]:
        if self.dataset is not None:
            return iter(load_dataset(self.dataset).get_corpus_iter(verbose=False))
        return read_docs(self.path)

    def __iter__(self) -> Iterator[dict]:
        for position, doc in enumerate(self._records()):
            fields = self.fields or (["title", "text"] if "title" in doc else ["text"])
            missing = [f for f in fields if f not in doc]
            if missing:
                raise IndexInputError(f"document {position} ({doc.get('docno')!r}) has no field {missing[0]!r} (it "
                                      f"has {sorted(doc)}); choose --fields among them")
            parts = [doc[f] for f in fields]
            bad = next((p for p in parts if not isinstance(p, str)), None)
            if bad is not None:
                raise IndexInputError(f"document {position} ({doc.get('docno')!r}): fields must be text, found "
                                      f"{type(bad).__name__}: {bad!r}")
            yield {"docno": doc["docno"], "text": " | ".join(p for p in parts if p.strip())}

    def check(self) -> int:
        """Count the documents and check them (a file wholly, a dataset's corpus by its first document), so that bad
        input fails before any model loads; returns the count."""
        count = load_dataset(self.dataset).irds_ref().docs_count() if self.dataset is not None else None
        if count is None:
            count = sum(1 for _ in self)
        elif count:
            next(iter(self))
        if not count:
            raise ValueError(f"{self.dataset or self.path}: no documents")
        self._length = count
        return count

    def __len__(self) -> int:
        return self._length if self._length is not None else self.check()


def read_docs(path: Path) -> Iterator[dict]:
    """Documents of a ``.jsonl`` or ``.tsv`` file (optionally ``.gz``), as dicts with ``docno`` (see the module
    docstring for the layouts).

    Example::

        next(read_docs(Path("docs.tsv")))     # {"docno": "d1", "text": "...", "title": "..."}
    """
    name = path.name.removesuffix(".gz")
    if name.endswith(".jsonl"):
        yield from _read_jsonl_docs(path)
    elif name.endswith(".tsv"):
        yield from _read_tsv_docs(path)
    else:
        raise ValueError(f"{path}: documents must be a .jsonl or .tsv file (optionally .gz)")


def _read_jsonl_docs(path: Path) -> Iterator[dict]:
    with _open_text(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{number}: not a JSON object ({e.msg})") from None
            if not isinstance(doc, dict):
                raise ValueError(f"{path}:{number}: expected a JSON object, found {type(doc).__name__}")
            key = next((k for k in _HEADER_IDS if k in doc), None)
            if key is None:
                raise ValueError(f"{path}:{number}: the document has no docno (nor doc_id, id)")
            yield {**{k: v for k, v in doc.items() if k not in _HEADER_IDS}, "docno": str(doc[key])}


def _read_tsv_docs(path: Path) -> Iterator[dict]:
    with _open_text(path) as f:
        first = f.readline().rstrip("\r\n")
        header = first.split("\t")
        if header[0].lower() in _HEADER_IDS:  # the DPR / XOR-TyDi layout: id, text, title with CSV quoting
            columns = ["docno"] + header[1:]
            for number, row in enumerate(csv.reader(f, delimiter="\t"), 2):
                if row:
                    yield _tsv_doc(path, number, row, columns)
            return
        plain = ["docno", "text", "title"]  # docno<TAB>text[<TAB>title], no quoting
        for number, line in enumerate(itertools.chain([first], (line.rstrip("\r\n") for line in f)), 1):
            if line.strip():
                row = line.split("\t")
                yield _tsv_doc(path, number, row, plain[:min(3, max(2, len(row)))])


def _tsv_doc(path: Path, number: int, row: list[str], columns: list[str]) -> dict:
    if len(row) != len(columns) or len(row) < 2:
        raise ValueError(f"{path}:{number}: expected {len(columns)} tab-separated fields "
                         f"({', '.join(columns)}), found {len(row)}")
    return dict(zip(columns, row))


# ---------------------------------------------------------------------- clirkd retrieve
def run_retrieve(args) -> None:
    run_format = _run_format(args.output)
    _check_positive(args, "num_results", "nprobe", "batch_size")
    if not (args.index / "pt_meta.json").exists():
        raise FileNotFoundError(f"{args.index} is not a ColBERT index (no pt_meta.json); build one with clirkd index")
    topics = read_topics(args.topics)
    mt = _query_rewriter(args, topics)
    index = ColBERTIndex.load(args.index)
    query_model = ColBERT.from_pretrained(args.query_model) if args.query_model else None
    retriever = index.retriever(num_results=args.num_results, query_model=query_model, exhaustive=args.exhaustive,
                                nprobe=args.nprobe, batch_size=args.batch_size, verbose=not args.quiet)
    pipeline = mt >> retriever if mt is not None else retriever
    run = pipeline(topics)
    write_run(run, args.output, run_format, args.run_name)
    print(f"wrote {len(run)} results for {run['qid'].nunique()} of {len(topics)} queries to {args.output}")


def _query_rewriter(args, topics: pd.DataFrame):
    fallback = "original" if args.mt_fallback else None
    if args.mt_model:
        cache = str(args.mt_cache) if args.mt_cache else True
        return MTQueryRewriter.from_pretrained(args.mt_model, cache=cache, verbose=not args.quiet)
    if args.mt_table:
        if not args.mt_table.is_file():
            raise FileNotFoundError(f"{args.mt_table}: no such file")
        return MTQueryRewriter.from_table(args.mt_table, key=args.mt_key, fallback=fallback)
    if args.mt_field:
        if args.mt_field not in topics.columns:
            raise ValueError(f"the topics have no column {args.mt_field!r} to take translations from (columns: "
                             f"{list(topics.columns)})")
        table = topics[["qid", args.mt_field]].rename(columns={args.mt_field: "query_en"})
        return MTQueryRewriter.from_table(table, key="qid", fallback=fallback)
    return None


def read_topics(source: str) -> pd.DataFrame:
    """Topics from a dataset (``irds:...``) or a TSV file: ``qid``, ``query`` and any other columns (``lang``, ...).

    Example::

        read_topics("irds:clirkd-mini/debian-faq/ja").columns    # qid, query, lang, query_en
    """
    if source.startswith(DATASET_PREFIX):
        dataset = load_dataset(source)
        with contextlib.redirect_stdout(io.StringIO()):  # pt prints a note when queries have several text fields
            try:
                topics = dataset.get_topics()
            except (NotImplementedError, KeyError, AttributeError):
                raise ValueError(f"{source} has no queries") from None
        return topics.drop(columns="answers", errors="ignore")  # answers are for evaluation, not retrieval
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"{source}: no such topics file (give a TSV file, or a dataset as irds:NAME)")
    numbered = [(number, line.split("\t")) for number, line in enumerate(_read_lines(path), 1) if line.strip()]
    if not numbered:
        raise ValueError(f"{path}: no topics")
    if {"qid", "query"} <= set(numbered[0][1]):
        columns, numbered = numbered[0][1], numbered[1:]
    else:
        columns = ["qid", "query", "lang"][:min(3, max(2, len(numbered[0][1])))]
    for number, row in numbered:
        if len(row) != len(columns):
            raise ValueError(f"{path}:{number}: expected {len(columns)} tab-separated fields ({', '.join(columns)}), "
                             f"found {len(row)}")
    topics = pd.DataFrame([row for _, row in numbered], columns=columns)
    if topics["qid"].duplicated().any():
        raise ValueError(f"{path}: qid {topics['qid'][topics['qid'].duplicated()].iloc[0]!r} appears twice")
    return topics


# ---------------------------------------------------------------------- clirkd evaluate
def run_evaluate(args) -> None:
    if args.names is not None and len(args.names) != len(args.runs):
        raise ValueError(f"--names gives {len(args.names)} names for {len(args.runs)} runs")
    names = args.names or [_run_name(p) for p in args.runs]
    if len(set(names)) != len(names):
        raise ValueError(f"two runs have the same name ({names}); give --names")
    measures = [parse_measure(m) for m in args.metrics]
    runs = [read_run(path) for path in args.runs]
    table = evaluate(runs, names, measures, dataset=args.dataset, qrels_path=args.qrels,
                     per_language=args.per_language)
    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(table.round(4).to_string(index=False))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.output, index=False)


def parse_measure(name: str):
    """An ir_measures measure by name, or XOR-TyDi's Recall@Nkt for ``R@2kt``, ``R@5kt``, ...

    Example::

        parse_measure("nDCG@10"), parse_measure("R@5kt")
    """
    match = _TOKEN_RECALL.fullmatch(name.strip())
    if match:
        return recall_at_tokens(round(float(match.group(1)) * 1000))
    try:
        return ir_measures.parse_measure(name)
    except (ValueError, NameError, SyntaxError, TypeError, AttributeError):
        raise ValueError(f"unknown measure {name!r} (ir_measures names such as RR@10, nDCG@10, R@100, AP, or R@2kt, "
                         f"R@5kt)") from None


def _is_token_recall(measure) -> bool:
    return bool(_TOKEN_RECALL.fullmatch(str(measure)))


def evaluate(runs: Sequence[pd.DataFrame], names: Sequence[str], measures: Sequence, *, dataset: Optional[str] = None,
             qrels_path: Optional[Path] = None, per_language: bool = False) -> pd.DataFrame:
    """One row per run: the mean of each measure over the dataset's queries (a query without results counts as 0),
    or with ``per_language`` the mean per language and their macro average (columns ``"{measure} {lang}"``).

    Example::

        evaluate([read_run(Path("mt.trec"))], ["mt"], [parse_measure("RR@10")], dataset="irds:clirkd-mini/debian-faq")
    """
    recall = [m for m in measures if _is_token_recall(m)]
    others = [m for m in measures if not _is_token_recall(m)]
    if dataset is None and (recall or per_language):
        raise ValueError("R@Nkt and --per-language need --dataset (its answers and languages), not --qrels")
    if dataset is not None:
        topics = read_topics(dataset)
        qrels = _dataset_qrels(dataset) if others else None
    else:
        qrels = _read_qrels(qrels_path)
        topics = pd.DataFrame({"qid": qrels["qid"].unique()})
    answer_frame = answers(dataset) if recall else None
    _check_coverage(runs, names, set(topics["qid"]), dataset or qrels_path)
    jobs = []  # (measures, judgements, runs)
    if others:
        jobs.append((others, qrels, runs))
    if recall:
        text = pt.text.get_text(load_dataset(dataset), "text")
        jobs.append((recall, answer_frame, [text(run) if len(run) else run for run in runs]))
    tables = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*topic\(s\) not found in qrels")
        for job_measures, judgements, job_runs in jobs:
            if per_language:
                tables.append(per_language_table(job_runs, topics, judgements, job_measures, names=list(names)))
            else:
                tables.append(pt.Experiment(job_runs, topics, judgements, job_measures, names=list(names)))
    table = tables[0]
    for other in tables[1:]:
        table = table.merge(other, on="name")
    order = {str(m): i for i, m in enumerate(measures)}  # the measures in the order asked for
    columns = sorted(table.columns[1:], key=lambda c: order.get(c if c in order else c.rsplit(" ", 1)[0], len(order)))
    return table[["name", *columns]]


def _check_coverage(runs: Sequence[pd.DataFrame], names: Sequence[str], asked: set, source) -> None:
    """A run that answers none of the queries is an error (the wrong topics); one that misses some gets a note."""
    for run, name in zip(runs, names):
        answered = asked & set(run["qid"])
        if not answered:
            raise ValueError(f"run {name!r} has no results for any query of {source} (its qids: "
                             f"{sorted(set(run['qid']))[:3]}); is it a run of these topics?")
        if len(answered) < len(asked):
            print(f"clirkd evaluate: note: run {name!r} has results for {len(answered)} of {len(asked)} queries; "
                  f"the others count as 0", file=sys.stderr)


def _dataset_qrels(dataset: str) -> pd.DataFrame:
    try:
        return load_dataset(dataset).get_qrels()
    except (NotImplementedError, KeyError):
        raise ValueError(f"{dataset} has no relevance judgements; measure it by its answers with R@2kt / "
                         f"R@5kt") from None


def _read_qrels(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such qrels file")
    try:
        qrels = pd.read_csv(path, sep=r"\s+", header=None, dtype=str, names=["qid", "iteration", "docno", "label"])
        qrels["label"] = qrels["label"].astype(int)
    except (ValueError, pd.errors.ParserError):
        raise ValueError(f"{path}: not a TREC qrels file (qid iteration docno label a line)") from None
    return qrels


# ---------------------------------------------------------------------- runs
def _run_format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(TSV_SUFFIXES):
        return "tsv"
    if name.endswith(TREC_SUFFIXES):
        return "trec"
    raise ValueError(f"{path}: a run file must end in .trec or .tsv (optionally .gz)")


def write_run(run: pd.DataFrame, path: Path, run_format: str, run_name: str = "clirkd") -> None:
    """Write ``run`` (qid, docno, rank, score) as a TREC run or a TSV with a header line.

    Example::

        write_run(results, Path("run.trec"), "trec")
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if run_format == "tsv":
        run[RUN_COLUMNS].to_csv(path, sep="\t", index=False)
        return
    for column in ("qid", "docno"):
        spaced = run[column].astype(str).str.contains(r"\s", regex=True)
        if spaced.any():
            raise ValueError(f"{column} {run[column][spaced].iloc[0]!r} contains white space, which a TREC run "
                             f"cannot hold; write a .tsv run instead")
    pt.io.write_results(run[RUN_COLUMNS], str(path), format="trec", run_name=run_name)


def read_run(path: Path) -> pd.DataFrame:
    """A run written by :func:`write_run` (or any TREC run file): ``qid, docno, rank, score`` as a DataFrame.

    Example::

        read_run(Path("run.trec"))
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such run file")
    run_format = _run_format(path)
    try:
        if run_format == "tsv":
            run = pd.read_csv(path, sep="\t", dtype={"qid": str, "docno": str})
            missing = set(RUN_COLUMNS) - set(run.columns)
            if missing:
                raise ValueError(f"{path}: a TSV run needs the header {', '.join(RUN_COLUMNS)} (missing "
                                 f"{sorted(missing)})")
        else:
            run = pd.read_csv(path, sep=r"\s+", header=None, dtype={0: str, 2: str},
                              names=["qid", "iter", "docno", "rank", "score", "name"])
        run = run[RUN_COLUMNS].astype({"rank": int, "score": float})
    except (pd.errors.ParserError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a run file ({e})") from None
    except ValueError as e:
        if str(path) in str(e):
            raise
        raise ValueError(f"{path}: not a {run_format.upper()} run file ({str(e).splitlines()[0]})") from None
    if run[["qid", "docno"]].isna().any().any():
        raise ValueError(f"{path}: some lines lack a qid or docno")
    return run


def _run_name(path: Path) -> str:
    name = path.name
    for suffix in (".gz",) + TREC_SUFFIXES + TSV_SUFFIXES:
        name = name.removesuffix(suffix)
    return name


# ---------------------------------------------------------------------- shared
def load_dataset(name: str):
    """``pt.get_dataset`` with a one-line error for a name that no ir_datasets provider knows.

    Example::

        load_dataset("irds:clirkd-mini/debian-faq")
    """
    if not name.startswith(DATASET_PREFIX):
        raise ValueError(f"{name!r}: name datasets as irds:NAME, e.g. irds:clirkd-mini/debian-faq")
    try:
        return pt.get_dataset(name)
    except KeyError:
        raise ValueError(f"unknown dataset {name!r} (clirkd's own: irds:clirkd-mini/debian-faq[/ja|ko|ru], "
                         f"irds:clirkd-mini/countries, irds:xor-tydi/dev[/LANG], irds:mkqa[/LANG])") from None


def _check_positive(args, *names: str) -> None:
    for name in names:
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, not {value}")


def _open_text(path: Path) -> io.TextIOBase:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _read_lines(path: Path) -> list[str]:
    with _open_text(path) as f:
        return [line.rstrip("\r\n") for line in f]
