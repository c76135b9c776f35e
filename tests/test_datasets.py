"""Every dataset that pyterrier_clirkd registers, loaded from the package data and tests/fixtures (no network)."""
import collections
import json
import os
import subprocess
import sys
from pathlib import Path

import ir_datasets
import pandas as pd
import pyterrier as pt
import pytest

import pyterrier_clirkd as clirkd
from pyterrier_clirkd.datasets import common, mkqa, xor_tydi

FIXTURES = Path(__file__).parent / "fixtures"
XOR_LANGS = ["ar", "bn", "fi", "ja", "ko", "ru", "te"]
# XOR-TyDi dev v1.1 per language: all questions, and those Recall@Nkt scores (REFERENCE.md section 2)
DEV_QUESTIONS = {"ar": 350, "bn": 312, "fi": 360, "ja": 296, "ko": 299, "ru": 255, "te": 238}
DEV_SCORED = {"ar": 309, "bn": 304, "fi": 314, "ja": 241, "ko": 285, "ru": 237, "te": 238}
TRAIN_QUESTIONS = {"ar": 2574, "bn": 2582, "fi": 2088, "ja": 2288, "ko": 2469, "ru": 1941, "te": 1308}


@pytest.fixture(autouse=True)
def local_sources(monkeypatch, tmp_path):
    """The unshipped files come from tests/fixtures; docstores go to a temporary ir_datasets home."""
    monkeypatch.setenv("CLIRKD_XOR_TYDI_DIR", str(FIXTURES / "xor-tydi"))
    monkeypatch.setenv("CLIRKD_MKQA_FILE", str(FIXTURES / "mkqa" / "mkqa.jsonl.gz"))
    monkeypatch.setenv("IR_DATASETS_HOME", str(tmp_path / "irds"))


def topics(name: str) -> pd.DataFrame:
    return pt.get_dataset(f"irds:{name}").get_topics()


def our_names() -> list:
    return [n for n in ir_datasets.registry if n.split("/")[0] in ("xor-tydi", "mkqa", "clirkd-mini")]


def test_import_registers_every_name():
    expected = {"xor-tydi", "mkqa", "clirkd-mini/debian-faq", "clirkd-mini/countries"}
    expected |= {f"xor-tydi/{s}" for s in ("train", "dev", "test")}
    expected |= {f"xor-tydi/{s}/{lang}" for s in ("train", "dev", "test") for lang in XOR_LANGS}
    expected |= {f"mkqa/{lang}" for lang in mkqa.LANGS}
    expected |= {f"clirkd-mini/debian-faq/{lang}" for lang in ("ja", "ko", "ru")}
    expected |= {f"clirkd-mini/countries/{lang}" for lang in XOR_LANGS}
    assert set(our_names()) == expected


