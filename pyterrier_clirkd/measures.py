"""XOR-TyDi's official Recall@Nkt as ir_measures measures (``R2kt``, ``R5kt``), and per-language tables.

Recall@Nkt, as XOR QA's ``eval_xor_retrieve.py`` computes it: for each question, the texts of the retrieved
passages, in rank order, are tokenised, concatenated and cut at exactly N tokens, then joined with single
spaces; the question is a hit (1.0) if any of its answers other than "yes" and "no" is a case-sensitive
substring of that string, else a miss (0.0). A question whose only answers are "yes"/"no" is not scored:
:func:`pyterrier_clirkd.answers` leaves such questions out of the answers frame that the measures take as
"qrels" (and the measures reject them). The run must carry the passages' ``text`` (add it with
``pt.text.get_text(dataset, "text")``).

Two differences from the official script, both deliberate:

* Tokeniser: ``nltk.word_tokenize(text, preserve_line=True)``, NLTK's Treebank word tokeniser over the whole
  passage, instead of ``nltk.word_tokenize(text)``, which first splits sentences with the Punkt model (a
  data download). The tokens differ only where Punkt ends a sentence inside a passage: a sentence-final
  period stays attached to its word (``"home."`` rather than ``"home" "."``), so a passage has slightly
  fewer tokens and the cut at N tokens can reach a little further down the ranking; an answer is then
  matched against ``"home."`` rather than ``"home ."``. Measured on real passages (the English Debian FAQ
  in 284 100-word passages, ``benchmarks/tokenizer_difference.py``): Punkt gives 3.7% more tokens, so the
  cut here covers about 3.7% more text; of 100,000 random answer spans over random rankings, 0.7% (N=2000)
  and 1.35% (N=5000) are hits only here, none only with Punkt (never a lower score there).
* A question that the run retrieved nothing for is a miss (0.0), as a question with an empty list of
  passages is in the official script (which skips a question absent from its prediction file). In
  PyTerrier the topics are the questions asked: ``pt.Experiment`` keeps only their answers.

``per_language`` gives the official table: the mean per language and the unweighted mean over languages.

Example::

    import pyterrier as pt, pyterrier_clirkd as clirkd
    dev = pt.get_dataset("irds:xor-tydi/dev")
    pipeline = retriever >> pt.text.get_text(dev, "text")
    pt.Experiment([pipeline], dev.get_topics(), clirkd.answers(dev), [clirkd.measures.R2kt, clirkd.measures.R5kt])
    clirkd.measures.per_language([pipeline], dev.get_topics(), clirkd.answers(dev), [clirkd.measures.R5kt])
"""
import functools
import warnings
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple

import ir_measures
import pandas as pd
import pyterrier as pt

__all__ = ["R2kt", "R5kt", "recall_at_tokens", "tokenize", "cut_string", "per_language"]

#: answers that the official evaluation drops before matching
SKIPPED_ANSWERS = ("yes", "no")


def tokenize(text: str) -> List[str]:
    """NLTK's word tokens of a passage, without sentence splitting (no Punkt data needed)."""
    from nltk.tokenize import word_tokenize
    return word_tokenize(text, preserve_line=True)


@functools.lru_cache(maxsize=1 << 16)
def _joined_tokens(text: str) -> Tuple[int, str]:
    """(number of tokens, the tokens joined by single spaces): a compact cache entry, as no token holds a space."""
    tokens = tokenize(text)
    return len(tokens), " ".join(tokens)


def cut_string(passages: Iterable[str], n_tokens: int) -> str:
    """The first ``n_tokens`` tokens of the passages, in order, joined with single spaces.

    Example::

        cut_string(["Tokyo is big.", "Osaka too"], 3) == "Tokyo is big"
    """
    parts: List[str] = []
    total = 0
    for text in passages:
        count, joined = _joined_tokens(text)
        if total + count >= n_tokens:
            parts.append(" ".join(joined.split(" ")[:n_tokens - total]))
            break
        if count:
            parts.append(joined)
            total += count
    return " ".join(p for p in parts if p)


def _span_answers(answers) -> List[str]:
    if isinstance(answers, str):
        answers = [answers]
    return [a for a in answers if a not in SKIPPED_ANSWERS]


