"""Build the small CLIR collections shipped in ``pyterrier_clirkd/datasets/data/`` from their public sources.

Two known-item collections, each with native-language queries, an English parallel field (``query_en``),
English documents (``doc_id, title, text``) and one relevant document per query:

* ``debian-faq``: the Debian FAQ (Debian packages ``debian-faq``, ``-ja``, ``-ko``, ``-ru``). The HTML sections
  share their anchor ids across languages; every translated *question* title (its English title ends with
  "?" and the translation differs from it) is a query whose relevant document is the English section with
  the same anchor. Documents: every English section (its own text, without its sub-sections).
* ``countries``: CLDR territory names in ar, bn, fi, ja, ko, ru, te (PyPI ``babel``) whose English name is a
  WordNet 3.0 noun (Debian ``wordnet-base``); the relevant document is that noun's synset (title: its
  lemmas, text: its gloss). Distractors: every other noun.location synset plus a seeded sample of other
  noun synsets, ``--distractors`` in all.

With ``--xor-tydi DIR`` it also copies, gzipped, the XOR-TyDi question files and question translations from
``DIR`` (the official layout) as ``xor-tydi.<official path with "/" as ".">.gz``.

Needs ``apt-get`` and ``dpkg`` (Debian), and the Python packages ``babel`` and ``beautifulsoup4``.
Run from the repository root::

    python scripts/build_mini_collections.py --xor-tydi ../shared/data/xor-tydi
"""
from __future__ import annotations

import argparse
import collections
import gzip
import json
import random
import re
import subprocess
import tempfile
from pathlib import Path

FAQ_PACKAGES = {"en": "debian-faq", "ja": "debian-faq-ja", "ko": "debian-faq-ko", "ru": "debian-faq-ru"}
WORDNET_PACKAGE = "wordnet-base"
COUNTRY_LANGS = ("ar", "bn", "fi", "ja", "ko", "ru", "te")
NOUN_LOCATION = 15                  # WordNet lexicographer file noun.location
COUNTRY_SYNSET = "08544813"         # WordNet 3.0 noun "country, state, land" (a territorial division)
BLOCK_TAGS = ["p", "div", "pre", "li", "dt", "dd", "tr", "td", "th", "br", "table", "blockquote"]


def fetch_debian(packages: list[str], workdir: Path) -> dict[str, str]:
    """``apt-get download`` the packages into ``workdir``, unpack them into ``workdir/root``; return their versions."""
    subprocess.run(["apt-get", "download", *packages], cwd=workdir, check=True, capture_output=True)
    versions = {}
    for deb in sorted(workdir.glob("*.deb")):
        subprocess.run(["dpkg", "-x", str(deb), str(workdir / "root")], check=True)
        name = subprocess.run(["dpkg-deb", "-f", str(deb), "Package"], check=True, capture_output=True, text=True)
        version = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], check=True, capture_output=True, text=True)
        versions[name.stdout.strip()] = version.stdout.strip()
    missing = set(packages) - set(versions)
    if missing:
        raise SystemExit(f"apt-get download did not fetch {sorted(missing)}")
    return versions


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def faq_sections(folder: Path, lang: str) -> dict[str, tuple[str, str]]:
    """anchor id -> (title without its number, the section's own text) for every h2-h4 section of one language."""
    from bs4 import BeautifulSoup

    sections = {}
    for page in sorted(folder.glob(f"*.{lang}.html")):
        soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
        for div in soup.find_all("div", class_="section"):
            heading = div.find(re.compile("^h[2-4]$"), class_="title")
            anchor = heading.find("a", id=True)
            title = re.sub(r"^[0-9.]+\s*", "", _clean(heading.get_text(" ")))
            body = BeautifulSoup(str(div), "html.parser").div
            body.find("div", class_="titlepage").decompose()
            for sub in body.find_all("div", class_="section"):
                sub.decompose()
            for block in body.find_all(BLOCK_TAGS):
                block.append(" ")                       # inline markup joins without spaces, blocks with one
            sections[anchor["id"]] = (title, _clean(body.get_text("")))
    return sections


