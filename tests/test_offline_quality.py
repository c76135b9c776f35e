"""Zero-shot quality of the bundled offline backbone's 128-d ColBERT head on the Debian FAQ CLIR set.

Every query is scored by MaxSim against all 148 English answer sections (their text, not their titles, which are
the English questions themselves); issue 2 asks for macro MRR@10 >= 0.45 with the native ja/ko/ru questions and
>= 0.55 with their English versions.
"""
import pandas as pd
import pyterrier as pt

from pyterrier_clirkd import ColBERT, measures


def test_offline_backbone_zero_shot_mrr():
    ds = pt.get_dataset("irds:clirkd-mini/debian-faq")
    docs = pd.DataFrame(ds.get_corpus_iter(verbose=False))[["docno", "text"]]
    model = ColBERT.from_pretrained("offline:me5-small")
    assert model.config.dim == 128
    every_passage = pt.apply.generic(lambda queries: queries[["qid", "query"]].merge(docs, how="cross"))
    native = every_passage >> model.text_scorer()
    english = pt.apply.query(lambda row: row["query_en"]) >> native
    table = measures.per_language([native, english], ds.get_topics(), ds.get_qrels(), [pt.measures.RR @ 10],
                                  names=["native", "english"]).set_index("name")
    print(table.to_string())
    assert table.loc["native", "RR@10 macro"] >= 0.45
    assert table.loc["english", "RR@10 macro"] >= 0.55
    assert {"RR@10 ja", "RR@10 ko", "RR@10 ru"} <= set(table.columns)
