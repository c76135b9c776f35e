import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pyterrier as pt
import pytest
import torch

from index_build_script import corpus
from pyterrier_clirkd import ColBERT, ColBERTIndex
from pyterrier_clirkd.index import IndexInputError, ResidualCodec
from pyterrier_clirkd.index import build as build_module
from pyterrier_clirkd.index.build import partial_folder
from pyterrier_clirkd.index.centroids import CentroidAssigner
from pyterrier_clirkd.index.codec import pack_bits, unpack_bits
from pyterrier_clirkd.index.search import _group_tokens, _rough_scores, _weighted_maxsim
from tiny_models import tiny_xlmr_folder

SETTINGS = dict(dim=8, query_maxlen=12, doc_maxlen=16)
SCRIPT = Path(__file__).with_name("index_build_script.py")
QUERIES = ["cat on the mat", "river mountain", "tokyo capital japan", "who wrote hamlet", "red stone road"]


@pytest.fixture(scope="module")
def model(tiny_colbert_folder):
    return ColBERT.from_pretrained(tiny_colbert_folder, device="cpu")


@pytest.fixture(scope="module")
def docs():
    return corpus(240)


@pytest.fixture(scope="module")
def built(tmp_path_factory, model, docs):
    """A 2-bit index of 240 passages, built in chunks of 50."""
    return ColBERTIndex(tmp_path_factory.mktemp("built") / "idx.colbert", model, chunk_size=50,
                        verbose=False).index(docs)


def hand_maxsim(Q: np.ndarray, D: np.ndarray) -> float:
    """Sum over query tokens of the best dot product with any passage token, written out with loops."""
    return float(sum(max(float(np.dot(q, d)) for d in D) for q in Q)) if len(D) else 0.0


def clustered_vectors(n: int, dim: int, rng, n_topics: int = 40, noise: float = 0.15) -> np.ndarray:
    topics = rng.standard_normal((n_topics, dim))
    x = topics[rng.integers(0, n_topics, n)] + noise * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def read_index(path: Path) -> dict:
    """Every stored array of an index folder, and its docnos."""
    out = {name.split(".")[0]: np.load(path / name) for name in ("codes.npy", "residuals.npy", "doclens.npy",
                                                                 "centroids.npy", "ivf_pids.npy", "ivf_offsets.npy")}
    out["docnos"] = (path / "docnos.txt").read_text().split("\n")[:-1]
    return out


