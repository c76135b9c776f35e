import json

import numpy as np
import pandas as pd
import pyterrier as pt
import pytest
import torch
from safetensors.torch import save_file

from pyterrier_clirkd import ColBERT, ColBERTConfig
from pyterrier_clirkd.model import maxsim
from tiny_models import tiny_xlmr_folder

SETTINGS = dict(dim=8, query_maxlen=12, doc_maxlen=16)


@pytest.fixture(scope="module")
def encoder_folder(tmp_path_factory):
    return tiny_xlmr_folder(tmp_path_factory.mktemp("tiny-xlmr"))


@pytest.fixture(scope="module")
def model(encoder_folder):
    torch.manual_seed(1)
    return ColBERT.from_pretrained(encoder_folder, device="cpu", **SETTINGS)


def hand_maxsim(Q: np.ndarray, D: np.ndarray) -> float:
    """Sum over query tokens of the best dot product with any passage token, written out with loops."""
    total = 0.0
    for q in Q:
        total += max(float(np.dot(q, d)) for d in D)
    return total


def test_query_tokens_marker_and_augmentation(model):
    pieces = model.tokenizer("who wrote hamlet", add_special_tokens=False)["input_ids"]
    tok = model.tokenize_queries(["who wrote hamlet"])
    ids, mask = tok["input_ids"][0].tolist(), tok["attention_mask"][0].tolist()
    # <s>=0, then the query marker (the symbol U+2614, id 246260), the pieces, </s>=2, then <pad>=1 up to query_maxlen
    assert ids == [0, 246260, *pieces, 2] + [1] * (12 - len(pieces) - 3)
    assert mask == [1] * (len(pieces) + 3) + [0] * (12 - len(pieces) - 3)
    assert model.tokenizer.convert_ids_to_tokens([246260, 245281]) == ["\u2614", "\u2615"]


def test_long_query_is_truncated_to_query_maxlen(model):
    tok = model.tokenize_queries(["word " * 100])
    assert tok["input_ids"].shape == (1, 12) and tok["input_ids"][0, -1].item() == 2
    assert tok["attention_mask"][0].sum().item() == 12


def test_doc_tokens_marker_and_punctuation(model):
    text = "Hello, world! Tokyo?"
    vecs, ids = model.encode_docs([text], return_ids=True)
    all_ids = model.tokenize_docs([text])["input_ids"][0].tolist()
    assert all_ids[:2] == [0, 245281] and all_ids[-1] == 2
    kept = model.tokenizer.convert_ids_to_tokens(ids[0].tolist())
    dropped = [t for t in model.tokenizer.convert_ids_to_tokens(all_ids) if t not in kept]
    assert dropped and all(t.strip("\u2581") in {",", "!", "?"} for t in dropped)
    assert kept[:2] == ["<s>", "\u2615"] and kept[-1] == "</s>"
    assert vecs[0].shape == (len(ids[0]), 8)


def test_augmented_query_positions_are_encoded_and_scored(model):
    Q = model.encode_queries(["hamlet"])[0]
    assert Q.shape == (12, 8)
    np.testing.assert_allclose(np.linalg.norm(Q, axis=1), 1.0, atol=1e-5)
    n_real = int(model.tokenize_queries(["hamlet"])["attention_mask"].sum())
    # XLM-R gives every <pad> the padding position, so (as in PrimeQA) all augmentation vectors are one vector,
    # distinct from the real tokens' vectors; they are scored, once per augmented position
    np.testing.assert_allclose(Q[n_real:], np.repeat(Q[-1:], len(Q) - n_real, axis=0), atol=1e-6)
    assert not np.allclose(Q[n_real - 1], Q[-1])
    D = model.encode_docs(["Hamlet is a tragedy by Shakespeare."])[0]
    per_aug = max(float(np.dot(Q[-1], d)) for d in D)
    assert hand_maxsim(Q, D) == pytest.approx(hand_maxsim(Q[:n_real], D) + (len(Q) - n_real) * per_aug, abs=1e-4)


def test_text_scorer_matches_hand_computed_maxsim(model):
    docs = ["Hamlet is a tragedy by William Shakespeare.", "Tokyo is the capital of Japan.", ""]
    res = pd.DataFrame({"qid": ["q1"] * 3 + ["q2"] * 3, "query": ["who wrote hamlet"] * 3 + ["東京はどこ？"] * 3,
                        "docno": ["a", "b", "c"] * 2, "text": docs * 2})
    out = model.text_scorer()(res)
    Q = model.encode_queries(["who wrote hamlet", "東京はどこ？"])
    D = model.encode_docs(docs)
    for _, row in out.iterrows():
        qi = 0 if row.qid == "q1" else 1
        assert row.score == pytest.approx(hand_maxsim(Q[qi], D["abc".index(row.docno)]), abs=1e-4)
    for qid, group in out.groupby("qid"):
        assert list(group["rank"]) == [0, 1, 2]
        assert list(group["score"]) == sorted(group["score"], reverse=True)


