"""The ``clirkd index``, ``retrieve`` and ``evaluate`` commands, run in-process on a tiny random ColBERT (and once as a
real subprocess), checked against hand-computed MaxSim scores and measures."""
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyterrier as pt
import pytest
import torch

from pyterrier_clirkd import ColBERT
from pyterrier_clirkd.cli import main
from pyterrier_clirkd.commands import SizedDocs, read_docs, read_run, read_topics, write_run
from pyterrier_clirkd.index import IndexInputError
from tiny_models import tiny_xlmr_folder

FIXTURES = Path(__file__).parent / "fixtures"
SETTINGS = dict(dim=8, query_maxlen=12, doc_maxlen=16)
DOCS = {
    "cat": "The cat sat on the mat and purred.",
    "tokyo": "Tokyo is the capital city of Japan.",
    "hamlet": "Hamlet is a tragedy written by William Shakespeare.",
    "fuji": "Mount Fuji is the highest mountain in Japan.",
    "river": "The Nile is a long river in Africa.",
    "bread": "Bread is baked from flour, water and yeast.",
    "moon": "The Moon orbits the Earth once a month.",
    "violin": "A violin has four strings and is played with a bow.",
}
# qid -> (native query, English translation, relevant docno)
TOPICS = {
    "q1": ("猫はどこに座った", "where did the cat sit", "cat"),
    "q2": ("日本の首都", "capital of Japan", "tokyo"),
    "q3": ("ハムレットの作者", "who wrote Hamlet", "hamlet"),
    "q4": ("月の軌道", "the orbit of the Moon", "moon"),
}