def build_debian_faq(root: Path) -> tuple[list[dict], list[dict], list[tuple[str, str]]]:
    faq = root / "usr/share/doc/debian/FAQ"
    english = faq_sections(faq, "en")
    docs = [{"doc_id": anchor, "title": title, "text": text} for anchor, (title, text) in english.items()]
    queries, qrels = [], []
    for lang in ("ja", "ko", "ru"):
        translated = faq_sections(faq / lang, lang)
        if set(translated) != set(english):
            raise SystemExit(f"debian-faq-{lang}: its sections do not match the English ones")
        for anchor, (title, _) in translated.items():
            title_en = english[anchor][0]
            if title_en.endswith("?") and title != title_en:
                qid = f"{lang}-{anchor}"
                queries.append({"query_id": qid, "query": title, "lang": lang, "query_en": title_en})
                qrels.append((qid, anchor))
    return docs, queries, qrels


def read_wordnet_nouns(root: Path) -> tuple[dict, dict]:
    """synsets (offset -> (lexfile, lemmas, hypernym offsets, gloss)) and the sense-ordered noun index."""
    folder = root / "usr/share/wordnet"
    synsets = {}
    for line in (folder / "data.noun").read_text(encoding="utf-8").splitlines():
        if line.startswith("  "):
            continue                                   # licence header
        head, _, gloss = line.partition(" | ")
        fields = head.split()
        offset, lexfile, n_words = fields[0], int(fields[1]), int(fields[3], 16)
        lemmas = [fields[4 + 2 * i] for i in range(n_words)]
        at = 4 + 2 * n_words
        pointers = [fields[at + 1 + 4 * j: at + 5 + 4 * j] for j in range(int(fields[at]))]
        hypernyms = [target for symbol, target, pos, _ in pointers if symbol in ("@", "@i") and pos == "n"]
        synsets[offset] = (lexfile, lemmas, hypernyms, gloss.strip())
    index = {}
    for line in (folder / "index.noun").read_text(encoding="utf-8").splitlines():
        if line.startswith("  "):
            continue
        fields = line.split()
        n_senses, n_pointers = int(fields[2]), int(fields[3])
        index[fields[0]] = fields[4 + n_pointers + 2:4 + n_pointers + 2 + n_senses]
    return synsets, index


def _is_country(synsets: dict, offset: str) -> bool:
    seen, todo = set(), [offset]
    while todo:
        for parent in synsets[todo.pop()][2]:
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return COUNTRY_SYNSET in seen


def territory_synset(name: str, synsets: dict, index: dict) -> str | None:
    """The WordNet noun synset for an English territory name, or None.

    The name must be a lemma of the synset, case included ("Turkey" the country, not "turkey" the bird).
    Among several senses, in WordNet's sense order, prefer: a country; then a synset whose first lemma is the
    name ("Jersey" the island, not New Jersey); then a noun.location synset; then the most frequent sense.
    """
    lemma = name.replace(" ", "_")
    senses = [s for s in index.get(lemma.lower(), []) if lemma in synsets[s][1]]
    if not senses:
        return None
    return max(senses, key=lambda s: (_is_country(synsets, s), synsets[s][1][0] == lemma,
                                      synsets[s][0] == NOUN_LOCATION, -senses.index(s)))


def _synset_doc(offset: str, synset: tuple) -> dict:
    title = ", ".join(lemma.replace("_", " ") for lemma in synset[1])
    return {"doc_id": f"{offset}-n", "title": title, "text": synset[3]}