def test_maxsim_l2_and_mask():
    Q = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    D = torch.tensor([[[1.0, 0.0], [0.6, 0.8], [0.0, -1.0]]])
    mask = torch.tensor([[True, True, False]])
    assert maxsim(Q, D, mask).item() == pytest.approx(1.0 + 0.8)
    # l2: -(|q|^2 + |d|^2 - 2 q.d); best for q1 is d1 (0), for q2 is d2 (-(1 + 1 - 1.6))
    assert maxsim(Q, D, mask, "l2").item() == pytest.approx(0.0 - 0.4)
    # broadcasting: all queries against all passages
    assert maxsim(Q[:, None], D[None], mask[None]).shape == (1, 1)


def test_similarity_l2_model_scores(encoder_folder):
    model = ColBERT.from_pretrained(encoder_folder, device="cpu", similarity="l2", **SETTINGS)
    Q, D = model.encode_queries(["tokyo"])[0], model.encode_docs(["Tokyo is big."])[0]
    expected = sum(max(-float(np.sum((q - d) ** 2)) for d in D) for q in Q)
    res = pd.DataFrame({"qid": ["1"], "query": ["tokyo"], "docno": ["d"], "text": ["Tokyo is big."]})
    assert model.text_scorer()(res)["score"][0] == pytest.approx(expected, abs=1e-4)


def test_save_load_round_trip_gives_identical_scores(model, tmp_path):
    model.save_pretrained(tmp_path / "ckpt")
    assert {"config.json", "model.safetensors", "tokenizer.json", "colbert_config.json",
            "colbert_linear.safetensors"} <= {p.name for p in (tmp_path / "ckpt").iterdir()}
    again = ColBERT.from_pretrained(tmp_path / "ckpt", device="cpu")
    assert again.config == model.config
    texts = ["Где находится Токио?", "Tokyo is the capital of Japan."]
    np.testing.assert_array_equal(again.encode_queries(texts), model.encode_queries(texts))
    assert again.fingerprint() == model.fingerprint()
    # a second save over the same folder replaces it whole
    model.save_pretrained(tmp_path / "ckpt")
    assert ColBERT.from_pretrained(tmp_path / "ckpt", device="cpu").fingerprint() == model.fingerprint()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_fingerprint_changes_with_weights_and_settings(encoder_folder, model):
    other = ColBERT.from_pretrained(encoder_folder, device="cpu", **SETTINGS)  # new random head
    assert other.fingerprint() != model.fingerprint()
    other.linear.weight.data.copy_(model.linear.weight.data)
    assert other.fingerprint() == model.fingerprint()
    assert model.passage_fingerprint() == model.fingerprint()


def test_cannot_override_weight_settings_of_a_checkpoint(model, tmp_path):
    model.save_pretrained(tmp_path / "ckpt")
    with pytest.raises(ValueError, match="dim"):
        ColBERT.from_pretrained(tmp_path / "ckpt", dim=64)
    longer = ColBERT.from_pretrained(tmp_path / "ckpt", device="cpu", doc_maxlen=64)
    assert longer.config.doc_maxlen == 64


def _prefixed_state(model, prefix):
    state = {f"{prefix}{model.encoder.base_model_prefix}.{k}": v for k, v in model.encoder.state_dict().items()}
    state[f"{prefix}linear.weight"] = model.linear.weight.detach().clone()
    return state


def _primeqa_markers(model):
    """The same weights with the markers PrimeQA's XLM-R ColBERT feeds: token ids 9748 and 9749."""
    q, d = model.tokenizer.convert_ids_to_tokens([9748, 9749])
    config = ColBERTConfig(**{**model.config.to_dict(), "query_marker": q, "doc_marker": d})
    return ColBERT(model.encoder, model.tokenizer, config, linear=model.linear)


def _same_scores(a, b):
    texts = ["Кто написал Гамлета?", "Hamlet is a tragedy, by Shakespeare."]
    np.testing.assert_allclose(a.encode_queries(texts), b.encode_queries(texts), atol=1e-5)
    for x, y in zip(a.encode_docs(texts), b.encode_docs(texts)):
        np.testing.assert_allclose(x, y, atol=1e-5)