def _recall_impl(n_tokens: int):
    def impl(qrels: pd.DataFrame, run: pd.DataFrame) -> Iterator[Tuple[str, float]]:
        if "answers" not in qrels.columns:
            raise ValueError("Recall@Nkt needs the answers as qrels (clirkd.answers(dataset): qid, answers), "
                             f"not a frame with columns {list(qrels.columns)}")
        if qrels["query_id"].duplicated().any():
            raise ValueError("Recall@Nkt: the answers frame has several rows for one qid "
                             f"({qrels['query_id'][qrels['query_id'].duplicated()].iloc[0]!r})")
        passages = {}
        if len(run):
            if "text" not in run.columns:
                raise ValueError("Recall@Nkt needs the passages' text in the run: add pt.text.get_text(dataset, "
                                 f"'text') to the pipeline (the run has columns {list(run.columns)})")
            missing = ~run["text"].map(lambda t: isinstance(t, str))
            if missing.any():
                raise ValueError(f"Recall@Nkt: passage {run['doc_id'][missing].iloc[0]!r} has no text in the run")
            passages = run.groupby("query_id", sort=False)["text"].agg(list).to_dict()  # rows are in rank order
        for qid, answers in zip(qrels["query_id"], qrels["answers"]):
            spans = _span_answers(answers)
            if not spans:
                raise ValueError(f"Recall@Nkt: question {qid!r} has no answer to match besides yes/no ({list(answers)}); "
                                 "the official evaluation skips such questions: leave them out of the answers "
                                 "frame, as clirkd.answers(dataset) does")
            joined = cut_string(passages.get(qid, ()), n_tokens)
            yield qid, float(any(answer in joined for answer in spans))
    return impl


def recall_at_tokens(n_tokens: int) -> ir_measures.Measure:
    """XOR-TyDi's Recall@Nkt for any N (``recall_at_tokens(2000)`` is ``R2kt``), named ``R@{N/1000}kt``."""
    if n_tokens < 1:
        raise ValueError(f"n_tokens must be positive, not {n_tokens}")
    return ir_measures.define(_recall_impl(n_tokens), name=f"R@{n_tokens / 1000:g}kt", support_cutoff=False,
                              run_inputs=["query_id", "doc_id", "score", "text"],
                              qrel_inputs=["query_id", "answers"], pretty_name=f"Recall@{n_tokens / 1000:g}kt",
                              short_desc=f"an answer string within the first {n_tokens} tokens retrieved")


R2kt = recall_at_tokens(2000)
R5kt = recall_at_tokens(5000)


def _languages(topics: pd.DataFrame, qrels: pd.DataFrame) -> pd.DataFrame:
    for frame in (topics, qrels):
        if "lang" in frame.columns:
            return frame[["qid", "lang"]].drop_duplicates("qid")
    raise ValueError("per_language needs a 'lang' column in the topics or in the answers/qrels frame")


def _in_given_order(found: Iterable[str], systems, names: Optional[Sequence[str]]) -> list[str]:
    """The system names ``found`` in ``pt.Experiment``'s output, in the order the systems were given (its
    per-query table sorts them by name)."""
    if isinstance(systems, dict):
        given = list(systems)
    else:
        given = list(names) if names is not None else [str(s) for s in systems]
    position = {name: i for i, name in enumerate(given)}
    return sorted(dict.fromkeys(found), key=lambda name: position.get(name, len(position)))


def per_language(systems: Sequence, topics: pd.DataFrame, answers: pd.DataFrame, measures: Sequence,
                 names: Optional[Sequence[str]] = None, **experiment_args) -> pd.DataFrame:
    """The official per-language table: one row per system (``name``), columns ``"{measure} {lang}"`` (the
    mean over that language's scored questions) for each language and ``"{measure} macro"`` (the unweighted
    mean over the languages).

    ``answers`` is the answers frame for Recall@Nkt, or an ordinary qrels frame for ir_measures' measures
    (``pt.measures.RR@10``, ``nDCG@10``, ...). Languages come from ``topics["lang"]`` (else ``answers["lang"]``).
    ``experiment_args`` go to ``pt.Experiment``.

    Example::

        ds = pt.get_dataset("irds:clirkd-mini/debian-faq")
        per_language([pipeline], ds.get_topics(), ds.get_qrels(), [pt.measures.RR@10], names=["colbert"])
        # columns: name, RR@10 ja, RR@10 ko, RR@10 ru, RR@10 macro
    """
    pt.validate.columns(topics, includes=["qid"])
    langs = _languages(topics, answers)
    with warnings.catch_warnings():
        # questions that a measure does not score (e.g. yes/no ones) come back as NaN, which is what we want
        warnings.filterwarnings("ignore", message=r".*topic\(s\) not found in qrels")
        perquery = pt.Experiment(systems, topics, answers, measures, names=names, perquery=True, **experiment_args)
    perquery = perquery.dropna(subset=["value"]).merge(langs, on="qid")
    means = perquery.groupby(["name", "measure", "lang"], sort=False)["value"].mean()
    system_names = _in_given_order(perquery["name"], systems, names)
    given = [m if isinstance(m, str) else str(m) for m in measures]
    measure_names = list(dict.fromkeys([m for m in given if m in set(perquery["measure"])] + list(perquery["measure"])))
    languages = sorted(perquery["lang"].unique())
    rows = []
    for system in system_names:
        row = {"name": system}
        for measure in measure_names:
            values = [means.get((system, measure, lang), float("nan")) for lang in languages]
            row.update({f"{measure} {lang}": value for lang, value in zip(languages, values)})
            row[f"{measure} macro"] = pd.Series(values).mean()
        rows.append(row)
    return pd.DataFrame(rows)