def test_import_reads_no_data_file():
    # an audit hook records every file opened while pyterrier_clirkd is imported in a fresh interpreter
    watched = (str(common.PACKAGE_DATA), str(FIXTURES))
    code = ("import sys; opened = []\n"
            "sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == 'open' else None)\n"
            "import pyterrier_clirkd\n"
            f"print([p for p in opened if p.startswith({watched!r}) and not p.endswith(('.py', '.pyc'))])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "CLIRKD_XOR_TYDI_DIR": str(FIXTURES / "xor-tydi")})
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_every_registered_dataset_loads():
    fixture_langs = ("en", "ja", "ru", "fi", "ar", "ko")          # the languages of the MKQA fixture
    for name in our_names():
        ds = ir_datasets.load(name)
        if ds.has_queries():
            queries = list(ds.queries_iter())
            assert queries or (name.startswith("mkqa/") and name[5:] not in fixture_langs), name
            assert all(q.query and q.lang for q in queries), name
            assert len({q.query_id for q in queries}) == len(queries), name
        if ds.has_qrels():
            assert {q.query_id for q in ds.qrels_iter()} == {q.query_id for q in ds.queries_iter()}, name
        assert ds.has_docs(), name
        first = next(iter(ds.docs_iter()))
        assert first.doc_id and first.text, name


def test_xor_dev_topics():
    dev = topics("xor-tydi/dev")
    assert list(dev.columns) == ["qid", "query", "lang", "answers", "query_en"]
    assert len(dev) == 2110 and dev["qid"].is_unique
    assert dev["lang"].value_counts().to_dict() == DEV_QUESTIONS
    first = dev.iloc[0]   # the first line of the official file
    assert (first["qid"], first["lang"], first["answers"]) == ("-1018987027025691298", "te", ("Portland", "Portland"))
    assert first["query"] == "ఒరెగాన్ రాష్ట్రంలోని అతిపెద్ద నగరం ఏది ?"
    # the XOR QA translations cover train questions; 42 dev questions share a train question's text
    assert (dev["query_en"] != "").sum() == 42
    for lang in XOR_LANGS:
        per_lang = topics(f"xor-tydi/dev/{lang}")
        assert len(per_lang) == DEV_QUESTIONS[lang] and set(per_lang["lang"]) == {lang}


def test_xor_train_normalises_arabic_and_translates_every_question():
    train = topics("xor-tydi/train")
    assert len(train) == 15250
    assert train["lang"].value_counts().to_dict() == TRAIN_QUESTIONS      # " ar" read as "ar"
    assert (train["query_en"] != "").all()
    pairs = clirkd.datasets.xor_tydi_translations("ja")
    assert len(pairs) == 4700 and list(pairs.columns) == ["lang", "query", "query_en"]
    japanese = train[train["lang"] == "ja"].iloc[0]
    expected = pairs[pairs["query"] == japanese["query"]]["query_en"].iloc[0]
    assert japanese["query_en"] == expected and expected


def test_answers_frame_keeps_the_scored_questions():
    dev = pt.get_dataset("irds:xor-tydi/dev")
    answers = clirkd.answers(dev)
    assert list(answers.columns) == ["qid", "answers", "lang"]
    assert len(answers) == 1928
    assert answers["lang"].value_counts().to_dict() == DEV_SCORED
    assert all(isinstance(a, list) and a and all(isinstance(s, str) for s in a) for a in answers["answers"])
    assert clirkd.answers("xor-tydi/dev").equals(answers)                  # by name too
    yes_no = set(topics("xor-tydi/dev")["qid"]) - set(answers["qid"])
    dev_topics = topics("xor-tydi/dev").set_index("qid")
    assert all(set(dev_topics.loc[q, "answers"]) <= {"yes", "no"} for q in yes_no)
    with pytest.raises(ValueError, match="no questions with answers"):
        clirkd.answers(pt.get_dataset("irds:clirkd-mini/debian-faq"))


def test_xor_test_questions_and_passages_from_the_local_folder():
    test = topics("xor-tydi/test")
    assert list(test["qid"]) == ["9001", "9002", "9003", "9004", "9005", "9006", "9007"]
    assert set(test["answers"]) == {()}
    assert list(topics("xor-tydi/test/ar")["qid"]) == ["9002"]
    ds = pt.get_dataset("irds:xor-tydi/dev")
    docs = list(ds.get_corpus_iter(verbose=False))
    assert [d["docno"] for d in docs] == ["1", "2", "3"]
    assert docs[0]["title"] == "Aaron"
    assert docs[0]["text"] == 'Aaron ( or ; "Ahärôn") is a prophet, high priest, and the brother of Moses.'
    run = pd.DataFrame({"qid": ["q"], "docno": ["3"], "score": [1.0], "rank": [0]})
    assert pt.text.get_text(ds, ["title", "text"])(run)["title"].tolist() == ["Portland, Oregon"]


def test_local_folder_overrides_the_packaged_copy(monkeypatch, tmp_path):
    folder = tmp_path / "xor"
    folder.mkdir()
    row = {"id": "7", "question": "Кто такой Аарон?", "answers": ["Moses", "yes"], "lang": "ru", "split": "dev"}
    (folder / xor_tydi.SPLITS["dev"]).write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    monkeypatch.setenv("CLIRKD_XOR_TYDI_DIR", str(folder))
    dev = topics("xor-tydi/dev")
    assert dev.to_dict("records") == [{"qid": "7", "query": "Кто такой Аарон?", "lang": "ru",
                                       "answers": ("Moses", "yes"), "query_en": ""}]


def test_a_missing_file_names_the_variable_and_is_not_downloaded(monkeypatch, tmp_path):
    monkeypatch.delenv("CLIRKD_MKQA_FILE")
    with pytest.raises(FileNotFoundError, match=r"point \$CLIRKD_MKQA_FILE at it"):
        common.DataFile("mkqa.jsonl.gz", env_file="CLIRKD_MKQA_FILE").path()
    # a local folder that lacks the passages: an error, not a 13 GB download
    monkeypatch.setenv("CLIRKD_XOR_TYDI_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"enwiki_20190201_w100.tsv not found by \$CLIRKD_XOR_TYDI_DIR=.*unset it"):
        list(ir_datasets.load("xor-tydi").docs_iter())


def test_mkqa_queries_and_english_answers():
    ja = topics("mkqa/ja")
    assert list(ja["qid"]) == ["1001-ja", "-2002-ja", "1003-ja", "1004-ja"]
    assert set(ja["lang"]) == {"ja"}
    assert ja["query"].iloc[0] == "小説『戦争と平和』を書いたのは誰"
    assert ja["query_en"].iloc[0] == "who wrote the novel war and peace"
    # English answers: text then aliases; unanswerable and long answers dropped; binary kept (then not scored)
    assert list(ja["answers"]) == [("Leo Tolstoy", "Tolstoy", "Lev Tolstoy"), ("3776.0 meter", "3776 m", "3,776 metres"),
                                   (), ("yes",)]
    assert list(clirkd.answers("mkqa/ja")["qid"]) == ["1001-ja", "-2002-ja"]
    assert list(topics("mkqa/ko")["qid"]) == ["1001-ko", "1003-ko", "1004-ko"]          # -2002 has no ko query
    assert topics("mkqa")["lang"].value_counts().to_dict() == {"en": 4, "ja": 4, "ru": 4, "fi": 4, "ar": 4, "ko": 3}
    assert len(topics("mkqa/de")) == 0


@pytest.mark.parametrize("name, langs, n_docs", [
    ("debian-faq", {"ja": 116, "ko": 110, "ru": 105}, 148),
    ("countries", {lang: 209 for lang in XOR_LANGS}, 20209),
])
def test_bundled_collection(name, langs, n_docs):
    base = pt.get_dataset(f"irds:clirkd-mini/{name}")
    everything = base.get_topics()
    assert list(everything.columns) == ["qid", "query", "lang", "query_en"]
    assert everything["lang"].value_counts().to_dict() == langs
    assert everything["qid"].is_unique and (everything["query_en"] != "").all()
    docs = pd.DataFrame(base.get_corpus_iter(verbose=False))
    assert len(docs) == n_docs and docs["docno"].is_unique
    qrels = base.get_qrels()
    assert qrels.groupby("qid").size().eq(1).all() and set(qrels["qid"]) == set(everything["qid"])
    assert set(qrels["docno"]) <= set(docs["docno"]) and (qrels["label"] == 1).all()
    for lang, count in langs.items():
        ds = pt.get_dataset(f"irds:clirkd-mini/{name}/{lang}")
        assert len(ds.get_topics()) == count and len(ds.get_qrels()) == count
        assert set(ds.get_topics()["lang"]) == {lang}


def test_debian_faq_pairs_a_translated_question_with_its_section():
    ds = pt.get_dataset("irds:clirkd-mini/debian-faq/ja")
    query = ds.get_topics().set_index("qid").loc["ja-whatisfaq"]
    assert (query["query"], query["query_en"]) == ("この FAQ は何?", "What is this FAQ?")
    assert ds.get_qrels().set_index("qid").loc["ja-whatisfaq", "docno"] == "whatisfaq"
    section = pt.text.get_text(ds, ["title", "text"])(pd.DataFrame({"qid": ["q"], "docno": ["whatisfaq"]}))
    assert section["title"].iloc[0] == "What is this FAQ?"
    assert section["text"].iloc[0].startswith("This document gives frequently asked questions")
    # every query's English title is its section's title
    docs = {d.doc_id: d for d in ir_datasets.load("clirkd-mini/debian-faq").docs_iter()}
    qrels = {q.query_id: q.doc_id for q in ir_datasets.load("clirkd-mini/debian-faq").qrels_iter()}
    for q in ir_datasets.load("clirkd-mini/debian-faq").queries_iter():
        assert docs[qrels[q.query_id]].title == q.query_en


def test_countries_pairs_a_name_with_its_gloss():
    ds = pt.get_dataset("irds:clirkd-mini/countries")
    by_qid = ds.get_topics().set_index("qid")
    assert (by_qid.loc["ja-FR", "query"], by_qid.loc["ja-FR", "query_en"]) == ("フランス", "France")
    assert by_qid.loc["ru-JP", "query"] == "Япония"
    docno = ds.get_qrels().set_index("qid").loc["ja-FR", "docno"]
    doc = ir_datasets.load("clirkd-mini/countries").docs_store().get(docno)
    assert doc.title == "France, French Republic"
    assert doc.text.startswith("a republic in western Europe")
    # Jersey is the Channel Island, Georgia the country (not the US states)
    store = ir_datasets.load("clirkd-mini/countries").docs_store()
    relevant = ds.get_qrels().set_index("qid")["docno"]
    assert store.get(relevant["fi-JE"]).text == "the largest of the Channel Islands"
    assert store.get(relevant["fi-GE"]).text.startswith("a republic in Asia Minor")
    langs_per_doc = collections.Counter(relevant.values)
    assert set(langs_per_doc.values()) == {7}                     # each territory in all 7 languages
