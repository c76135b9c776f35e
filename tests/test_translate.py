import gzip
import sqlite3
from pathlib import Path

import pandas as pd
import pyterrier as pt
import pytest
import transformers

import pyterrier_clirkd as clirkd
from pyterrier_clirkd.translate import (NLLB_CODES, MTQueryRewriter, PerLanguageTranslator, Seq2SeqTranslator,
                                        TableTranslator, TranslationCache)

import tiny_mt

DECODING = dict(num_beams=2, max_new_tokens=8)
JA = ["2018年アメリカで一番治安の悪い州はどこ", "嗜好する音楽のジャンルと学業パフォーマンスに関連性はある？", "誰"]
RU = ["Кто написал Гамлета?", "Когда родился Пушкин?"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="session")
def corpus():
    return tiny_mt.corpus()


@pytest.fixture(scope="session")
def nllb(tmp_path_factory, corpus):
    return tiny_mt.nllb_folder(tmp_path_factory.mktemp("mt") / "nllb", corpus)


@pytest.fixture(scope="session")
def mbart50(tmp_path_factory, corpus):
    return tiny_mt.mbart50_folder(tmp_path_factory.mktemp("mt") / "mbart50", corpus)


@pytest.fixture(scope="session")
def m2m100(tmp_path_factory, corpus):
    pytest.importorskip("sentencepiece", reason="M2M100's tokenizer needs the 'mt' extra (sentencepiece)")
    return tiny_mt.m2m100_folder(tmp_path_factory.mktemp("mt") / "m2m100", corpus)


@pytest.fixture(scope="session")
def marian(tmp_path_factory, corpus):
    pytest.importorskip("sentencepiece", reason="Marian's tokenizer needs the 'mt' extra (sentencepiece)")
    root = tmp_path_factory.mktemp("mt")
    return {"ja": tiny_mt.marian_folder(root / "opus-mt-ja-en", corpus, "ja", seed=1),
            "ru": tiny_mt.marian_folder(root / "opus-mt-ru-en", corpus, "ru", seed=2)}


def topics(**columns) -> pd.DataFrame:
    queries = JA + RU
    frame = pd.DataFrame({"qid": [f"q{i}" for i in range(len(queries))], "query": queries,
                          "lang": ["ja"] * len(JA) + ["ru"] * len(RU), "answers": [["a"]] * len(queries)})
    return frame.assign(**columns)


