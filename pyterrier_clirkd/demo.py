"""``clirkd demo``: the paper's comparison in miniature, offline, on the bundled collections.

Three systems search the same English index built by the teacher (the offline backbone):

- ``zero-shot``: the English teacher with the native question;
- ``MT (human translation) >> ColBERT``: the question replaced by its human English translation, then the teacher
  (the two-stage pipeline, with perfect MT);
- ``KD student``: a student distilled in the run from the teacher on the XOR-TyDi question translations (never on
  the evaluation questions), reading the native question; trained with ``passages="teacher"``, it searches the
  teacher's index as is.

Evaluated per language on ``clirkd-mini/debian-faq`` (ja, ko, ru) and ``clirkd-mini/countries`` (seven languages).
Passages are indexed by their text only: their titles are the English questions (FAQ) or names (countries).

Example::

    from pyterrier_clirkd.demo import run_demo
    table = run_demo("demo-output/")        # also writes results.csv and results.png there
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Optional

import pandas as pd
import pyterrier as pt

from . import measures
from .commands import read_topics
from .datasets.xor_tydi import LANGS, xor_tydi_translations
from .index import ColBERTIndex
from .model import ColBERT
from .train.distill import DISTILL_DEFAULTS
from .translate import MTQueryRewriter

COLLECTIONS = ("debian-faq", "countries")
SYSTEMS = ("zero-shot", "MT (human translation) >> ColBERT", "KD student")
MEASURES = (pt.measures.RR @ 10, pt.measures.nDCG @ 10, pt.measures.R @ 10)


def run_demo(output: str | Path = "demo-output", *, teacher: str = "offline:me5-small",
             steps: int = DISTILL_DEFAULTS["steps"], batch_size: int = DISTILL_DEFAULTS["batch_size"],
             countries_docs: Optional[int] = 2000, num_results: int = 100,
             verbose: bool = True) -> pd.DataFrame:
    """Distil a student, index the bundled collections, evaluate the three systems; prints the results per collection
    and measure, returns them as a table (``collection, name, lang`` with a ``macro`` row per system, and one column
    per measure) and writes ``results.csv`` and ``results.png`` to ``output``. ``verbose``: progress bars.

    ``countries_docs`` caps the countries collection (all relevant glosses plus seeded distractors; ``None``: all
    20,209). Example: ``run_demo("out/", steps=50, countries_docs=1000)`` for a quick look.
    """
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    started = time.time()
    teacher_model = ColBERT.from_pretrained(teacher)
    student = distil_student(teacher_model, output / "student", steps=steps, batch_size=batch_size, verbose=verbose)
    tables = []
    for collection in COLLECTIONS:
        name = f"irds:clirkd-mini/{collection}"
        dataset = pt.get_dataset(name)
        topics, qrels = read_topics(name), dataset.get_qrels()
        docs = passages(dataset, qrels, countries_docs if collection == "countries" else None)
        index = ColBERTIndex(output / f"{collection}.colbert", teacher_model, mode="overwrite", verbose=verbose)
        index.index(docs.to_dict("records"))
        retriever = index.retriever(num_results=num_results)
        systems = [retriever,
                   MTQueryRewriter.from_table(topics.set_index("qid")["query_en"].to_dict(), key="qid") >> retriever,
                   index.retriever(num_results=num_results, query_model=student)]
        wide = measures.per_language(systems, topics, qrels, list(MEASURES), names=list(SYSTEMS))
        tables.append(long_table(wide).assign(collection=collection))
    table = pd.concat(tables, ignore_index=True)[["collection", "name", "lang"] + [str(m) for m in MEASURES]]
    table.to_csv(output / "results.csv", index=False)
    plot(table, output / "results.png")
    print(format_table(table))
    print(f"demo finished in {time.time() - started:.0f} s; wrote {output / 'results.csv'} and "
          f"{output / 'results.png'}")
    return table


def distil_student(teacher: ColBERT, output: Path, *, steps: int, batch_size: int, verbose: bool) -> ColBERT:
    """A KD student of ``teacher`` on the bundled XOR-TyDi question translations (all seven languages), with
    ``clirkd distill``'s defaults (``DISTILL_DEFAULTS``) but for the number of steps and the batch size."""
    from .train import Distiller

    pairs = pd.concat([xor_tydi_translations(lang) for lang in LANGS], ignore_index=True)
    pairs = pairs.rename(columns={"query": "text", "query_en": "english"})
    settings = {**DISTILL_DEFAULTS, "steps": steps, "batch_size": batch_size}
    return Distiller(teacher, verbose=verbose, **settings).fit(pairs, output)


