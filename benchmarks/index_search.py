"""Benchmark ColBERTIndex on WordNet 3.0 glosses: indexing speed, size, query latency, recall and codec loss.

Two corpora, both WordNet 3.0 glosses (Debian ``wordnet-base``, fetched once with ``apt-get download`` and cached),
in three parts:

* speed: ``--speed-docs`` passages (default 100,000) encoded by a small random encoder (2 layers, hidden 128, the
  offline backbone's tokenizer and ColBERT settings). Prints indexing throughput and its overhead over the encoder's
  own time (the encoder calls are timed inside the build), bytes per stored token vector, end-to-end and exhaustive
  query latency (one query per call, query encoding included) at 1 and 2 threads, where search alone spends its time
  (candidate generation, exact stage, and the bound the exact stage puts on the speed-up), and recall@100 of end-to-end
  search against exhaustive MaxSim over the stored vectors.
* scale: the speed corpus and queries again, encoded by the offline backbone inside the build (about 8 minutes of
  encoding on 2 cores). Prints the same figures with a real encoder, whose forward time and clustered token vectors
  are a retriever's, where the random encoder's are not.
* quality: ``--quality-docs`` passages (default 10,000) encoded once by the offline backbone (``offline:me5-small``),
  then indexed from those vectors. Known-item queries: the lemma words of a sampled synset ("dog, domestic dog,
  Canis familiaris"), whose gloss is the one relevant passage. Prints MRR@10 of exhaustive full-precision MaxSim,
  exhaustive MaxSim over the stored (2-bit) vectors and end-to-end search, the codec's loss (stored vs full precision)
  averaged over ``--codec-seeds`` k-means draws (it moves by about 1% between draws), recall@100 of end-to-end search
  against exhaustive MaxSim over the stored vectors, and the indexing overhead over the backbone's encoding time.

Usage::

    python benchmarks/index_search.py                                   # 17-22 minutes on 2 cores
    python benchmarks/index_search.py --skip-scale                      # 8-13 minutes
    python benchmarks/index_search.py --speed-docs 20000 --quality-docs 2000 --queries 500   # a quick look
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pandas as pd
import pyterrier as pt
import torch

from pyterrier_clirkd import ColBERT, ColBERTIndex
from pyterrier_clirkd.index.search import NCANDIDATES, NPROBE

TARGETS = {"recall": 0.99, "bytes": 40.0, "mrr_loss": 0.01, "speedup": 20.0, "overhead": 1.1}
MARGINAL = ("codes.npy", "residuals.npy", "vectors.npy", "ivf_pids.npy", "doclens.npy", "docnos.txt")
POS = (("noun", "n"), ("verb", "v"), ("adj", "a"), ("adv", "r"))


# ---------------------------------------------------------------------- data
def wordnet_synsets(cache: Path) -> list[dict]:
    """Every WordNet 3.0 synset: docno (pos + offset), lemma words and gloss; cached after the first download."""
    cached = cache / "wordnet-3.0-glosses.jsonl.gz"
    if not cached.exists():
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["apt-get", "download", "wordnet-base"], cwd=tmp, check=True, capture_output=True)
            deb = next(Path(tmp).glob("wordnet-base_*.deb"))
            subprocess.run(["dpkg", "-x", str(deb), str(Path(tmp, "root"))], check=True)
            synsets = []
            for pos, tag in POS:
                for line in Path(tmp, "root/usr/share/wordnet", f"data.{pos}").read_text(encoding="utf-8").splitlines():
                    if line.startswith("  "):
                        continue  # licence header
                    head, _, gloss = line.partition(" | ")
                    fields = head.split()
                    lemmas = [fields[4 + 2 * i].replace("_", " ") for i in range(int(fields[3], 16))]
                    synsets.append({"docno": tag + fields[0], "lemmas": lemmas, "gloss": gloss.strip()})
        cache.mkdir(parents=True, exist_ok=True)
        tmp_file = cached.with_suffix(".tmp")
        with gzip.open(tmp_file, "wt", encoding="utf-8") as f:
            f.writelines(json.dumps(s) + "\n" for s in synsets)
        os.replace(tmp_file, cached)
    with gzip.open(cached, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def random_encoder(cache: Path, backbone_config) -> ColBERT:
    """A 2-layer, hidden-128 random XLM-R encoder with the offline backbone's tokenizer and ColBERT settings."""
    import transformers

    from pyterrier_clirkd.offline import offline_model_path

    folder = cache / "random-colbert-h128"
    if not (folder / "colbert_config.json").exists():
        with tempfile.TemporaryDirectory() as tmp:
            tokenizer = transformers.AutoTokenizer.from_pretrained(str(offline_model_path(verbose=False)))
            torch.manual_seed(0)
            config = transformers.XLMRobertaConfig(vocab_size=len(tokenizer), hidden_size=128, num_hidden_layers=2,
                                                   num_attention_heads=2, intermediate_size=512,
                                                   max_position_embeddings=520, pad_token_id=tokenizer.pad_token_id)
            transformers.XLMRobertaModel(config, add_pooling_layer=False).save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            settings = {k: v for k, v in backbone_config.to_dict().items() if k != "passage_fingerprint"}
            ColBERT.from_encoder(tmp, **settings).save_pretrained(folder)
    return ColBERT.from_pretrained(folder, device="cpu")