def generate_one_by_one(folder: Path, texts: list[str], src_code=None, english_token=None) -> list[str]:
    """The translations by calling ``model.generate`` text by text, with the source code set on the tokenizer
    and the English token forced first."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.AutoModelForSeq2SeqLM.from_pretrained(folder).eval()
    if src_code is not None:
        tokenizer.src_lang = src_code
    english_id = None
    if english_token is not None:
        english_id = (tokenizer.get_lang_id(english_token) if hasattr(tokenizer, "get_lang_id")
                      else tokenizer.convert_tokens_to_ids(english_token))
    results = []
    for text in texts:
        inputs = tokenizer(text, return_tensors="pt")
        if src_code is not None:  # NLLB, M2M100 and mBART-50 put the source language token first
            assert tokenizer.convert_ids_to_tokens(int(inputs["input_ids"][0, 0])) in (src_code, f"__{src_code}__")
        kwargs = dict(DECODING) if english_id is None else dict(DECODING, forced_bos_token_id=english_id)
        output = model.generate(**inputs, **kwargs)[0]
        assert int(output[0]) == model.config.decoder_start_token_id
        if english_id is not None:
            assert int(output[1]) == english_id
        skip = 1 if english_id is None else 2
        results.append(tokenizer.decode(output[skip:], skip_special_tokens=True).strip())
    return results


def check_rewritten(out: pd.DataFrame, inp: pd.DataFrame, expected: list[str]) -> None:
    assert list(out.columns) == ["qid", "query", "query_0", "lang", "answers"]
    assert out["query"].tolist() == expected
    assert out["query_0"].tolist() == inp["query"].tolist()
    assert out["qid"].tolist() == inp["qid"].tolist()
    assert out["lang"].tolist() == inp["lang"].tolist()
    assert out["answers"].tolist() == inp["answers"].tolist()


def test_nllb_uses_flores_codes_and_forces_english(nllb):
    inp = topics()
    out = MTQueryRewriter.from_pretrained(nllb, **DECODING)(inp)
    expected = (generate_one_by_one(nllb, JA, "jpn_Jpan", "eng_Latn")
                + generate_one_by_one(nllb, RU, "rus_Cyrl", "eng_Latn"))
    check_rewritten(out, inp, expected)
    assert any(expected) and len(set(expected)) > 1  # the random model's output does depend on its input
    own_codes = topics(lang=["jpn_Jpan"] * len(JA) + ["rus_Cyrl"] * len(RU))  # NLLB's own codes work too
    assert MTQueryRewriter.from_pretrained(nllb, **DECODING)(own_codes)["query"].tolist() == expected


def test_m2m100_uses_plain_codes(m2m100):
    inp = topics()
    out = MTQueryRewriter.from_pretrained(m2m100, **DECODING)(inp)
    expected = generate_one_by_one(m2m100, JA, "ja", "en") + generate_one_by_one(m2m100, RU, "ru", "en")
    check_rewritten(out, inp, expected)
    assert not any("__en__" in text for text in out["query"])


def test_mbart50_uses_its_codes(mbart50):
    inp = topics()
    out = MTQueryRewriter.from_pretrained(mbart50, **DECODING)(inp)
    expected = generate_one_by_one(mbart50, JA, "ja_XX", "en_XX") + generate_one_by_one(mbart50, RU, "ru_RU", "en_XX")
    check_rewritten(out, inp, expected)


def test_marian_one_model_per_language(marian):
    inp = topics()
    mt = MTQueryRewriter.from_pretrained(marian, **DECODING)
    assert isinstance(mt.translator, PerLanguageTranslator)
    expected = generate_one_by_one(marian["ja"], JA) + generate_one_by_one(marian["ru"], RU)
    check_rewritten(mt(inp), inp, expected)
    assert expected[:len(JA)] != generate_one_by_one(marian["ru"], JA)  # each language went to its own model
    with pytest.raises(ValueError, match=r"no translation model for 'ko'.*\['ja', 'ru'\]"):
        mt(topics(lang="ko"))


def test_marian_single_pair_with_fixed_or_absent_language(marian):
    inp = topics().iloc[:len(JA)].drop(columns=["lang"])
    expected = generate_one_by_one(marian["ja"], JA)
    assert MTQueryRewriter.from_pretrained(marian["ja"], **DECODING)(inp)["query"].tolist() == expected
    assert MTQueryRewriter.from_pretrained(marian["ja"], src_lang="ja", **DECODING)(inp)["query"].tolist() == expected
    with pytest.raises(ValueError, match=r"opus-mt-ja-en translates from 'ja', not 'ru'"):
        MTQueryRewriter.from_pretrained(marian["ja"], src_lang="ru", **DECODING)(inp)


def test_unsupported_language_names_language_and_model(nllb, m2m100):
    for folder in (nllb, m2m100):
        mt = MTQueryRewriter.from_pretrained(folder, **DECODING)
        with pytest.raises(ValueError, match=rf"{folder.name} cannot translate from 'tlh'"):
            mt(topics(lang="tlh"))
        with pytest.raises(ValueError, match="needs each query's source language"):
            mt(topics().drop(columns=["lang"]))


def test_nllb_codes_are_flores200_codes():
    from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES
    assert set(NLLB_CODES.values()) <= set(FAIRSEQ_LANGUAGE_CODES)
    xor_tydi = {"ar": "arb_Arab", "bn": "ben_Beng", "fi": "fin_Latn", "ja": "jpn_Jpan", "ko": "kor_Hang",
                "ru": "rus_Cyrl", "te": "tel_Telu", "en": "eng_Latn"}
    assert {lang: NLLB_CODES[lang] for lang in xor_tydi} == xor_tydi


def spy_on_generate(translator: Seq2SeqTranslator) -> list[int]:
    """Records the batch size of each ``generate`` call."""
    calls, generate = [], translator.model.generate

    def recording(**kwargs):
        calls.append(len(kwargs["input_ids"]))
        return generate(**kwargs)
    translator.model.generate = recording
    return calls


def test_batches_sorted_by_length_give_the_same_translations(nllb):
    texts = JA + RU + ["Кто?", "Что такое Москва и где она находится?"]
    one_batch = Seq2SeqTranslator.from_pretrained(nllb, **DECODING)
    batched = Seq2SeqTranslator.from_pretrained(nllb, batch_size=2, **DECODING)
    sizes, seen = spy_on_generate(batched), []
    original_generate = batched._generate
    batched._generate = lambda batch, direction: seen.append(batch) or original_generate(batch, direction)
    assert batched.translate(texts, "ru") == one_batch.translate(texts, "ru")
    assert sizes == [2, 2, 2, 1]
    order = [text for batch in seen for text in batch]
    assert sorted(order) == sorted(texts) and [len(t) for t in order] == sorted(map(len, texts), reverse=True)


def test_memory_cache_and_duplicates(nllb):
    translator = Seq2SeqTranslator.from_pretrained(nllb, **DECODING)
    calls = spy_on_generate(translator)
    mt = MTQueryRewriter(translator)
    doubled = pd.concat([topics(), topics()], ignore_index=True)
    first = mt(doubled)
    assert calls == [len(JA), len(RU)]  # each distinct (language, text) once
    assert first["query"].tolist()[:5] == first["query"].tolist()[5:]
    again = mt(topics())
    assert calls == [len(JA), len(RU)]  # answered from the cache
    assert again["query"].tolist() == first["query"].tolist()[:5]
    translator.translate(JA[:1], "ru")  # the same text in another language is another translation
    assert calls == [len(JA), len(RU), 1]


def test_disk_cache_is_reused_by_a_new_session(nllb, tmp_path):
    path = tmp_path / "cache" / "mt.sqlite"
    first = MTQueryRewriter.from_pretrained(nllb, cache=path, **DECODING)(topics())
    with sqlite3.connect(path) as con:
        rows = con.execute("SELECT lang, text, translation FROM translations ORDER BY lang, text").fetchall()
    assert sorted(rows) == sorted(zip(["ja"] * 3 + ["ru"] * 2, JA + RU, first["query"]))
    reopened = Seq2SeqTranslator.from_pretrained(nllb, cache=path, **DECODING)
    calls = spy_on_generate(reopened)
    assert MTQueryRewriter(reopened)(topics())["query"].tolist() == first["query"].tolist()
    assert calls == []
    other_settings = Seq2SeqTranslator.from_pretrained(nllb, cache=path, num_beams=1, max_new_tokens=8)
    calls = spy_on_generate(other_settings)
    other_settings.translate(JA, "ja")
    assert calls == [len(JA)]  # keyed by the decoding settings too


def test_disk_cache_refuses_a_foreign_file(tmp_path):
    path = tmp_path / "not-a-cache.sqlite"
    path.write_text("hello")
    with pytest.raises(ValueError, match="not a usable translation cache"):
        TranslationCache(path)


def test_english_and_empty_queries(nllb):
    translator = Seq2SeqTranslator.from_pretrained(nllb, **DECODING)
    calls = spy_on_generate(translator)
    inp = pd.DataFrame({"qid": ["1", "2"], "query": ["Who wrote Hamlet?", " "], "lang": ["en", "ja"]})
    out = MTQueryRewriter(translator)(inp)
    assert out["query"].tolist() == ["Who wrote Hamlet?", ""] and calls == []


def test_empty_input_and_inspection(nllb):
    mt = MTQueryRewriter.from_pretrained(nllb, **DECODING)
    empty = mt(pd.DataFrame(columns=["qid", "query", "lang"]))
    assert len(empty) == 0 and list(empty.columns) == ["qid", "query", "query_0", "lang"]
    assert pt.inspect.transformer_outputs(mt, ["qid", "query", "lang"]) == ["qid", "query", "query_0", "lang"]
    assert {a.name: a.value for a in pt.inspect.transformer_attributes(mt)} == {
        "translator": mt.translator, "src_lang": None, "fallback": None}
    assert repr(mt) == (f"MTQueryRewriter(Seq2SeqTranslator.from_pretrained({str(nllb)!r}, num_beams=2, "
                        f"max_new_tokens=8))")
    assert pt.inspect.transformer_inputs(mt) == [["qid", "query"]]
    for wrong in ({"qid": ["1"]}, {"qid": ["1"], "query": ["x"], "docno": ["d1"]}):
        with pytest.raises(pt.validate.InputValidationError):
            mt(pd.DataFrame(wrong))


def test_previous_rewrites_move_along():
    inp = topics(query_0="earlier")
    out = MTQueryRewriter.from_table({"q0": "Which state?"}, key="qid", fallback="original")(inp)
    assert out["query"].tolist() == ["Which state?"] + inp["query"].tolist()[1:]
    assert out["query_0"].tolist() == inp["query"].tolist() and out["query_1"].tolist() == ["earlier"] * len(inp)


# ---------------------------------------------------------------------------------------------- tables
def test_table_by_qid_counts_missing_translations():
    inp = topics()
    table = {"q0": "Which US state was least safe in 2018?", "q3": "Who wrote Hamlet?"}
    with pytest.raises(ValueError, match=r"3 of 5 queries have no translation \(by qid: 'q1', 'q2', 'q4'\)"):
        MTQueryRewriter.from_table(table, key="qid")(inp)
    out = MTQueryRewriter.from_table(table, key="qid", fallback="original")(inp)
    check_rewritten(out, inp, [table["q0"], JA[1], JA[2], table["q3"], RU[1]])


def test_table_from_tsv_and_dataframe(tmp_path):
    inp = topics().iloc[:2]
    path = tmp_path / "mt.tsv"
    path.write_text(f"{JA[0]}\tWhich state?\n{JA[1]}\tIs music related to grades?\n", encoding="utf-8")
    expected = ["Which state?", "Is music related to grades?"]
    assert MTQueryRewriter.from_table(path)(inp)["query"].tolist() == expected
    frame = pd.DataFrame({"qid": ["q0", "q1", "q0"], "query_en": expected + ["a second translation"]})
    assert MTQueryRewriter.from_table(frame, key="qid")(inp)["query"].tolist() == expected
    path.write_text("no tab here\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"mt.tsv:1: expected 'key<TAB>English'"):
        MTQueryRewriter.from_table(path)


def test_table_with_empty_translation_counts_as_missing():
    mt = MTQueryRewriter.from_table(pd.DataFrame({"qid": ["q0", "q1"], "query_en": ["Which state?", ""]}), key="qid")
    with pytest.raises(ValueError, match="4 of 5 queries"):
        mt(topics())
    assert repr(mt) == "MTQueryRewriter(TableTranslator(<1 translations>, key='qid'))"


def test_xor_tydi_human_translations_from_parallel_files(tmp_path):
    folder = tiny_mt.XOR_TRANSLATIONS / "ja-en"
    source = (folder / "ja.txt").read_text(encoding="utf-8").split("\n")
    english = (folder / "en.txt").read_text(encoding="utf-8").split("\n")
    mt = MTQueryRewriter.from_parallel_files(folder / "ja.txt", folder / "en.txt")
    assert len(mt.translator.table) == len({s for s, e in zip(source, english) if s.strip() and e.strip()}) == 4700
    lines = [0, 1, 2, 1000, 4699]
    inp = pd.DataFrame({"qid": [str(i) for i in lines], "query": [source[i] for i in lines], "lang": "ja"})
    out = mt(inp)
    assert out["query"].tolist() == [english[i] for i in lines]
    assert out["query"][0] == "Which U.S. state had the worst public safety in 2018?"
    # gzipped copies read the same
    for name in ("ja.txt", "en.txt"):
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress((folder / name).read_bytes()))
    assert MTQueryRewriter.from_parallel_files(tmp_path / "ja.txt.gz", tmp_path / "en.txt.gz").translator.table == \
        mt.translator.table


def test_xor_tydi_duplicate_questions_keep_their_first_translation():
    folder = tiny_mt.XOR_TRANSLATIONS / "ko-en"
    source = (folder / "ko.txt").read_text(encoding="utf-8").split("\n")
    english = (folder / "en.txt").read_text(encoding="utf-8").split("\n")
    first_seen, conflict = {}, None
    for text, text_en in zip(source, english):
        if text in first_seen and first_seen[text] != text_en and text_en.strip():
            conflict = text
            break
        first_seen.setdefault(text, text_en)
    assert conflict is not None
    out = MTQueryRewriter.from_parallel_files(folder / "ko.txt", folder / "en.txt")(
        pd.DataFrame({"qid": ["1"], "query": [conflict], "lang": ["ko"]}))
    assert out["query"].tolist() == [first_seen[conflict]]


def test_table_mismatched_parallel_files(tmp_path):
    (tmp_path / "ja.txt").write_text("a\nb\n", encoding="utf-8")
    (tmp_path / "en.txt").write_text("a\n", encoding="utf-8")
    with pytest.raises(ValueError, match="has 2 lines but .* has 1"):
        MTQueryRewriter.from_parallel_files(tmp_path / "ja.txt", tmp_path / "en.txt")


def test_exported():
    assert clirkd.MTQueryRewriter is MTQueryRewriter
    assert isinstance(MTQueryRewriter(TableTranslator({})), pt.Transformer)
