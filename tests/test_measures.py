"""Recall@Nkt against hand-worked cases of the official semantics, and the per-language table."""
import ir_measures
import pandas as pd
import pyterrier as pt
import pytest

import pyterrier_clirkd as clirkd
from pyterrier_clirkd.measures import R2kt, R5kt, cut_string, per_language, recall_at_tokens, tokenize


def answers(*rows) -> pd.DataFrame:
    """rows: (qid, [answers], lang)"""
    return pd.DataFrame(rows, columns=["qid", "answers", "lang"])


def run(*rows) -> pd.DataFrame:
    """rows: (qid, docno, text), listed in rank order per query"""
    frame = pd.DataFrame(rows, columns=["qid", "docno", "text"])
    frame["rank"] = frame.groupby("qid").cumcount()
    frame["score"] = -frame["rank"].astype(float)
    return frame


def values(measure, qrels: pd.DataFrame, results: pd.DataFrame) -> dict:
    results = pt.model.to_ir_measures(results)
    if len(results) == 0:
        results = pd.DataFrame(columns=["query_id", "doc_id", "score"])
    return {m.query_id: m.value for m in ir_measures.iter_calc([measure], pt.model.to_ir_measures(qrels), results)}


def test_names_and_official_cut_points():
    assert (str(R2kt), str(R5kt)) == ("R@2kt", "R@5kt")
    words = " ".join(f"w{i}" for i in range(6000))                      # 6,000 tokens, one passage
    qrels = answers(("at2000", ["w1999"], "ja"), ("at2001", ["w2000"], "ja"), ("at5000", ["w4999"], "ja"),
                    ("at5001", ["w5000"], "ja"))
    results = run(*[(q, "d", words) for q in qrels["qid"]])
    assert values(R2kt, qrels, results) == {"at2000": 1.0, "at2001": 0.0, "at5000": 0.0, "at5001": 0.0}
    assert values(R5kt, qrels, results) == {"at2000": 1.0, "at2001": 1.0, "at5000": 1.0, "at5001": 0.0}


def test_tokeniser_keeps_sentence_final_periods_inside_a_passage():
    # the documented difference from nltk.word_tokenize with Punkt, which gives "home" "." for the first sentence
    assert tokenize('He said "go home." She stayed.') == ["He", "said", "``", "go", "home.", "''", "She", "stayed", "."]
    assert tokenize("It costs $3.50, doesn't it?") == ["It", "costs", "$", "3.50", ",", "does", "n't", "it", "?"]


def test_cut_string_crosses_passages_and_stops_exactly_at_the_limit():
    passages = ["Tokyo is the capital of Japan.", "Osaka is in Kansai.", "never read"]
    assert cut_string(passages, 8) == "Tokyo is the capital of Japan . Osaka"
    assert cut_string(passages, 100) == "Tokyo is the capital of Japan . Osaka is in Kansai . never read"
    assert cut_string([], 5) == ""
    with_empty = ["Tokyo is the capital of Japan.", "", "Osaka is in Kansai."]
    tokens = "Tokyo is the capital of Japan . Osaka is in Kansai .".split()
    assert [cut_string(with_empty, n) for n in range(13)] == [" ".join(tokens[:n]) for n in range(13)]


def test_an_answer_crossing_a_passage_boundary_is_found():
    qrels = answers(("q", ["New York City"], "en"))
    results = run(("q", "d1", "He moved to New"), ("q", "d2", "York City in 1990"))
    assert values(recall_at_tokens(6), qrels, results) == {"q": 1.0}      # "He moved to New York City"
    assert values(recall_at_tokens(5), qrels, results) == {"q": 0.0}      # "He moved to New York": cut off


def test_an_answer_cut_at_the_token_limit():
    qrels = answers(("q", ["Kansai airport"], "ja"))
    results = run(("q", "d1", "Flights land at Kansai airport daily"))
    assert values(recall_at_tokens(5), qrels, results) == {"q": 1.0}      # tokens 4-5 of 5
    assert values(recall_at_tokens(4), qrels, results) == {"q": 0.0}      # only "Kansai" left


def test_matching_is_a_case_sensitive_substring():
    qrels = answers(("lower", ["tokyo"], "ja"), ("part", ["Tok"], "ja"), ("tokens", ["Japan ."], "ja"),
                    ("raw", ["Japan."], "ja"))
    results = run(*[(q, "d", "Tokyo is in Japan.") for q in qrels["qid"]])
    # matched against the joined tokens "Tokyo is in Japan ." (no word boundaries, no normalisation)
    assert values(R2kt, qrels, results) == {"lower": 0.0, "part": 1.0, "tokens": 1.0, "raw": 0.0}