def make_model(folder: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    model = ColBERT.from_pretrained(tiny_xlmr_folder(folder / "encoder", seed=seed), device="cpu", **SETTINGS)
    model.save_pretrained(folder / "colbert")
    return folder / "colbert"


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    return make_model(tmp_path_factory.mktemp("tiny"), seed=1)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A documents file, native and English topics files, a translation table and TREC qrels."""
    root = tmp_path_factory.mktemp("files")
    with open(root / "docs.jsonl", "w", encoding="utf-8") as f:
        for docno, text in DOCS.items():
            f.write(json.dumps({"doc_id": docno, "title": "", "text": text}) + "\n")
    (root / "topics.tsv").write_text("qid\tquery\tlang\n" + "".join(f"{q}\t{n}\tja\n" for q, (n, _, _) in
                                                                   TOPICS.items()), encoding="utf-8")
    (root / "english.tsv").write_text("".join(f"{q}\t{e}\n" for q, (_, e, _) in TOPICS.items()), encoding="utf-8")
    (root / "mt.tsv").write_text("".join(f"{n}\t{e}\n" for n, e, _ in TOPICS.values()), encoding="utf-8")
    (root / "qrels.txt").write_text("".join(f"{q} 0 {d} 1\n" for q, (_, _, d) in TOPICS.items()))
    return root


@pytest.fixture(scope="module")
def index(tmp_path_factory, model_folder, files):
    path = tmp_path_factory.mktemp("index") / "docs.colbert"
    code, _, _ = run_cli(["index", "--model", str(model_folder), "--docs", str(files / "docs.jsonl"), "--output",
                          str(path), "--nbits", "16", "--quiet"])
    assert code == 0
    return path


def run_cli(argv, capsys=None):
    """(exit status, stdout, stderr) of ``clirkd argv`` run in this process."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr() if capsys is not None else ("", "")
    return code, out, err


def hand_scores(model, query: str) -> dict:
    """MaxSim of the query against every document, from the model's own vectors, with plain numpy."""
    Q = model.encode_queries([query])[0]
    return {docno: float((Q @ D.T).max(axis=1).sum()) for docno, D in zip(DOCS, model.encode_docs(list(DOCS.values())))}


# ---------------------------------------------------------------------- help and errors
@pytest.mark.parametrize("command", ["index", "retrieve", "evaluate"])
def test_help(command, capsys):
    code, out, _ = run_cli([command, "--help"], capsys)
    assert code == 0
    assert f"usage: clirkd {command}" in out and "--output" in out


def one_line_error(capsys, argv, command: str, *fragments: str) -> str:
    code, _, err = run_cli(argv, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0
    assert len(lines) == 1, err
    assert lines[0].startswith(f"clirkd {command}: error: ") and "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def test_index_errors(tmp_path, capsys, model_folder, files, index):
    base = ["index", "--model", model_folder, "--quiet"]
    one_line_error(capsys, base + ["--docs", files / "docs.jsonl"], "index", "--output")  # required argument
    one_line_error(capsys, base + ["--docs", files / "docs.jsonl", "--output", tmp_path / "x", "--nbits", "3"],
                   "index", "invalid choice: 3")
    one_line_error(capsys, base + ["--docs", tmp_path / "missing.tsv", "--output", tmp_path / "x"], "index",
                   "missing.tsv: no such file")
    one_line_error(capsys, base + ["--docs", files / "docs.jsonl", "--output", index], "index", "already exists",
                   "--overwrite")
    one_line_error(capsys, base + ["--docs", files / "docs.jsonl", "--output", tmp_path / "x", "--fields", "body"],
                   "index", "no field 'body'")
    one_line_error(capsys, base + ["--docs", files / "qrels.txt", "--output", tmp_path / "x"], "index",
                   ".jsonl or .tsv")
    (tmp_path / "bad.tsv").write_text("d1\tfine text\nd2\n")
    one_line_error(capsys, base + ["--docs", tmp_path / "bad.tsv", "--output", tmp_path / "x"], "index",
                   "bad.tsv:2", "found 1")
    one_line_error(capsys, base + ["--dataset", "irds:no-such-thing", "--output", tmp_path / "x"], "index",
                   "unknown dataset 'irds:no-such-thing'")
    assert not (tmp_path / "x").exists()


def test_retrieve_errors(tmp_path, capsys, files, index):
    base = ["retrieve", "--topics", files / "topics.tsv", "--quiet"]
    one_line_error(capsys, base + ["--index", tmp_path / "none", "--output", tmp_path / "r.trec"], "retrieve",
                   "not a ColBERT index")
    one_line_error(capsys, base + ["--index", index, "--output", tmp_path / "r.csv"], "retrieve", ".trec or .tsv")
    one_line_error(capsys, base + ["--index", index, "--output", tmp_path / "r.trec", "-k", "0"], "retrieve",
                   "--num-results must be at least 1")
    one_line_error(capsys, base + ["--index", index, "--output", tmp_path / "r.trec", "--mt-field", "query_en"],
                   "retrieve", "no column 'query_en'")
    one_line_error(capsys, base + ["--index", index, "--output", tmp_path / "r.trec", "--mt-table", files / "mt.tsv",
                                   "--mt-field", "x"], "retrieve", "not allowed with argument")
    one_line_error(capsys, base + ["--index", index, "--output", tmp_path / "r.trec", "--mt-table",
                                   files / "english.tsv"], "retrieve", "4 of 4 queries have no translation")
    other = make_model(tmp_path / "other", seed=2)  # a model whose queries are not for this index's passages
    capsys.readouterr()
    one_line_error(capsys, base + ["--index", index, "--output", tmp_path / "r.trec", "--query-model", other],
                   "retrieve", "cannot search")
    one_line_error(capsys, ["retrieve", "--index", index, "--topics", tmp_path / "none.tsv", "--output",
                            tmp_path / "r.trec"], "retrieve", "no such topics file")
    assert not (tmp_path / "r.trec").exists()


def test_evaluate_errors(tmp_path, capsys, files):
    run = tmp_path / "run.trec"
    run.write_text("q1 Q0 cat 0 1.0 x\n")
    debian = ["--dataset", "irds:clirkd-mini/debian-faq"]
    one_line_error(capsys, ["evaluate", "--run", tmp_path / "none.trec"] + debian, "evaluate", "no such run file")
    one_line_error(capsys, ["evaluate", "--run", run, "--metrics", "Foo@3"] + debian, "evaluate",
                   "unknown measure 'Foo@3'")
    one_line_error(capsys, ["evaluate", "--run", run] + debian, "evaluate", "no results for any query")
    faq_run = tmp_path / "faq.trec"
    faq_run.write_text("ja-whatisfaq Q0 whatisfaq 0 1.0 x\n")
    one_line_error(capsys, ["evaluate", "--run", faq_run, "--metrics", "R@2kt"] + debian, "evaluate",
                   "has no questions with answers")
    one_line_error(capsys, ["evaluate", "--run", run, "--qrels", files / "qrels.txt", "--per-language"], "evaluate",
                   "need --dataset")
    one_line_error(capsys, ["evaluate", "--run", run, "--dataset", "irds:xor-tydi/dev"], "evaluate",
                   "has no relevance judgements")
    (tmp_path / "bad.tsv").write_text("qid\tdocno\nq1\tcat\n")
    one_line_error(capsys, ["evaluate", "--run", tmp_path / "bad.tsv"] + debian, "evaluate", "rank, score")


def test_the_installed_command_fails_in_one_line():
    """The console entry point itself: a bad input is one line on stderr and status 1, with no traceback."""
    result = subprocess.run([sys.executable, "-m", "pyterrier_clirkd.cli", "evaluate", "--run", "no-such-run.trec",
                             "--dataset", "irds:clirkd-mini/debian-faq"], capture_output=True, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip() == "clirkd evaluate: error: no-such-run.trec: no such run file"


# ---------------------------------------------------------------------- end to end
def test_index_retrieve_evaluate(tmp_path, capsys, model_folder, files, index):
    model = ColBERT.from_pretrained(model_folder, device="cpu")
    code, out, _ = run_cli(["retrieve", "--index", index, "--topics", files / "topics.tsv", "--output",
                            tmp_path / "native.trec", "-k", 3, "--exhaustive", "--quiet"], capsys)
    assert code == 0 and "wrote 12 results for 4 of 4 queries" in out
    run = read_run(tmp_path / "native.trec")
    assert list(run.columns) == ["qid", "docno", "rank", "score"] and len(run) == 12
    for qid, (native, _, _) in TOPICS.items():
        hand = hand_scores(model, native)
        rows = run[run["qid"] == qid]
        assert list(rows["rank"]) == [0, 1, 2]
        for docno, score in zip(rows["docno"], rows["score"]):  # float16 storage: a small rounding error
            assert score == pytest.approx(hand[docno], abs=0.02)
        assert rows["score"].min() >= sorted(hand.values())[-4] - 0.02  # no better document was left out

    # MT by table >> the same retriever gives exactly the run of the English queries
    code, _, _ = run_cli(["retrieve", "--index", index, "--topics", files / "topics.tsv", "--mt-table",
                          files / "mt.tsv", "--output", tmp_path / "mt.tsv", "-k", 3, "--quiet"], capsys)
    code_en, _, _ = run_cli(["retrieve", "--index", index, "--topics", files / "english.tsv", "--output",
                             tmp_path / "english.tsv", "-k", 3, "--quiet"], capsys)
    assert code == code_en == 0
    pd.testing.assert_frame_equal(read_run(tmp_path / "mt.tsv"), read_run(tmp_path / "english.tsv"))

    # evaluate: RR@10 and R@2 against the qrels, by hand from the run files (ranks start at 0)
    code, out, _ = run_cli(["evaluate", "--run", tmp_path / "native.trec", tmp_path / "mt.tsv", "--qrels",
                            files / "qrels.txt", "--metrics", "RR@10", "R@2", "--output", tmp_path / "res.csv"], capsys)
    assert code == 0
    table = pd.read_csv(tmp_path / "res.csv")
    assert list(table.columns) == ["name", "RR@10", "R@2"] and list(table["name"]) == ["native", "mt"]
    for name, path in (("native", "native.trec"), ("mt", "mt.tsv")):
        found = read_run(tmp_path / path).set_index(["qid", "docno"])["rank"]
        ranks = [found.get((q, d)) for q, (_, _, d) in TOPICS.items()]
        row = table.set_index("name").loc[name]
        assert row["RR@10"] == pytest.approx(np.mean([0 if r is None else 1 / (r + 1) for r in ranks]))
        assert row["R@2"] == pytest.approx(np.mean([r is not None and r < 2 for r in ranks]))
        assert name in out


def test_bundled_dataset_per_language(tmp_path, capsys, model_folder):
    """Index the Debian FAQ's text (not its titles), retrieve its ja and ru topics through their human translations,
    and check the per-language table against RR@10 computed from the run by hand."""
    code, out, _ = run_cli(["index", "--model", model_folder, "--dataset", "irds:clirkd-mini/debian-faq", "--fields",
                            "text", "--output", tmp_path / "faq.colbert", "--quiet"], capsys)
    assert code == 0 and "indexed 148 passages" in out
    topics = tmp_path / "topics.tsv"
    full = read_topics("irds:clirkd-mini/debian-faq")
    full[full["lang"].isin(["ja", "ru"])].to_csv(topics, sep="\t", index=False)
    code, _, _ = run_cli(["retrieve", "--index", tmp_path / "faq.colbert", "--topics", topics, "--mt-field",
                          "query_en", "--output", tmp_path / "run.trec", "-k", 10, "--quiet"], capsys)
    assert code == 0
    code, out, err = run_cli(["evaluate", "--run", tmp_path / "run.trec", "--dataset", "irds:clirkd-mini/debian-faq",
                              "--metrics", "RR@10", "--per-language", "--output", tmp_path / "res.csv"], capsys)
    assert code == 0 and "results for 221 of 331 queries" in err  # the ko queries were not run: they count as 0
    table = pd.read_csv(tmp_path / "res.csv")
    assert list(table.columns) == ["name", "RR@10 ja", "RR@10 ko", "RR@10 ru", "RR@10 macro"]
    run = read_run(tmp_path / "run.trec")
    qrels = pt.get_dataset("irds:clirkd-mini/debian-faq").get_qrels()
    hits = qrels.merge(run, on=["qid", "docno"], how="left")
    hits["rr"] = (1 / (hits["rank"] + 1)).fillna(0.0)
    hits["lang"] = hits["qid"].str[:2]
    expected = hits.groupby("lang")["rr"].mean()
    assert table["RR@10 ko"][0] == 0.0
    for lang in ("ja", "ru"):
        assert table[f"RR@10 {lang}"][0] == pytest.approx(expected[lang])
    assert table["RR@10 macro"][0] == pytest.approx(expected.mean())


def test_recall_at_tokens_from_the_answers(tmp_path, capsys, monkeypatch):
    """R@2kt of a hand-written run on XOR-TyDi dev over the three fixture passages: one Telugu question answered
    (Portland is in passage 3), one not (passage 2 is about Mount Fuji), every other question missing (0)."""
    monkeypatch.setenv("CLIRKD_XOR_TYDI_DIR", str(FIXTURES / "xor-tydi"))
    monkeypatch.setenv("IR_DATASETS_HOME", str(tmp_path / "irds"))
    questions = pt.get_dataset("irds:xor-tydi/dev/te").get_topics().set_index("qid")["answers"]
    assert questions["-1018987027025691298"] == ("Portland", "Portland")
    assert questions["-1024677970375145871"] == ("Indian subcontinent", "England")
    (tmp_path / "run.tsv").write_text("qid\tdocno\trank\tscore\n-1018987027025691298\t3\t0\t2.0\n"
                                      "-1024677970375145871\t2\t0\t1.0\n")
    code, out, err = run_cli(["evaluate", "--run", tmp_path / "run.tsv", "--dataset", "irds:xor-tydi/dev",
                              "--metrics", "R@2kt", "R@5kt", "--per-language", "--output", tmp_path / "res.csv"],
                             capsys)
    assert code == 0, err
    table = pd.read_csv(tmp_path / "res.csv").iloc[0]
    assert table["R@2kt te"] == pytest.approx(1 / 238) and table["R@5kt te"] == pytest.approx(1 / 238)
    assert table["R@2kt ja"] == 0.0 and table["R@2kt macro"] == pytest.approx(1 / 238 / 7)
    code, out, _ = run_cli(["evaluate", "--run", tmp_path / "run.tsv", "--dataset", "irds:xor-tydi/dev/te",
                            "--metrics", "R@2kt"], capsys)
    assert code == 0 and f"{1 / 238:.4f}" in out


# ---------------------------------------------------------------------- files
def test_document_layouts(tmp_path):
    (tmp_path / "plain.tsv").write_text("d1\tfirst text\tTitle one\nd2\tsecond text\n")
    assert list(read_docs(tmp_path / "plain.tsv")) == [
        {"docno": "d1", "text": "first text", "title": "Title one"}, {"docno": "d2", "text": "second text"}]
    with gzip.open(tmp_path / "dpr.tsv.gz", "wt") as f:
        f.write('id\ttext\ttitle\n7\t"He said ""hi"" twice"\tGreeting\n')
    assert list(read_docs(tmp_path / "dpr.tsv.gz")) == [{"docno": "7", "text": 'He said "hi" twice', "title": "Greeting"}]
    (tmp_path / "docs.jsonl").write_text('{"id": 5, "text": "five"}\n\n{"docno": "six", "text": "six", "x": 1}\n')
    assert list(read_docs(tmp_path / "docs.jsonl")) == [{"text": "five", "docno": "5"},
                                                         {"text": "six", "x": 1, "docno": "six"}]
    (tmp_path / "bad.jsonl").write_text('{"text": "no id"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:1: the document has no docno"):
        list(read_docs(tmp_path / "bad.jsonl"))


def test_fields_make_the_indexed_text(tmp_path):
    faq = "irds:clirkd-mini/debian-faq"
    first = next(iter(pt.get_dataset(faq).get_corpus_iter(verbose=False)))
    assert next(iter(SizedDocs(faq, None, fields=["text"]))) == {"docno": first["docno"], "text": first["text"]}
    assert next(iter(SizedDocs(faq, None)))["text"] == f"{first['title']} | {first['text']}"
    assert len(SizedDocs(faq, None, fields=["text"])) == 148
    (tmp_path / "d.tsv").write_text("a\tx\tT\nb\ty\nc\tz\t\n")
    assert [d["text"] for d in SizedDocs(None, tmp_path / "d.tsv")] == ["T | x", "y", "z"]
    with pytest.raises(IndexInputError, match="document 1 \\('b'\\) has no field 'title'"):
        list(SizedDocs(None, tmp_path / "d.tsv", fields=["title", "text"]))


def test_runs_round_trip(tmp_path):
    run = pd.DataFrame({"qid": ["q1", "q1", "q2"], "docno": ["a", "b", "c"], "rank": [0, 1, 0],
                        "score": [2.5, 1.25, 0.5], "query": ["x", "x", "y"]})
    for name, fmt in (("run.trec", "trec"), ("run.tsv.gz", "tsv")):
        write_run(run, tmp_path / name, fmt)
        pd.testing.assert_frame_equal(read_run(tmp_path / name), run[["qid", "docno", "rank", "score"]])
    with pytest.raises(ValueError, match="white space.*tsv"):
        write_run(run.assign(docno=["a b", "b", "c"]), tmp_path / "bad.trec", "trec")
    (tmp_path / "topics.tsv").write_text("q1\tfirst query\tja\nq2\tsecond query\tko\n")
    assert read_topics(str(tmp_path / "topics.tsv")).to_dict("list") == {
        "qid": ["q1", "q2"], "query": ["first query", "second query"], "lang": ["ja", "ko"]}
