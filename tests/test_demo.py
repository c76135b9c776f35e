"""``clirkd demo`` end to end on small settings: the table it prints and the two files it writes."""
import pandas as pd
import pytest

from pyterrier_clirkd.cli import main
from pyterrier_clirkd.demo import MEASURES, SYSTEMS

LANGS = {"debian-faq": ["ja", "ko", "ru"], "countries": ["ar", "bn", "fi", "ja", "ko", "ru", "te"]}


def test_demo_writes_the_table_and_chart(tmp_path, capsys):
    assert main(["demo", "--output", str(tmp_path), "--steps", "2", "--batch-size", "8", "--countries-docs", "300",
                 "--quiet"]) in (0, None)
    printed = capsys.readouterr().out
    table = pd.read_csv(tmp_path / "results.csv")
    assert list(table.columns) == ["collection", "name", "lang"] + [str(m) for m in MEASURES]
    assert [str(m) for m in MEASURES] == ["RR@10", "nDCG@10", "R@10"]
    for collection, langs in LANGS.items():
        rows = table[table["collection"] == collection]
        for name in SYSTEMS:
            mine = rows[rows["name"] == name].set_index("lang")
            assert sorted(mine.index) == sorted(langs + ["macro"])
            # the macro row is the unweighted mean over the languages
            for measure in MEASURES:
                assert mine.loc["macro", str(measure)] == pytest.approx(mine.loc[langs, str(measure)].mean())
        rr = rows.pivot(index="name", columns="lang", values="RR@10")
        # the human translations are the English originals: the MT pipeline beats the native questions
        assert rr.loc["MT (human translation) >> ColBERT", "macro"] > rr.loc["zero-shot", "macro"] + 0.05
    # every language's English country name is the same query, so the MT pipeline scores alike in all seven
    countries_mt = table[(table["collection"] == "countries") & (table["name"] == SYSTEMS[1])]
    assert countries_mt["RR@10"].nunique() == 1
    assert (tmp_path / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "student" / "colbert_config.json").exists()
    assert "debian-faq  RR@10" in printed and "countries  RR@10" in printed and "demo finished" in printed
    assert "multiple query fields" not in printed