def test_yes_and_no_answers_are_dropped():
    dropped = answers(("q", ["no", "Osaka"], "ja"))
    assert values(R2kt, dropped, run(("q", "d", "no, it is not"))) == {"q": 0.0}
    assert values(R2kt, dropped, run(("q", "d", "It is Osaka"))) == {"q": 1.0}
    with pytest.raises(ValueError, match="no answer to match besides yes/no"):
        values(R2kt, answers(("q", ["yes"], "ja")), run(("q", "d", "yes")))


def test_empty_run_and_missing_questions_count_as_misses():
    qrels = answers(("q1", ["Tokyo"], "ja"), ("q2", ["Osaka"], "ja"), ("q3", ["Kyoto"], "ko"))
    assert values(R5kt, qrels, run()) == {"q1": 0.0, "q2": 0.0, "q3": 0.0}
    results = run(("q1", "d", "Tokyo"))
    assert values(R5kt, qrels, results) == {"q1": 1.0, "q2": 0.0, "q3": 0.0}
    aggregate = ir_measures.calc_aggregate([R5kt], pt.model.to_ir_measures(qrels), pt.model.to_ir_measures(results))
    assert aggregate[R5kt] == pytest.approx(1 / 3)


def test_rank_order_comes_from_the_scores():
    qrels = answers(("q", ["Osaka"], "ja"))
    results = pd.DataFrame({"qid": ["q", "q"], "docno": ["low", "high"], "text": ["Osaka", "Tokyo Tokyo"],
                            "score": [1.0, 2.0]})
    assert values(recall_at_tokens(2), qrels, results) == {"q": 0.0}      # "Tokyo Tokyo" comes first
    assert values(recall_at_tokens(3), qrels, results) == {"q": 1.0}


def test_clear_errors():
    with pytest.raises(ValueError, match="pt.text.get_text"):
        values(R2kt, answers(("q", ["Tokyo"], "ja")), run(("q", "d", "Tokyo")).drop(columns=["text"]))
    with pytest.raises(ValueError, match="answers as qrels"):
        values(R2kt, pd.DataFrame({"qid": ["q"], "docno": ["d"], "label": [1]}), run(("q", "d", "Tokyo")))
    with pytest.raises(ValueError, match="several rows"):
        values(R2kt, answers(("q", ["a"], "ja"), ("q", ["b"], "ja")), run(("q", "d", "a")))
    with pytest.raises(ValueError, match="positive"):
        recall_at_tokens(0)


# Per-language table, worked out by hand: ja 2 of 3 hits, ko 0 of 1, ru 1 of 2 (q6 retrieved nothing).
TOPICS = pd.DataFrame({"qid": [f"q{i}" for i in range(1, 7)], "query": ["x"] * 6,
                       "lang": ["ja", "ja", "ja", "ko", "ru", "ru"]})
ANSWERS = answers(("q1", ["Tokyo"], "ja"), ("q2", ["Kyoto"], "ja"), ("q3", ["Nara"], "ja"),
                  ("q4", ["Seoul"], "ko"), ("q5", ["Moscow"], "ru"), ("q6", ["Kazan"], "ru"))
SYSTEM_A = run(("q1", "d1", "Tokyo"), ("q2", "d2", "Kyoto"), ("q3", "d3", "Osaka"),
               ("q4", "d4", "Busan"), ("q5", "d5", "Moscow"))
SYSTEM_B = run(("q1", "d1", "Tokyo"), ("q2", "d2", "no"), ("q3", "d3", "no"),
               ("q4", "d4", "Seoul"), ("q5", "d5", "no"), ("q6", "d6", "Kazan"))


def test_experiment_with_the_answers_frame():
    result = pt.Experiment([SYSTEM_A, SYSTEM_B], TOPICS, ANSWERS, [R5kt], names=["A", "B"])
    assert result.set_index("name")["R@5kt"].to_dict() == pytest.approx({"A": 3 / 6, "B": 3 / 6})