def build_countries(root: Path, n_distractors: int, seed: int) -> tuple[list[dict], list[dict], list[tuple[str, str]]]:
    from babel import Locale

    synsets, index = read_wordnet_nouns(root)
    english = {code: name for code, name in Locale("en").territories.items() if not code.isdigit()}
    relevant = {}
    for code, name in sorted(english.items()):
        offset = territory_synset(name, synsets, index)
        if offset is not None:
            relevant[code] = offset
    clashes = [code for code, offset in relevant.items() if list(relevant.values()).count(offset) > 1]
    if clashes:
        raise SystemExit(f"territories sharing one synset: {clashes}")
    queries, qrels = [], []
    for lang in COUNTRY_LANGS:
        names = Locale(lang).territories
        for code, offset in relevant.items():
            if names.get(code):
                qid = f"{lang}-{code}"
                queries.append({"query_id": qid, "query": names[code], "lang": lang, "query_en": english[code]})
                qrels.append((qid, f"{offset}-n"))
    chosen = set(relevant.values())
    locations = sorted(s for s, v in synsets.items() if v[0] == NOUN_LOCATION and s not in chosen)
    others = sorted(s for s, v in synsets.items() if v[0] != NOUN_LOCATION and s not in chosen)
    if n_distractors < len(locations):
        raise SystemExit(f"--distractors must be at least the {len(locations)} other noun.location synsets")
    distractors = locations + random.Random(seed).sample(others, n_distractors - len(locations))
    docs = [_synset_doc(s, synsets[s]) for s in sorted(chosen | set(distractors))]
    return docs, queries, qrels


def _write_gzip_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as out:
        for row in rows:
            out.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))


def write_collection(out: Path, name: str, docs: list[dict], queries: list[dict], qrels: list[tuple[str, str]]) -> None:
    _write_gzip_jsonl(out / f"{name}.docs.jsonl.gz", docs)
    (out / f"{name}.queries.jsonl").write_text(
        "".join(json.dumps(q, ensure_ascii=False) + "\n" for q in queries), encoding="utf-8")
    (out / f"{name}.qrels.txt").write_text("".join(f"{qid} 0 {docno} 1\n" for qid, docno in qrels))


XOR_TYDI_FILES = ["xor_dev_retrieve_eng_span_v1_1.jsonl", "xor_train_retrieve_eng_span.jsonl"] + [
    f"translations/{lang}-en/{side}.txt" for lang in COUNTRY_LANGS for side in (lang, "en")]


def copy_xor_tydi(source: Path, out: Path) -> None:
    for relpath in XOR_TYDI_FILES:
        target = out / ("xor-tydi." + relpath.replace("/", ".") + ".gz")
        with open(target, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as packed:
            packed.write((source / relpath).read_bytes())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("pyterrier_clirkd/datasets/data"))
    parser.add_argument("--distractors", type=int, default=20_000, help="WordNet glosses besides the relevant ones")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--xor-tydi", type=Path, help="folder with the official XOR-TyDi question files to ship")
    args = parser.parse_args(argv)
    if args.xor_tydi:
        copy_xor_tydi(args.xor_tydi, args.out)
    import babel

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        versions = fetch_debian([*FAQ_PACKAGES.values(), WORDNET_PACKAGE], work)
        root = work / "root"
        faq = build_debian_faq(root)
        countries = build_countries(root, args.distractors, args.seed)
        write_collection(args.out, "debian-faq", *faq)
        write_collection(args.out, "countries", *countries)
        (args.out / "debian-faq.copyright.txt").write_text(
            (root / "usr/share/doc/debian-faq/copyright").read_text(encoding="utf-8"))
        (args.out / "wordnet.copyright.txt").write_text(
            (root / f"usr/share/doc/{WORDNET_PACKAGE}/copyright").read_text(encoding="utf-8"))
    sources = {"debian": versions, "babel": babel.__version__, "cldr": babel.core.get_cldr_version(),
               "distractors": args.distractors, "seed": args.seed}
    counts = {}
    for name, (docs, queries, _) in (("debian-faq", faq), ("countries", countries)):
        counts[name] = {"docs": len(docs), "queries": dict(sorted(collections.Counter(q["lang"] for q in queries).items()))}
    (args.out / "mini-collections.json").write_text(json.dumps({"sources": sources, "counts": counts}, indent=2) + "\n")
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