def passages(dataset, qrels: pd.DataFrame, limit: Optional[int]) -> pd.DataFrame:
    """``docno, text`` of a collection; with ``limit``, every relevant passage plus seeded distractors."""
    docs = pd.DataFrame(dataset.get_corpus_iter(verbose=False))[["docno", "text"]]
    if limit is None or limit >= len(docs):
        return docs
    relevant = docs["docno"].isin(set(qrels["docno"]))
    distractors = docs[~relevant].sample(n=max(0, limit - int(relevant.sum())), random_state=12345)
    return pd.concat([docs[relevant], distractors]).sort_index()


def long_table(wide: pd.DataFrame) -> pd.DataFrame:
    """``per_language``'s wide table (``"{measure} {lang}"`` columns) as one row per system and language."""
    long = wide.melt(id_vars="name", var_name="column")
    long[["measure", "lang"]] = long["column"].str.rsplit(" ", n=1, expand=True)
    table = long.pivot_table(index=["name", "lang"], columns="measure", values="value", sort=False).reset_index()
    table.columns.name = None
    return table


def format_table(table: pd.DataFrame) -> str:
    """One block per collection and measure: systems as rows, languages (then macro) as columns."""
    blocks = []
    for collection, rows in table.groupby("collection", sort=False):
        for measure in [c for c in table.columns if c not in ("collection", "name", "lang")]:
            grid = rows.pivot(index="name", columns="lang", values=measure).reindex(list(SYSTEMS))
            grid = grid[[c for c in grid.columns if c != "macro"] + ["macro"]]
            blocks.append(f"{collection}  {measure}\n{grid.round(3).to_string()}")
    return "\n\n".join(blocks)


def plot(table: pd.DataFrame, path: Path, measure: str = "RR@10") -> None:
    """A bar chart per collection: ``measure`` per language (and macro), one bar per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    collections = list(dict.fromkeys(table["collection"]))
    fig, axes = plt.subplots(1, len(collections), figsize=(6 + 2.5 * len(collections), 4), squeeze=False)
    for ax, collection in zip(axes[0], collections):
        grid = table[table["collection"] == collection].pivot(index="lang", columns="name", values=measure)
        order = [c for c in grid.index if c != "macro"] + ["macro"]
        grid.reindex(order)[list(SYSTEMS)].plot.bar(ax=ax, rot=0, width=0.8)
        ax.set_title(f"clirkd-mini/{collection}")
        ax.set_ylabel(measure)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def add_demo_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``clirkd demo``."""
    parser = subparsers.add_parser(
        "demo", help="reproduce the paper's comparison in miniature on the bundled data (offline, CPU)",
        description="Distil a KD student from the offline teacher, index the bundled Debian FAQ and countries "
                    "collections, and compare zero-shot, human MT >> ColBERT and the KD student per language. "
                    "Writes OUTPUT/results.csv and OUTPUT/results.png.")
    parser.add_argument("--output", type=Path, default=Path("demo-output"), help="folder for results, indexes "
                                                                                  "and the student (default: %(default)s)")
    parser.add_argument("--teacher", default="offline:me5-small", help="the English teacher (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=DISTILL_DEFAULTS["steps"],
                        help="distillation steps (default: %(default)s, as clirkd distill)")
    parser.add_argument("--batch-size", type=int, default=DISTILL_DEFAULTS["batch_size"],
                        help="distillation batch size (default: %(default)s, as clirkd distill)")
    parser.add_argument("--countries-docs", type=int, default=2000,
                        help="passages of the countries collection to index, relevant ones first; 0 for all 20,209 "
                             "(default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars (the results are printed all the same)")
    parser.set_defaults(run=lambda args: run_demo(args.output, teacher=args.teacher, steps=args.steps,
                                                  batch_size=args.batch_size, countries_docs=args.countries_docs or None,
                                                  verbose=not args.quiet))
    return parser