def test_per_language_matches_the_hand_computed_table():
    table = per_language([SYSTEM_A, SYSTEM_B], TOPICS, ANSWERS, [R2kt, R5kt], names=["A", "B"])
    assert list(table.columns) == ["name", "R@2kt ja", "R@2kt ko", "R@2kt ru", "R@2kt macro",
                                   "R@5kt ja", "R@5kt ko", "R@5kt ru", "R@5kt macro"]
    a, b = table.set_index("name").loc["A"], table.set_index("name").loc["B"]
    assert (a["R@5kt ja"], a["R@5kt ko"], a["R@5kt ru"]) == pytest.approx((2 / 3, 0.0, 1 / 2))
    assert a["R@5kt macro"] == pytest.approx((2 / 3 + 0 + 1 / 2) / 3)      # 0.3889, not the 3/6 of all questions
    assert (b["R@5kt ja"], b["R@5kt ko"], b["R@5kt ru"], b["R@5kt macro"]) == pytest.approx((1 / 3, 1, 1 / 2, 11 / 18))
    assert b["R@2kt macro"] == b["R@5kt macro"]


def test_per_language_keeps_the_systems_in_the_order_given():
    table = per_language([SYSTEM_B, SYSTEM_A], TOPICS, ANSWERS, [R5kt], names=["zeta", "alpha"])
    assert list(table["name"]) == ["zeta", "alpha"]
    assert table.iloc[0]["R@5kt macro"] == pytest.approx(11 / 18)           # zeta is system B
    by_key = per_language({"zeta": SYSTEM_B, "alpha": SYSTEM_A}, TOPICS, ANSWERS, [R5kt])
    assert list(by_key["name"]) == ["zeta", "alpha"]


def test_per_language_takes_languages_from_the_answers_and_skips_unscored_topics():
    topics = TOPICS.drop(columns=["lang"])
    table = per_language([SYSTEM_A], topics, ANSWERS[ANSWERS["qid"] != "q6"], [R5kt], names=["A"])
    assert table.iloc[0]["R@5kt ru"] == 1.0                                 # q6 has no answers: not scored
    with pytest.raises(ValueError, match="'lang' column"):
        per_language([SYSTEM_A], topics, ANSWERS.drop(columns=["lang"]), [R5kt])


def test_per_language_with_qrels_and_standard_measures():
    qrels = pd.DataFrame({"qid": ["q1", "q2", "q3", "q4"], "docno": ["d1", "d9", "d3", "d4"], "label": [1] * 4})
    topics = TOPICS[TOPICS["qid"].isin(qrels["qid"])]
    results = run(("q1", "d1", ""), ("q2", "d0", ""), ("q2", "d9", ""), ("q3", "d5", ""), ("q4", "d7", ""),
                  ("q4", "d4", ""))
    table = per_language([results], topics, qrels, [ir_measures.RR @ 10, ir_measures.R @ 1], names=["S"]).iloc[0]
    # RR: q1 1, q2 1/2, q3 0 -> ja 1/2; q4 1/2 -> ko 1/2
    assert (table["RR@10 ja"], table["RR@10 ko"], table["RR@10 macro"]) == pytest.approx((0.5, 0.5, 0.5))
    assert (table["R@1 ja"], table["R@1 ko"], table["R@1 macro"]) == pytest.approx((1 / 3, 0, 1 / 6))


def test_experiment_with_a_pipeline_that_fetches_passage_text():
    # a tiny retriever over the bundled Debian FAQ, with the text added by pt.text.get_text as in real use
    faq = pt.get_dataset("irds:clirkd-mini/debian-faq")
    retrieved = {"ja": ["whatisdebian", "whatisfaq"], "ko": ["whatisfaq"]}
    topics = pd.DataFrame({"qid": ["ja", "ko"], "query": ["Debian とは?", "FAQ"], "lang": ["ja", "ko"]})
    retriever = pt.apply.generic(lambda q: pd.DataFrame(
        [(row.qid, row.query, d, 10.0 - i, i) for row in q.itertuples() for i, d in enumerate(retrieved[row.qid])],
        columns=["qid", "query", "docno", "score", "rank"]))
    pipeline = retriever >> pt.text.get_text(faq, "text")
    founders = answers(("ja", ["Ian Murdock"], "ja"), ("ko", ["Ian Murdock"], "ko"))
    result = pt.Experiment([pipeline], topics, founders, [clirkd.measures.R5kt], names=["faq"])
    assert result.iloc[0]["R@5kt"] == 0.5           # "whatisdebian" names Debian's founder, "whatisfaq" does not