def test_import_stanford_colbertv2_folder(model, encoder_folder, tmp_path):
    folder = tmp_path / "colbertv2"
    folder.mkdir()
    model.encoder.config.save_pretrained(folder)
    model.tokenizer.save_pretrained(folder)
    save_file({k: v.contiguous() for k, v in _prefixed_state(model, "").items()}, str(folder / "model.safetensors"))
    (folder / "artifact.metadata").write_text(json.dumps({
        "query_token_id": "[unused0]", "doc_token_id": "[unused1]", "query_maxlen": 12, "doc_maxlen": 16,
        "dim": 8, "similarity": "cosine", "mask_punctuation": True}))
    imported = ColBERT.from_pretrained(folder, device="cpu")
    assert (imported.config.query_maxlen, imported.config.doc_maxlen, imported.config.dim) == (12, 16, 8)
    assert (imported.query_marker_id, imported.doc_marker_id) == (9748, 9749)
    _same_scores(imported, _primeqa_markers(model))


def test_import_colbert_v1_dnn(model, encoder_folder, tmp_path):
    path = tmp_path / "colbert-v1.dnn"
    torch.save({"epoch": 0, "batch": 100, "model_state_dict": _prefixed_state(model, "module."),
                "arguments": {"model_type": str(encoder_folder), "query_maxlen": 12, "doc_maxlen": 16,
                              "dim": 8, "similarity": "cosine", "mask_punctuation": True}}, path)
    imported = ColBERT.from_pretrained(path, device="cpu")
    _same_scores(imported, _primeqa_markers(model))


class NotWeights:
    pass


def test_v1_import_refuses_pickled_objects(tmp_path):
    path = tmp_path / "evil.dnn"
    torch.save({"model_state_dict": {}, "arguments": NotWeights()}, path)
    with pytest.raises(ValueError, match="weights_only"):
        ColBERT.from_pretrained(path, device="cpu")


def test_bad_inputs(model):
    with pytest.raises(TypeError, match="position 1"):
        model.encode_queries(["ok", None])
    with pytest.raises(TypeError, match="'text'"):
        model.doc_encoder()(pd.DataFrame({"docno": ["a"], "text": [3.5]}))
    # an empty passage keeps its slot: marker, <s> and </s> only
    vecs, ids = model.encode_docs(["", "x"], return_ids=True)
    assert ids[0].tolist() == [0, 245281, 2] and vecs[0].shape == (3, 8)
    long_vecs = model.encode_docs(["word " * 5000])[0]
    assert long_vecs.shape == (16, 8)


def test_unknown_model_name_is_a_clear_error():
    with pytest.raises(ValueError, match="no-such-org/no-such-model"):
        ColBERT.from_pretrained("no-such-org/no-such-model")
    with pytest.raises(ValueError, match="unknown settings|similarity"):
        ColBERTConfig(similarity="dot")


def test_pyterrier_transformers(model):
    topics = pd.DataFrame({"qid": ["1", "2", "3"], "query": ["tokyo", "東京", "tokyo"]})
    out = model.query_encoder()(topics)
    assert list(out.columns) == ["qid", "query", "query_toks", "query_embs"]
    np.testing.assert_array_equal(out.query_embs[0], out.query_embs[2])
    assert out.query_embs[1].shape == (12, 8)
    empty = model.query_encoder()(topics.iloc[:0])
    assert list(empty.columns) == ["qid", "query", "query_toks", "query_embs"] and len(empty) == 0
    with pytest.raises(pt.validate.InputValidationError, match="query"):
        model.query_encoder()(pd.DataFrame({"qid": ["1"]}))
    docs = model.doc_encoder()(pd.DataFrame({"docno": ["a", "b"], "text": ["Tokyo.", "Paris, France"]}))
    assert [len(e) for e in docs.doc_embs] == [len(t) for t in docs.doc_toks]
    assert len(model.doc_encoder()(pd.DataFrame({"docno": [], "text": []}))) == 0
    empty_r = model.text_scorer()(pd.DataFrame(columns=["qid", "query", "docno", "text"]))
    assert {"score", "rank"} <= set(empty_r.columns)
    assert repr(model.text_scorer()).endswith(".text_scorer()")
    assert pt.inspect.transformer_inputs(model.query_encoder()) is not None
    assert model.query_encoder() == model.query_encoder()


def test_without_query_augmentation_padding_scores_nothing(encoder_folder, model):
    plain = ColBERT(model.encoder, model.tokenizer, ColBERTConfig(**{**model.config.to_dict(),
                                                                   "query_augmentation": False}), linear=model.linear)
    Q = plain.encode_queries(["hamlet"])[0]
    n_real = int(plain.tokenize_queries(["hamlet"])["attention_mask"].sum())
    assert np.all(Q[n_real:] == 0) and np.allclose(np.linalg.norm(Q[:n_real], axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(Q[:n_real], model.encode_queries(["hamlet"])[0][:n_real], atol=1e-6)
    D = plain.encode_docs(["Hamlet is a tragedy."])[0]
    assert plain.score(["hamlet"], ["Hamlet is a tragedy."]).item() == pytest.approx(hand_maxsim(Q[:n_real], D), abs=1e-4)