# ---------------------------------------------------------------------- codec
@pytest.mark.parametrize("nbits, min_cosine", [(1, 0.85), (2, 0.95), (4, 0.99)])
def test_codec_round_trip_error_bounds(nbits, min_cosine):
    rng = np.random.default_rng(nbits)
    x = clustered_vectors(6000, 32, rng, noise=0.1)
    codec = ResidualCodec.train(x[:3000], n_centroids=64, nbits=nbits)
    codes, payload = codec.encode(x)
    assert payload.dtype == np.uint8 and payload.shape == (6000, 32 * nbits // 8)

    # by hand: bucket = number of cutoffs at or below the residual; value = that bucket's weight; then normalise
    residual = x - codec.centroids[codes]
    bucket = np.stack([np.searchsorted(codec.cutoffs[j], residual[:, j], side="right") for j in range(32)], 1)
    approx_residual = np.take_along_axis(codec.weights.T, bucket, axis=0)
    expected = codec.centroids[codes] + approx_residual
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    decoded = codec.decode(codes, payload)
    np.testing.assert_allclose(decoded, expected, atol=1e-5)
    np.testing.assert_array_equal(unpack_bits(payload, nbits), bucket)

    # an inner bucket's value lies between its cutoffs, so the error is at most the bucket's width there
    inner = (bucket > 0) & (bucket < 2 ** nbits - 1)
    lower = np.take_along_axis(codec.cutoffs.T, np.maximum(bucket - 1, 0), axis=0)
    upper = np.take_along_axis(codec.cutoffs.T, np.minimum(bucket, 2 ** nbits - 2), axis=0)
    assert np.all(np.abs(residual - approx_residual)[inner] <= (upper - lower)[inner] + 1e-6)
    cosine = np.sum(x * decoded, axis=1)
    assert cosine.mean() >= min_cosine and cosine.min() > 0.5


def test_codec_more_bits_less_error_and_fp16_is_exact():
    rng = np.random.default_rng(0)
    x = clustered_vectors(4000, 16, rng)
    errors = []
    for nbits in (1, 2, 4, 16):
        codec = ResidualCodec.train(x, n_centroids=32, nbits=nbits)
        errors.append(np.abs(codec.decode(*codec.encode(x)) - x).mean())
    assert errors[0] > errors[1] > errors[2] > errors[3]
    assert errors[3] < 1e-3  # float16 keeps about three significant digits


@pytest.mark.parametrize("similarity", ["cosine", "l2"])
def test_centroid_assignment_with_torch_equals_brute_force_and_faiss(similarity, monkeypatch):
    """The device path (torch, used on a GPU) and the faiss path pick the same nearest centroids as numpy by hand."""
    import pyterrier_clirkd.index.centroids as centroids_module

    rng = np.random.default_rng(3)
    x = clustered_vectors(1000, 16, rng) * (1 if similarity == "cosine" else rng.uniform(0.5, 2, (1000, 1)))
    codec = ResidualCodec.train(x, n_centroids=24, nbits=16, similarity=similarity)
    C = codec.centroids
    if similarity == "cosine":
        expected = np.argmax(x @ C.T, axis=1)
    else:
        expected = np.argmin(((x[:, None, :] - C[None]) ** 2).sum(-1), axis=1)
    monkeypatch.setattr(centroids_module, "ASSIGN_BLOCK_CPU", 128)  # several blocks
    np.testing.assert_array_equal(codec.assign(x, device="cpu"), expected)  # torch, as on a GPU
    np.testing.assert_array_equal(codec._assigner._faiss.search(x, 1)[1][:, 0], expected)  # faiss


def test_centroid_assignment_ties_go_to_the_first_centroid():
    centroids = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    vectors = np.array([[0.2, 0.9], [0.9, 0.2], [0.6, 0.6]], dtype=np.float32)  # the last: all four tie
    assert CentroidAssigner(centroids).assign(vectors, device="cpu").tolist() == [1, 0, 0]


@pytest.mark.parametrize("similarity", ["cosine", "l2"])
def test_two_level_centroids_and_assignment(similarity, monkeypatch, tmp_path):
    """Past TWO_LEVEL_ABOVE centroids: coarse cells own consecutive centroids in proportion to their sample points,
    and each vector goes to its nearest centroid among those of the COARSE_NEIGHBOURS cells nearest to its own cell
    (checked by hand with numpy), which is its exact nearest centroid for most vectors; torch and the saved codec
    agree."""
    import pyterrier_clirkd.index.centroids as centroids_module

    monkeypatch.setattr(centroids_module, "TWO_LEVEL_ABOVE", 16)
    monkeypatch.setattr(centroids_module, "COARSE_NEIGHBOURS", 2)
    monkeypatch.setattr(centroids_module, "ASSIGN_BLOCK_CPU", 64)
    rng = np.random.default_rng(5)
    x = clustered_vectors(4000, 16, rng) * (1 if similarity == "cosine" else rng.uniform(0.5, 2, (4000, 1)))
    codec = ResidualCodec.train(x, n_centroids=64, nbits=2, similarity=similarity)
    coarse, offsets = codec.cells
    assert codec.n_centroids == 64 and len(coarse) == 8 and offsets[0] == 0 and offsets[-1] == 64

    def nearest(vectors, centroids):  # index of the nearest centroid, by hand
        if similarity == "cosine":
            return np.argmax(vectors @ centroids.T, axis=1)
        return np.argmin(((vectors[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)

    cell = nearest(x, coarse)
    owned = np.diff(offsets) > 0
    own_count = np.bincount(cell, minlength=8)  # the sample's points per cell (the whole sample trained them)
    np.testing.assert_allclose(np.diff(offsets), own_count * 64 / len(x), atol=1)
    expected = np.empty(len(x), dtype=np.int64)
    for j in range(8):
        neighbour_cells = [c for c in np.argsort(-_score_matrix(coarse[j:j + 1], coarse, similarity)[0])
                           if owned[c]][:2]
        members = np.concatenate([np.arange(offsets[c], offsets[c + 1]) for c in neighbour_cells])
        rows = cell == j
        expected[rows] = members[nearest(x[rows], codec.centroids[members])]
    codes = codec.assign(x)
    np.testing.assert_array_equal(codes, expected)
    assert (codes == nearest(x, codec.centroids)).mean() > 0.9
    np.testing.assert_array_equal(codec.assign(x, device="cpu"), expected)
    codec.save(tmp_path)
    again = ResidualCodec.load(tmp_path)
    np.testing.assert_array_equal(again.cells.offsets, offsets)
    np.testing.assert_array_equal(again.encode(x)[0], codes)


def _score_matrix(a: np.ndarray, b: np.ndarray, similarity: str) -> np.ndarray:
    """Larger is nearer: inner products, or negative squared distances."""
    return a @ b.T if similarity == "cosine" else -((a[:, None, :] - b[None]) ** 2).sum(-1)


def test_apportion_splits_in_proportion_with_largest_remainders():
    from pyterrier_clirkd.index.centroids import _apportion

    np.testing.assert_array_equal(_apportion(np.array([10, 0, 5, 1]), 8), [5, 0, 3, 0])  # shares 5, 0, 2.5, 0.5
    np.testing.assert_array_equal(_apportion(np.array([3, 3, 3]), 9), [3, 3, 3])
    np.testing.assert_array_equal(_apportion(np.array([1, 100]), 10), [0, 10])  # shares 0.099, 9.9


def test_bit_packing_round_trip():
    rng = np.random.default_rng(0)
    for nbits in (1, 2, 4):
        buckets = rng.integers(0, 2 ** nbits, (7, 16)).astype(np.uint8)
        packed = pack_bits(buckets, nbits)
        assert packed.shape == (7, 16 * nbits // 8)
        np.testing.assert_array_equal(unpack_bits(packed, nbits), buckets)
    # first dimension in the high bits: buckets 3, 0, 1, 2 -> 0b11_00_01_10
    assert pack_bits(np.array([[3, 0, 1, 2]]), 2)[0, 0] == 0b11000110


# ---------------------------------------------------------------------- building
def test_index_layout_and_metadata(built, docs, tiny_colbert_folder, model):
    meta = built.meta()
    assert built.built() and len(built) == 240 and repr(built) == f"ColBERTIndex({str(built.path)!r})"
    assert meta["type"] == "colbert_index" and meta["format"] == "clirkd" and meta["nbits"] == 2
    assert meta["model"] == str(tiny_colbert_folder.resolve()) and meta["fingerprint"] == model.fingerprint()
    stored = read_index(Path(built.path))
    assert stored["docnos"] == [d["docno"] for d in docs]
    expected_lengths = [len(v) for v in model.encode_docs([d["text"] for d in docs])]
    assert stored["doclens"].tolist() == expected_lengths and meta["n_tokens"] == sum(expected_lengths)
    # each centroid lists the passages with a token vector there, once each, in ascending order
    offsets = stored["ivf_offsets"]
    owner = np.repeat(np.arange(len(docs)), stored["doclens"])
    for c in range(meta["n_centroids"]):
        listed = stored["ivf_pids"][offsets[c]:offsets[c + 1]]
        np.testing.assert_array_equal(listed, np.unique(owner[stored["codes"] == c]))
    assert offsets[-1] == len(set(zip(owner, stored["codes"]))) < meta["n_tokens"]
    assert not partial_folder(Path(built.path)).exists()


def test_empty_passages_are_kept_aligned(built, docs, model):
    empty = [i for i, d in enumerate(docs) if d["text"] == ""]
    assert empty and empty[-1] < 239  # the corpus has empty passages, with passages after them
    stored = read_index(Path(built.path))
    assert all(stored["doclens"][i] == 3 for i in empty)  # <s>, [D], </s>
    after = docs[empty[0] + 1]
    res = pd.DataFrame({"qid": ["q"], "query": ["cat on the mat"], "docno": [after["docno"]]})
    scored = built.scorer()(res)
    fp16 = ColBERTIndex(Path(built.path).parent / "fp16.colbert", model, nbits=16, verbose=False).index(docs)
    Q = model.encode_queries(["cat on the mat"])[0]
    D = model.encode_docs([after["text"]])[0].astype(np.float16).astype(np.float32)
    assert fp16.scorer()(res)["score"].iloc[0] == pytest.approx(hand_maxsim(Q, D), abs=1e-4)
    assert scored["score"].iloc[0] == pytest.approx(hand_maxsim(Q, D), abs=0.5)  # 2 bits: close, not exact


def test_title_is_put_before_the_text(tmp_path, model):
    index = ColBERTIndex(tmp_path / "t.colbert", model, nbits=16, verbose=False)
    index.index([{"docno": "a", "title": "Hamlet", "text": "a play"}, {"docno": "b", "title": "", "text": "x y"}] +
                corpus(30))
    vectors, lengths = index.payload().decode([0, 1])
    expected = model.encode_docs(["Hamlet | a play", "x y"])
    np.testing.assert_allclose(vectors, np.concatenate(expected), atol=1e-3)
    assert lengths.tolist() == [len(e) for e in expected]


def test_duplicate_docnos_are_an_error_that_names_them(tmp_path, model):
    docs = corpus(120)
    docs[101] = {"docno": "p7", "text": "again"}
    with pytest.raises(IndexInputError, match=r"duplicate docno 'p7': documents 7 and 101"):
        ColBERTIndex(tmp_path / "dup.colbert", model, chunk_size=50, verbose=False).index(docs)
    assert not (tmp_path / "dup.colbert").exists() and not partial_folder(tmp_path / "dup.colbert").exists()


@pytest.mark.parametrize("bad, message", [({"text": "no docno"}, "has no docno"),
                                          ({"docno": 5, "text": "x"}, "docno must be a non-empty string"),
                                          ({"docno": "p1x", "text": None}, "'p1x': text must be a string")])
def test_bad_documents_are_named(tmp_path, model, bad, message):
    with pytest.raises(IndexInputError, match=message):
        ColBERTIndex(tmp_path / "bad.colbert", model, verbose=False).index(corpus(20) + [bad])
    assert not partial_folder(tmp_path / "bad.colbert").exists()


def test_refuses_to_overwrite_unless_asked(tmp_path, model):
    path = tmp_path / "x.colbert"
    ColBERTIndex(path, model, verbose=False).index(corpus(60))
    before = (path / "pt_meta.json").read_text()
    with pytest.raises(FileExistsError, match="mode='overwrite'"):
        ColBERTIndex(path, model, verbose=False).index(corpus(80))
    assert (path / "pt_meta.json").read_text() == before
    assert len(ColBERTIndex(path, model, mode="overwrite", verbose=False).index(corpus(80))) == 80
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a ColBERTIndex"):
        ColBERTIndex(tmp_path / "notes", model, mode="overwrite", verbose=False).index(corpus(60))
    assert (tmp_path / "notes" / "mine.txt").read_text() == "keep me"


@pytest.mark.parametrize("kill", [["--kill-after", "130"], ["--kill-in", "merge"]], ids=["encoding", "merge"])
def test_resume_after_sigkill(tmp_path, tiny_colbert_folder, model, kill):
    path = tmp_path / "killed.colbert"
    run = subprocess.run([sys.executable, str(SCRIPT), "--model", str(tiny_colbert_folder), "--out", str(path),
                          "--docs", "240", *kill], capture_output=True, text=True, timeout=300)
    assert run.returncode == -9, run.stderr
    assert not path.exists()
    chunks = sorted(p.name for p in (partial_folder(path) / "chunks").glob("*.json"))
    assert chunks == ([f"{i:08d}.json" for i in range(2)] if kill[0] == "--kill-after" else
                      [f"{i:08d}.json" for i in range(5)])

    if kill[0] == "--kill-after":  # a resume needs the same documents and settings
        with pytest.raises(ValueError, match="cannot resume: block 0 .*position 0: 'p0' then, 'q0' now"):
            ColBERTIndex(path, model, chunk_size=50, verbose=False).index(
                [{**d, "docno": "q" + d["docno"][1:]} for d in corpus(240)])
        with pytest.raises(ValueError, match="different settings \\(nbits\\); pass resume=False"):
            ColBERTIndex(path, model, chunk_size=50, nbits=4, verbose=False).index(corpus(240))

    encoded = []
    original = model.encode_docs
    model.encode_docs = lambda texts, **kw: (encoded.extend(texts), original(texts, **kw))[1]
    try:
        resumed = ColBERTIndex(path, model, chunk_size=50, verbose=False).index(corpus(240))
    finally:
        del model.encode_docs
    assert len(encoded) == (240 - 100 if kill[0] == "--kill-after" else 0)  # finished chunks are not re-encoded
    fresh = ColBERTIndex(tmp_path / "fresh.colbert", model, chunk_size=50, verbose=False).index(corpus(240))
    got, want = read_index(Path(resumed.path)), read_index(Path(fresh.path))
    assert got["docnos"] == [f"p{i}" for i in range(240)]  # every document exactly once, in order
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    assert not partial_folder(path).exists()
    restarted = ColBERTIndex(path, model, chunk_size=50, nbits=4, mode="overwrite", resume=False, verbose=False)
    assert restarted.index(corpus(240)).meta()["nbits"] == 4


def test_sharded_torchrun_build_equals_single_process(tmp_path, tiny_colbert_folder, model, built):
    path = tmp_path / "sharded.colbert"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                          str(29500 + os.getpid() % 1000), str(SCRIPT), "--model", str(tiny_colbert_folder),
                          "--out", str(path), "--docs", "240"], capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    got, want = read_index(path), read_index(Path(built.path))
    assert got["docnos"] == want["docnos"]
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def test_chunks_compressed_in_groups_give_the_index_of_one_group(tmp_path, model, docs, built, monkeypatch):
    assert build_module._block_groups(np.array([0, 10, 20, 35, 40, 100, 105]), 20) == \
        [(0, 2), (2, 4), (4, 5), (5, 6)]  # 10+10, 15+5, 60 alone (more than the limit), 5
    monkeypatch.setattr(build_module, "MERGE_FLOATS", model.config.dim * 1200)  # a few chunks per group
    seen = []
    encode = ResidualCodec.encode
    monkeypatch.setattr(ResidualCodec, "encode", lambda self, v: (seen.append(len(v)), encode(self, v))[1])
    grouped = ColBERTIndex(tmp_path / "grouped.colbert", model, chunk_size=50, verbose=False).index(docs)
    assert 1 < len(seen) < 5 and sum(seen) == grouped.meta()["n_tokens"]
    got, want = read_index(Path(grouped.path)), read_index(Path(built.path))
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


# ---------------------------------------------------------------------- loading and models
def test_artifact_load_reopens_with_the_model(built):
    for loaded in (pt.Artifact.load(str(built.path)), ColBERTIndex.load(built.path)):
        assert isinstance(loaded, ColBERTIndex) and len(loaded) == 240
        q = pt.new.queries(QUERIES)
        pd.testing.assert_frame_equal(loaded.retriever(num_results=5)(q), built.retriever(num_results=5)(q))


def test_model_without_a_name_is_saved_inside_the_index(tmp_path, tiny_colbert_folder):
    model = ColBERT.from_pretrained(tiny_colbert_folder, device="cpu")
    model.name_or_path = None
    path = tmp_path / "copy.colbert"
    ColBERTIndex(path, model, verbose=False).index(corpus(60))
    assert (path / "model" / "colbert_config.json").exists() and ColBERTIndex.load(path).meta()["model_copy"]
    loaded = ColBERTIndex.load(path)
    assert loaded.built_model().fingerprint() == model.fingerprint()


def test_index_names_an_unchanged_checkpoint_and_copies_a_changed_one(tmp_path, tiny_colbert_folder):
    folder = shutil.copytree(tiny_colbert_folder, tmp_path / "checkpoint")
    model = ColBERT.from_pretrained(folder, device="cpu")
    named = ColBERTIndex(tmp_path / "named.colbert", model, verbose=False).index(corpus(60)).meta()
    assert named["model"] == str(folder.resolve()) and named["model_copy"] is None

    with torch.no_grad():
        model.linear.weight.mul_(2)  # trained further in memory: reloading the folder would not give it back
    changed = ColBERTIndex(tmp_path / "changed.colbert", model, verbose=False).index(corpus(60))
    assert changed.meta()["model_copy"] and ColBERTIndex.load(changed.path).built_model().fingerprint() == \
        model.fingerprint()

    rewritten = ColBERT.from_pretrained(folder, device="cpu")
    config = folder / "colbert_config.json"
    config.write_text(config.read_text())  # the folder rewritten after loading (same bytes, a new time)
    os.utime(config, ns=(config.stat().st_atime_ns, config.stat().st_mtime_ns + 10**9))
    assert ColBERTIndex(tmp_path / "rewritten.colbert", rewritten, verbose=False).index(corpus(60)).meta()["model_copy"]


def test_fingerprint_mismatch_is_a_clear_error(tmp_path, built, model):
    torch.manual_seed(7)
    other = ColBERT.from_pretrained(tiny_xlmr_folder(tmp_path / "other", seed=3), device="cpu", **SETTINGS)
    with pytest.raises(ValueError, match=f"{other.fingerprint()}.*{model.fingerprint()}"):
        built.retriever(query_model=other)
    # a student whose passage encoder is the index's model searches it as is
    other.config.passage_fingerprint = model.fingerprint()
    out = built.retriever(num_results=3, query_model=other)(pt.new.queries(["cat"]))
    assert len(out) == 3


# ---------------------------------------------------------------------- search
def test_exhaustive_mode_equals_brute_force_maxsim(tmp_path, model, docs):
    index = ColBERTIndex(tmp_path / "fp16.colbert", model, nbits=16, chunk_size=50, verbose=False).index(docs)
    Q = model.encode_queries(QUERIES)
    D = [v.astype(np.float16).astype(np.float32) for v in model.encode_docs([d["text"] for d in docs])]
    out = index.retriever(num_results=240, exhaustive=True)(pt.new.queries(QUERIES))
    for i, query in enumerate(QUERIES):
        hand = np.array([hand_maxsim(Q[i], d) for d in D])
        got = out[out["query"] == query]
        assert got["rank"].tolist() == list(range(240))
        np.testing.assert_allclose(got["score"], np.sort(hand)[::-1], rtol=1e-5, atol=1e-5)
        got_scores = dict(zip(got["docno"], got["score"]))
        np.testing.assert_allclose([got_scores[d["docno"]] for d in docs], hand, rtol=1e-5, atol=1e-5)
    padded = Q[0].copy()
    padded[len(padded) // 2:] = 0  # padding positions (no query augmentation), which exhaustive search skips
    for query in (padded, np.zeros_like(padded)):
        out = index.retriever(num_results=240, exhaustive=True)(pd.DataFrame({"qid": ["p"], "query_embs": [query]}))
        got_scores = dict(zip(out["docno"], out["score"]))
        hand = [hand_maxsim(query, d) for d in D]
        np.testing.assert_allclose([got_scores[d["docno"]] for d in docs], hand, rtol=1e-5, atol=1e-5)
    assert out["docno"].head(3).tolist() == [d["docno"] for d in docs[:3]]  # all score 0: ties go to the first


def test_end_to_end_and_scorer_agree_with_exhaustive_on_stored_vectors(built):
    topics = pt.new.queries(QUERIES, lang=["en"] * 5)
    exact = built.retriever(num_results=10, exhaustive=True)(topics)
    every_cell = built.retriever(num_results=10, nprobe=built.meta()["n_centroids"], ncandidates=240)(topics)
    pd.testing.assert_frame_equal(every_cell, exact, atol=1e-5)
    rescored = built.scorer()(exact.drop(columns=["score", "rank"]).sample(frac=1, random_state=0))
    pd.testing.assert_frame_equal(rescored[exact.columns], exact, atol=1e-5)


def test_l2_index_end_to_end_equals_exhaustive_with_padded_queries(tmp_path, docs):
    """Under l2 a zero (padding) query position scores -|d|^2, so neither search may drop it."""
    model = ColBERT.from_pretrained(tiny_xlmr_folder(tmp_path / "l2"), device="cpu", similarity="l2",
                                    query_augmentation=False, **SETTINGS)
    index = ColBERTIndex(tmp_path / "l2.colbert", model, verbose=False).index(docs[:120])
    Q = model.encode_queries(QUERIES)
    assert (np.abs(Q).sum(-1) == 0).any()
    topics = pt.new.queries(QUERIES)
    exact = index.retriever(num_results=10, exhaustive=True)(topics)
    every_cell = index.retriever(num_results=10, nprobe=index.meta()["n_centroids"], ncandidates=120)(topics)
    pd.testing.assert_frame_equal(every_cell, exact, atol=1e-5)
    stored, _ = index.payload().decode(index.payload().pids_of([exact["docno"][0]]))
    assert exact["score"][0] == pytest.approx(sum(max(-np.sum((q - d) ** 2) for d in stored) for q in Q[0]), abs=1e-4)


def test_retriever_keeps_query_columns_and_handles_empty_input(built):
    topics = pd.DataFrame({"qid": ["a", "b"], "query": ["river", "hamlet"], "query_0": ["fleuve", "hameau"],
                           "lang": ["fr", "fr"]})
    out = built.retriever(num_results=4)(topics)
    assert list(out.columns) == ["qid", "query", "query_0", "lang", "docno", "score", "rank"]
    assert out.groupby("qid")["rank"].apply(list).tolist() == [[0, 1, 2, 3]] * 2
    assert out["docno"].map(type).eq(str).all() and (out["query_0"].isin(["fleuve", "hameau"])).all()
    one = built.retriever(num_results=1)(topics)
    assert one["docno"].tolist() == out.groupby("qid")["docno"].first().tolist() and one["rank"].tolist() == [0, 0]
    assert one["score"].dtype == np.float64
    empty = built.retriever()(topics.iloc[:0])
    assert len(empty) == 0 and {"qid", "query", "docno", "score", "rank"} <= set(empty.columns)
    assert len(built.scorer()(pd.DataFrame(columns=["qid", "query", "docno"]))) == 0
    assert repr(built.retriever(num_results=4)) == f"{built!r}.retriever(num_results=4)"


def test_scorer_names_unknown_docnos(built):
    with pytest.raises(KeyError, match="nope"):
        built.scorer()(pd.DataFrame({"qid": ["1"], "query": ["x"], "docno": ["nope"]}))


def test_ann_recall_against_exhaustive_on_random_vectors(tmp_path):
    """Random clustered unit vectors (no model): end-to-end top 10 finds at least 95% of the exhaustive top 10."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 20, 3000)
    vectors = clustered_vectors(int(lengths.sum()), 32, rng, n_topics=200)
    docs = [{"docno": f"d{i}", "doc_embs": v} for i, v in enumerate(np.split(vectors, np.cumsum(lengths)[:-1]))]
    index = ColBERTIndex(tmp_path / "rand.colbert", verbose=False).index(docs)
    queries = np.stack([clustered_vectors(16, 32, np.random.default_rng(100 + i), n_topics=200) for i in range(30)])
    topics = pd.DataFrame({"qid": [str(i) for i in range(30)], "query_embs": list(queries)})
    exact = index.retriever(num_results=10, exhaustive=True)(topics)
    approx = index.retriever(num_results=10)(topics)
    recall = np.mean([len(set(approx.docno[approx.qid == q]) & set(exact.docno[exact.qid == q])) / 10
                      for q in topics.qid])
    assert recall >= 0.95
    # few candidates: the rough score and the centroid estimate choose them; their scores are still exact MaxSim.
    # (These queries are random directions, near-ties everywhere; on real text recall is far higher at the same
    # settings: benchmarks/index_search.py.)
    narrow = index.retriever(num_results=10, ncandidates=80)(topics)
    recall = np.mean([len(set(narrow.docno[narrow.qid == q]) & set(exact.docno[exact.qid == q])) / 10
                      for q in topics.qid])
    print(f"recall with 80 candidates: {recall:.3f}")
    assert recall >= 0.85  # 0.89
    reader = index.payload()
    for Q, (_, rows) in zip(queries, narrow.groupby("qid", sort=False)):
        exact_scores = reader.maxsim(torch.from_numpy(Q)[None], reader.pids_of(list(rows.docno)))[0]
        np.testing.assert_allclose(rows.score, exact_scores, rtol=1e-5)
    with pytest.raises(ValueError, match="query_embs"):
        index.retriever()(pt.new.queries(["text needs a model"]))


def test_centroid_estimate_by_hand():
    table = torch.tensor([[1.0, 0.2, 0.3], [0.0, 0.5, 0.9]])  # 2 query directions x 3 centroids
    codes, lengths, weights = np.array([0, 1, 2, 1]), np.array([2, 0, 2]), np.array([1, 3])
    # passage 0 (centroids 0, 1): 1 * max(1, .2) + 3 * max(0, .5) = 2.5; passage 1 has no tokens: 0;
    # passage 2 (centroids 2, 1): .3 + 3 * .9 = 3.0
    np.testing.assert_allclose(_weighted_maxsim(table, codes, lengths, weights), [2.5, 0.0, 3.0], rtol=1e-6)


def test_repeated_query_directions_are_grouped_and_probed_deeper(built):
    rng = np.random.default_rng(0)
    distinct = clustered_vectors(3, 8, rng, n_topics=3, noise=0.5)
    Q = np.concatenate([np.repeat(distinct[:1], 5, axis=0), distinct[1:]])
    leaders, sizes = _group_tokens(Q)
    np.testing.assert_array_equal(leaders, Q[[0, 5, 6]])
    assert sizes.tolist() == [5, 1, 1]
    reader = built.payload()
    table = reader.centroid_scores(leaders)
    cells, directions, unprobed = reader._probe_lists(table, sizes, nprobe=1)
    nearest = np.argsort(-(leaders @ reader.codec.centroids.T), axis=1, kind="stable")  # no ties in random vectors
    np.testing.assert_array_equal(cells, np.concatenate([nearest[0, :5], nearest[1:, 0]]))
    assert directions.tolist() == [0] * 5 + [1, 2]
    next_cells = [nearest[0, 5], nearest[1, 1], nearest[2, 1]]  # each direction's nearest unprobed centroid
    np.testing.assert_array_equal(unprobed.numpy(), table.numpy()[[0, 1, 2], next_cells])


def test_rough_score_by_hand():
    table = torch.tensor([[0.9, 0.5, 0.2, 0.1], [0.1, 0.8, 0.6, 0.0]])  # 2 query directions x 4 centroids
    # direction 0 probed centroid 0, direction 1 probed centroids 1 and 2; the best left unprobed score .5 and .1
    unprobed, weights = torch.tensor([0.5, 0.1]), np.array([1, 2])
    cells, directions = np.array([0, 1, 2]), np.array([0, 1, 1])
    # centroid 0 (d0) lists passages 0 and 2, centroid 1 (d1) passage 1, centroid 2 (d1) passages 0 and 1
    slots, list_lengths = np.array([0, 2, 1, 0, 1]), np.array([2, 1, 2])
    # gains: centroid 0: 1 * (.9 - .5) = .4; centroid 1: 2 * (.8 - .1) = 1.4; centroid 2: 2 * (.6 - .1) = 1.0
    # passage 0: .4 + 1.0; passage 1: 1.4 + 1.0 (a sum over the centroids, not a max per direction); passage 2: .4
    scores = _rough_scores(table, cells, directions, unprobed, weights, slots, list_lengths, 3)
    np.testing.assert_allclose(scores, [1.4, 2.4, 0.4], rtol=1e-6)


def test_distinct_passages_of_listed_entries(built):
    reader = built.payload()
    listed = np.random.default_rng(0).integers(0, len(reader), 500).astype(np.int32)
    for _ in range(2):  # the scratch array is reused
        pids, slots = reader._distinct(listed)
        np.testing.assert_array_equal(np.sort(pids), np.unique(listed))
        np.testing.assert_array_equal(pids[slots], listed)


def test_an_index_in_an_older_format_is_a_clear_error(tmp_path, built):
    old = tmp_path / "old.colbert"
    shutil.copytree(built.path, old)
    meta = json.loads((old / "pt_meta.json").read_text())
    (old / "pt_meta.json").write_text(json.dumps({**meta, "format_version": 1}))
    with pytest.raises(ValueError, match="index format 1, written by another version.*build it again"):
        ColBERTIndex.load(old).retriever()(pt.new.queries(["cat"]))


def test_in_memory_reader_gives_the_same_results(built):
    topics = pt.new.queries(QUERIES)
    in_memory = ColBERTIndex(built.path, built.model, in_memory=True)
    pd.testing.assert_frame_equal(in_memory.retriever(num_results=10)(topics), built.retriever(num_results=10)(topics))


def test_queries_searched_on_several_threads_give_the_results_of_one(built, monkeypatch):
    topics = pt.new.queries(QUERIES * 4)  # 20 queries, 5 distinct texts
    topics["query"] = [f"{q} {i}" for i, q in enumerate(topics["query"])]  # all distinct
    one = built.retriever(num_results=10, threads=1)(topics)
    rescored_one = built.scorer(threads=1)(one.drop(columns=["score", "rank"]))
    reader = built.payload()
    threads_seen = set()
    search = reader.search

    def recording_search(*args, **kwargs):
        threads_seen.add(threading.get_ident())
        return search(*args, **kwargs)

    monkeypatch.setattr(reader, "search", recording_search)
    four = built.retriever(num_results=10, threads=4)
    assert repr(four) == f"{built!r}.retriever(num_results=10, threads=4)"
    pd.testing.assert_frame_equal(four(topics), one)
    assert len(threads_seen) > 1
    pd.testing.assert_frame_equal(built.scorer(threads=4)(one.drop(columns=["score", "rank"])), rescored_one)
    with pytest.raises(ValueError, match="threads must be at least 1"):
        built.retriever(threads=0)


def test_exact_stage_stops_when_no_candidate_left_can_enter_the_top(monkeypatch):
    """Step 4 of search: candidates ranked by estimate are scored exactly until the next estimate, plus the largest
    excess of an exact score over its estimate so far, falls below the num_results-th best exact score."""
    import pyterrier_clirkd.index.search as search_module
    from pyterrier_clirkd.index.search import IndexReader

    monkeypatch.setattr(search_module, "FIRST_EXACT", 2)
    monkeypatch.setattr(search_module, "EXACT_BLOCK", 1)
    exact = {0: 5.0, 1: 6.0, 2: 7.0, 3: 9.0}

    class Stub:  # exact MaxSim looked up in `exact`
        def maxsim(self, Q, pids):
            return np.array([[exact[p] for p in pids]])

    pids = np.array([0, 1, 2, 3])
    # after 0 and 1: best 6.0, largest excess 6.0 - 4.9 = 1.1; 5.0 + 1.1 >= 6.0, so 2 is scored; then best 7.0,
    # excess 2.0, and 1.0 + 2.0 < 7.0: 3 is not scored (its excess of 8.0 is more than any seen: the rule's price)
    got_pids, got_scores = IndexReader._exact_while_promising(Stub(), None, pids, np.array([5.0, 4.9, 5.0, 1.0]), 1)
    assert got_pids.tolist() == [0, 1, 2] and got_scores.tolist() == [5.0, 6.0, 7.0]
    # 4.0 + 1.1 < 6.0: stops after the first two
    got_pids, _ = IndexReader._exact_while_promising(Stub(), None, pids, np.array([5.0, 4.9, 4.0, 1.0]), 1)
    assert got_pids.tolist() == [0, 1]
    # with 2 results the threshold is the 2nd best (5.0): every candidate stays promising, all are scored
    got_pids, _ = IndexReader._exact_while_promising(Stub(), None, pids, np.array([5.0, 4.9, 4.0, 3.0]), 2)
    assert got_pids.tolist() == [0, 1, 2, 3]