def query_text(synset: dict) -> str:
    return ", ".join(synset["lemmas"])


# ---------------------------------------------------------------------- measures
def set_threads(n: int) -> None:
    torch.set_num_threads(n)
    faiss.omp_set_num_threads(n)


def marginal_bytes(path: Path) -> tuple[int, int]:
    """(bytes of the files that grow with the collection, bytes of the fixed ones: centroids, buckets, metadata)."""
    files = [f for f in path.iterdir() if f.is_file()]
    marginal = sum(f.stat().st_size for f in files if f.name in MARGINAL)
    return marginal, sum(f.stat().st_size for f in files) - marginal


def timed(fn, *args) -> tuple[Any, float]:
    """(``fn(*args)``, the seconds it took)."""
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def latencies(transformer, queries: list[str], slow=None, n_slow: int = 0) -> tuple[list[float], list[float]]:
    """Seconds per call, one query per call: ``transformer`` on every query, and ``slow`` on ``n_slow`` of them spread
    among the others (so that both see the same drift in this shared machine's speed)."""
    fast_times, slow_times = [], []
    stride = max(1, len(queries) // max(n_slow, 1))
    for i, q in enumerate(queries):
        topic = pt.new.queries([q], qid=[str(i)])
        fast_times.append(timed(transformer, topic)[1])
        if slow is not None and i % stride == 0 and len(slow_times) < n_slow:
            slow_times.append(timed(slow, topic)[1])
    return fast_times, slow_times


def percentile(values: list[float], p: float) -> float:
    return float(np.percentile(values, p))


def recall_at(run: pd.DataFrame, reference: pd.DataFrame, k: int) -> float:
    got = run[run["rank"] < k].groupby("qid")["docno"].apply(set)
    want = reference[reference["rank"] < k].groupby("qid")["docno"].apply(set)
    return float(np.mean([len(got.get(q, set()) & want[q]) / len(want[q]) for q in want.index]))


def reciprocal_ranks(run: pd.DataFrame, target: dict[str, str], k: int = 10) -> np.ndarray:
    """Per query (in ``target`` order): 1 / (rank + 1) of the known item when it is in the top ``k``, else 0."""
    hits = run[(run["rank"] < k) & (run["docno"] == run["qid"].map(target))]
    rr = dict(zip(hits["qid"], 1.0 / (hits["rank"] + 1)))
    return np.array([rr.get(q, 0.0) for q in target])


def full_precision_run(Q: np.ndarray, vectors: list[np.ndarray], docnos: list[str], qids: list[str], k: int = 100,
                       block: int = 1 << 14, query_batch: int = 32) -> pd.DataFrame:
    """Exhaustive MaxSim over float32 vectors, written independently of the index (numpy, block by block)."""
    lengths = np.array([len(v) for v in vectors])
    ends = np.searchsorted(np.cumsum(lengths), np.arange(block, lengths.sum() + block, block), side="right")
    bounds = np.unique(np.concatenate([[0], np.maximum(ends, 1), [len(vectors)]]))
    scores = np.zeros((len(Q), len(vectors)), dtype=np.float32)
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        D = np.concatenate(vectors[lo:hi])
        starts = np.concatenate([[0], np.cumsum(lengths[lo:hi])[:-1]])
        for q in range(0, len(Q), query_batch):
            batch = Q[q:q + query_batch]
            best = np.maximum.reduceat(batch.reshape(-1, Q.shape[-1]) @ D.T, starts, axis=1)  # [nq * Lq, docs]
            scores[q:q + query_batch, lo:hi] = best.reshape(len(batch), Q.shape[1], -1).sum(1)
    rows = []
    for qid, s in zip(qids, scores):
        top = np.argsort(-s, kind="stable")[:k]
        rows += [(qid, docnos[j], float(s[j]), r) for r, j in enumerate(top)]
    return pd.DataFrame(rows, columns=["qid", "docno", "score", "rank"])


# ---------------------------------------------------------------------- the three parts
def speed_corpus(args, synsets: list[dict]) -> tuple[list[dict], list[str]]:
    """The ``--speed-docs`` glosses of the speed and scale parts, and the ``--latency-queries`` queries searched
    there."""
    rng = np.random.default_rng(args.seed)
    docs = [synsets[i] for i in rng.permutation(len(synsets))[:args.speed_docs]]
    return docs, [query_text(docs[i]) for i in rng.choice(len(docs), args.latency_queries, replace=False)]


def speed_part(args, synsets: list[dict], work: Path, backbone_config, report: dict) -> None:
    docs, queries = speed_corpus(args, synsets)
    encoder = random_encoder(args.cache, backbone_config)
    print(f"\n== speed: {len(docs):,} WordNet glosses, random 2-layer hidden-128 encoder, dim "
          f"{encoder.config.dim}, {args.nbits} bits ==")
    index, report["speed_overhead"], report["speed_bytes"] = build_from_texts(work / "speed.colbert", encoder, docs,
                                                                              args)
    search_figures(index, queries, args, report, "speed")


def scale_part(args, synsets: list[dict], work: Path, model: ColBERT, report: dict) -> None:
    """The speed part's passages and queries with the offline backbone encoding them inside the build: the indexing
    overhead, latency and recall@100 at that scale with a real encoder (whose vectors cluster as a retriever's do)."""
    docs, queries = speed_corpus(args, synsets)
    print(f"\n== scale: the same {len(docs):,} WordNet glosses, offline backbone {model!r}, {args.nbits} bits ==")
    index, report["scale_overhead"], report["scale_bytes"] = build_from_texts(work / "scale.colbert", model, docs, args)
    search_figures(index, queries, args, report, "scale")


def search_figures(index: ColBERTIndex, queries: list[str], args, report: dict, part: str) -> None:
    """Latency at 1 and 2 threads, where search spends its time, and recall@100 against exhaustive search at a few
    settings; the speed-ups and the recall at the defaults go into ``report`` under ``part``."""
    for threads in (1, 2):
        report[f"{part}_speedup_{threads}"] = speedup(index, queries, threads, args.exhaustive_queries)
    set_threads(1)
    search_breakdown(index, index.built_model().encode_queries(queries[:args.exhaustive_queries]))
    set_threads(args.threads)
    topics = pt.new.queries(queries)
    exact = index.retriever(num_results=100, exhaustive=True)(topics)
    report[f"{part}_recall"] = sweep(index, topics, exact, f"{part} corpus")


def build_from_texts(path: Path, model: ColBERT, docs: list[dict], args) -> tuple[ColBERTIndex, float, float]:
    """Indexes the glosses of ``docs`` with ``model`` encoding them inside the build; prints throughput, the overhead
    over the encoder's own time (timed inside the build) and the size; returns (index, overhead, bytes per vector)."""
    set_threads(args.threads)
    index = ColBERTIndex(path, model, nbits=args.nbits, mode="overwrite", resume=False, in_memory=True,
                         verbose=args.verbose)
    start = time.perf_counter()
    index.index({"docno": d["docno"], "text": d["gloss"]} for d in docs)
    total = time.perf_counter() - start
    meta = index.meta()
    encode = meta["build"]["encode_seconds"]
    marginal, fixed = marginal_bytes(Path(index.path))
    print(f"indexing: {total:.1f} s for {meta['n_docs']:,} passages / {meta['n_tokens']:,} token vectors "
          f"({meta['n_docs'] / total:,.0f} passages/s, {meta['n_tokens'] / total:,.0f} vectors/s), "
          f"{meta['n_centroids']:,} centroids")
    print(f"  encoder's own time inside the build: {encode:.1f} s -> indexing / encoding = {total / encode:.3f}x "
          f"(compression and merge: {meta['build']['merge_seconds']:.1f} s)")
    print(f"size: {marginal / meta['n_tokens']:.2f} bytes per stored token vector (marginal files), "
          f"plus {fixed / 1e6:.2f} MB fixed (centroids, buckets, metadata)")
    return index, total / encode, marginal / meta["n_tokens"]


def speedup(index: ColBERTIndex, queries: list[str], threads: int, n_exhaustive: int) -> float:
    """Prints end-to-end and exhaustive latency (one query per call, query encoding included) on ``threads`` threads;
    returns the ratio of their medians."""
    set_threads(threads)
    e2e = index.retriever(num_results=100)
    latencies(e2e, queries[:3])  # warm up
    fast, slow = latencies(e2e, queries, index.retriever(num_results=100, exhaustive=True), n_exhaustive)
    ratio = statistics.median(slow) / statistics.median(fast)
    print(f"latency, {threads} thread{'s' * (threads > 1)}: end-to-end p50 {1e3 * percentile(fast, 50):.1f} ms, "
          f"p95 {1e3 * percentile(fast, 95):.1f} ms; exhaustive p50 {1e3 * percentile(slow, 50):.0f} ms "
          f"-> {ratio:.1f}x faster")
    return ratio


def search_breakdown(index: ColBERTIndex, Q: np.ndarray, num_results: int = 100) -> None:
    """Where end-to-end search spends its time, 1 thread, query vectors given, each query timed in turn for every
    part (so that the machine's speed drifts alike for all): the whole search, its exact stage (the calls to exact
    MaxSim inside a second run of the same search) and exhaustive search. The exact stage alone bounds the speed-up,
    whatever candidate generation costs."""
    reader = index.payload()
    parts: dict[str, list[float]] = {"search": [], "exact": [], "exhaustive": []}
    scored = []
    maxsim = reader.maxsim

    def timed_maxsim(Q, pids):
        result, seconds = timed(maxsim, Q, pids)
        parts["exact"][-1] += seconds
        scored[-1] += len(pids)
        return result

    for q in Q:
        parts["search"].append(timed(reader.search, q, num_results)[1])
        parts["exact"].append(0.0)
        scored.append(0)
        reader.maxsim = timed_maxsim  # shadows the method for one search
        try:
            reader.search(q, num_results)
        finally:
            del reader.maxsim
        parts["exhaustive"].append(timed(reader.exhaustive, q[None], num_results)[1])
    median = {part: statistics.median(times) for part, times in parts.items()}
    print(f"search alone (query vectors given, 1 thread, p50 over {len(Q)} queries): end to end "
          f"{1e3 * median['search']:.1f} ms, of which exact MaxSim over its candidates ({np.mean(scored):,.0f} on "
          f"average) {1e3 * median['exact']:.1f} ms; exhaustive {1e3 * median['exhaustive']:.0f} ms -> "
          f"{median['exhaustive'] / median['search']:.1f}x; the exact stage alone bounds it at "
          f"{median['exhaustive'] / median['exact']:.1f}x")


def sweep(index: ColBERTIndex, topics: pd.DataFrame, exact: pd.DataFrame, name: str) -> float:
    """Recall@100 against exhaustive search and mean latency, at the default and a few other settings."""
    exact = exact[exact["qid"].isin(set(topics["qid"]))]
    default = None
    encoding = "query vectors given" if "query_embs" in topics.columns else "query encoding included"
    settings = ((NPROBE, NCANDIDATES), (NPROBE // 2, NCANDIDATES), (2 * NPROBE, NCANDIDATES),
                (NPROBE, NCANDIDATES // 2), (NPROBE, 2 * NCANDIDATES))
    for nprobe, ncandidates in settings:
        retriever = index.retriever(num_results=100, nprobe=nprobe, ncandidates=ncandidates)
        run, seconds = timed(retriever, topics)
        recall = recall_at(run, exact, 100)
        label = f"nprobe={nprobe}, ncandidates={ncandidates}"
        label = f"defaults ({label})" if (nprobe, ncandidates) == settings[0] else label
        print(f"recall@100 vs exhaustive over stored vectors, {name}, {label}: {recall:.4f} "
              f"({1e3 * seconds / len(topics):.1f} ms/query in a batch of {len(topics)}, "
              f"torch on {torch.get_num_threads()} threads, {encoding})")
        default = recall if default is None else default
    threads = torch.get_num_threads()
    set_threads(1)
    _, seconds = timed(index.retriever(num_results=100, threads=threads), topics)
    set_threads(threads)
    print(f"  defaults with threads={threads}: {1e3 * seconds / len(topics):.1f} ms/query ({threads} queries at once, "
          f"torch on 1 thread each)")
    return default


def quality_part(args, synsets: list[dict], work: Path, model: ColBERT, report: dict) -> None:
    rng = np.random.default_rng(args.seed + 1)
    docs = [synsets[i] for i in rng.permutation(len(synsets))[:args.quality_docs]]
    known = [docs[i] for i in rng.choice(len(docs), args.queries, replace=False)]
    print(f"\n== quality: {len(docs):,} WordNet glosses, {len(known)} known-item lemma queries, offline backbone "
          f"{model!r}, {args.nbits} bits ==")
    set_threads(args.threads)
    start = time.perf_counter()
    vectors = []
    for lo in range(0, len(docs), 2048):
        vectors += model.encode_docs([d["gloss"] for d in docs[lo:lo + 2048]])
    encode = time.perf_counter() - start
    start = time.perf_counter()
    Q = model.encode_queries([query_text(s) for s in known])
    query_seconds = time.perf_counter() - start

    def index_vectors(name: str, seed: int) -> ColBERTIndex:  # the encoded glosses, indexed with k-means seed ``seed``
        index = ColBERTIndex(work / name, model, nbits=args.nbits, mode="overwrite", resume=False, in_memory=True,
                             seed=seed, verbose=args.verbose)
        return index.index({"docno": d["docno"], "doc_embs": v} for d, v in zip(docs, vectors))

    index, merge = timed(index_vectors, "quality.colbert", 0)
    meta = index.meta()
    marginal, _ = marginal_bytes(Path(index.path))
    print(f"encoding: {encode:.1f} s for {len(docs):,} passages ({meta['n_tokens']:,} vectors), queries "
          f"{1e3 * query_seconds / len(known):.1f} ms each; indexing the vectors: {merge:.1f} s "
          f"-> indexing / encoding = {(encode + merge) / encode:.3f}x; {marginal / meta['n_tokens']:.2f} bytes/vector")
    report["quality_overhead"] = (encode + merge) / encode
    report["quality_bytes"] = marginal / meta["n_tokens"]

    qids = [f"q{i}" for i in range(len(known))]
    target = dict(zip(qids, (s["docno"] for s in known)))
    topics = pd.DataFrame({"qid": qids, "query": [query_text(s) for s in known], "query_embs": list(Q)})
    full = full_precision_run(Q, vectors, [d["docno"] for d in docs], qids)
    exact = index.retriever(num_results=100, exhaustive=True)(topics)
    start = time.perf_counter()
    e2e = index.retriever(num_results=100)(topics)
    e2e_seconds = (time.perf_counter() - start) / len(topics)
    rr = {name: reciprocal_ranks(run, target) for name, run in (("full", full), ("stored", exact), ("e2e", e2e))}
    mrr = {name: float(r.mean()) for name, r in rr.items()}

    def relative_loss(name: str) -> tuple[float, float]:  # and the standard error of the paired per-query differences
        diff = rr["full"] - rr[name]
        return float(diff.mean() / mrr["full"]), float(diff.std(ddof=1) / np.sqrt(len(diff)) / mrr["full"])

    def loss(name: str) -> str:
        mean, se = relative_loss(name)
        return f"loss {100 * mean:+.2f}% +- {100 * se:.2f}% (1 s.e.)"

    print(f"MRR@10: exhaustive full precision {mrr['full']:.4f}; exhaustive over stored vectors {mrr['stored']:.4f} "
          f"(codec {loss('stored')}); end to end {mrr['e2e']:.4f} ({loss('e2e')})")
    print(f"recall@100 of exhaustive over stored vectors vs full precision: {recall_at(exact, full, 100):.4f}")
    # the codec's loss varies with the k-means draw by about as much as with the queries: average over several draws
    first_loss, report["mrr_loss_se"] = relative_loss("stored")
    losses = [first_loss]
    for seed in range(1, args.codec_seeds):
        redrawn = index_vectors(f"quality-seed{seed}.colbert", seed)
        stored = reciprocal_ranks(redrawn.retriever(num_results=100, exhaustive=True)(topics), target)
        losses.append(1 - stored.mean() / mrr["full"])
    report["mrr_loss"] = float(np.mean(losses))
    print(f"codec loss over {len(losses)} k-means draws (seeds 0-{len(losses) - 1}): "
          f"{', '.join(f'{100 * x:+.2f}%' for x in losses)} -> mean {100 * report['mrr_loss']:+.2f}%")
    report["quality_recall"] = recall_at(e2e, exact, 100)
    print(f"recall@100 vs exhaustive over stored vectors, backbone, defaults, all {len(topics)} queries: "
          f"{report['quality_recall']:.4f} ({1e3 * e2e_seconds:.1f} ms/query, query vectors given)")
    sweep(index, topics.head(args.sweep_queries), exact, "backbone")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--speed-docs", type=int, default=100_000, help="passages for the speed figures")
    parser.add_argument("--quality-docs", type=int, default=10_000, help="passages for the quality figures")
    parser.add_argument("--queries", type=int, default=3000,
                        help="known-item queries for the quality figures (3,000: the MRR loss to +-0.8%%, 1 s.e.)")
    parser.add_argument("--sweep-queries", type=int, default=500,
                        help="of those, searched at other nprobe / ncandidates settings")
    parser.add_argument("--latency-queries", type=int, default=50, help="queries timed one by one (speed corpus)")
    parser.add_argument("--exhaustive-queries", type=int, default=20,
                        help="of those, timed with exhaustive search (its time varies with the query's length)")
    parser.add_argument("--codec-seeds", type=int, default=3,
                        help="k-means draws (index seeds) the codec's MRR loss is averaged over (quality figures)")
    parser.add_argument("--nbits", type=int, default=2, choices=[1, 2, 4, 16])
    parser.add_argument("--threads", type=int, default=2, help="threads for encoding and indexing")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "pyterrier_clirkd" / "benchmarks",
                        help="keeps the WordNet download and the random encoder between runs")
    parser.add_argument("--work", type=Path, help="keep the indexes in this folder (default: a temporary one)")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", action="store_true", help="progress bars")
    args = parser.parse_args()

    started = time.perf_counter()
    synsets = wordnet_synsets(args.cache)
    print(f"WordNet 3.0: {len(synsets):,} synsets (cache: {args.cache})")
    model = ColBERT.from_pretrained("offline:me5-small", device="cpu")
    report: dict = {}
    work = args.work or Path(tempfile.mkdtemp(prefix="clirkd-index-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if not args.skip_speed:
            speed_part(args, synsets, work, model.config, report)
        if not args.skip_quality:
            quality_part(args, synsets, work, model, report)
        if not args.skip_scale:
            scale_part(args, synsets, work, model, report)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)

    print(f"\n== targets ({time.perf_counter() - started:.0f} s in all) ==")
    speed, quality = f"{args.speed_docs:,} passages", f"{args.quality_docs:,} passages"
    rows = [("quality_recall", f"recall@100 end to end vs exhaustive, backbone, {quality}", ">=",
             TARGETS["recall"], "{:.4f}"),
            ("scale_recall", f"recall@100 end to end vs exhaustive, backbone, {speed}", ">=", TARGETS["recall"],
             "{:.4f}"),
            ("speed_recall", "recall@100 end to end vs exhaustive, random encoder", ">=", TARGETS["recall"], "{:.4f}"),
            ("speed_bytes", "bytes per stored vector, speed index", "<=", TARGETS["bytes"], "{:.2f}"),
            ("scale_bytes", f"bytes per stored vector, backbone, {speed}", "<=", TARGETS["bytes"],
             "{:.2f}"),
            ("quality_bytes", f"bytes per stored vector, backbone, {quality}", "<=", TARGETS["bytes"],
             "{:.2f}"),
            ("mrr_loss", f"relative MRR@10 loss of exhaustive search over stored vs full-precision vectors, mean over "
                         f"{args.codec_seeds} k-means draws (1 s.e. of one draw over the queries "
                         f"{report.get('mrr_loss_se', 0):.2%})", "<=", TARGETS["mrr_loss"], "{:.2%}"),
            ("speed_speedup_1", "end-to-end speed-up over exhaustive, random encoder, 1 thread", ">=",
             TARGETS["speedup"], "{:.1f}x"),
            ("speed_speedup_2", "end-to-end speed-up over exhaustive, random encoder, 2 threads", ">=",
             TARGETS["speedup"], "{:.1f}x"),
            ("scale_speedup_1", f"end-to-end speed-up over exhaustive, backbone, {speed}, 1 thread", ">=",
             TARGETS["speedup"], "{:.1f}x"),
            ("scale_speedup_2", f"end-to-end speed-up over exhaustive, backbone, {speed}, 2 threads", ">=",
             TARGETS["speedup"], "{:.1f}x"),
            ("quality_overhead", f"indexing / encoder time, backbone, vectors given, {quality}", "<=",
             TARGETS["overhead"], "{:.3f}x"),
            ("scale_overhead", f"indexing / encoder time, backbone, {speed}", "<=", TARGETS["overhead"],
             "{:.3f}x"),
            ("speed_overhead", "indexing / encoder time, random 2-layer encoder", "<=", TARGETS["overhead"], "{:.3f}x")]
    for key, label, sense, target, fmt in rows:
        if key in report:
            value = report[key]
            ok = value >= target if sense == ">=" else value <= target
            print(f"{label}: {fmt.format(value)} (target {sense} {fmt.format(target)}) "
                  f"{'met' if ok else 'MISSED by ' + fmt.format(abs(value - target)).rstrip('x')}")

if __name__ == "__main__":
    sys.exit(main())
