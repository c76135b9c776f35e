"""Searching a ColBERT index: candidate generation, decompression and exact MaxSim, as PyTerrier transformers.

End-to-end search of one query (``Lq`` token vectors), after PLAID (Santhanam et al., 2022) and WARP (Scheerer et
al., 2025):

1. probe: query positions that score nothing (zero vectors, under cosine) are dropped, and near-identical query
   tokens (cosine >= 0.98, e.g. augmentation tokens, which all point the same way) are grouped into directions; the
   ``nprobe`` nearest centroids of each are probed (a direction that counts ``w`` times in the score is searched ``w``
   times deeper, at most ``8 * nprobe`` centroids);
2. shortlist: the passages listed under those centroids are the candidates; when there are more than
   ``SHORTLIST * ncandidates``, they are ranked by a rough score and the best ``SHORTLIST * ncandidates`` are kept.
   The rough score sums, over the probed centroids that list the passage, how much the centroid scores above the best
   centroid its direction left unprobed (times the direction's weight): one bincount over the inverted-list entries,
   nothing decompressed. It replaced WARP's imputed centroid MaxSim (per direction, the best probed centroid that
   lists the passage, else the best unprobed one), which kept the same share of the exhaustive top 100 after the
   shortlist (0.9918 vs 0.9919, 100,000 WordNet glosses, 120 queries) at six times the cost (1.24 vs 0.21 ms);
3. estimate: PLAID's approximate score, MaxSim over all the shortlisted passages' tokens with each token replaced by
   its centroid; the best ``ncandidates`` are kept, best first;
4. score: their token vectors are decompressed and scored by exact MaxSim, ``FIRST_EXACT`` (at least
   ``num_results``) at once, then ``EXACT_BLOCK`` at a time while a candidate left could still enter the top
   ``num_results``: while the next estimate, plus the most by which an exact score has exceeded its estimate so far,
   reaches the ``num_results``-th best exact score. On 100,000 WordNet glosses (65,536 centroids, 50 queries) that
   scores about 1,630 candidates per query with a random encoder's vectors and 3,990 with the offline backbone's, and
   finds 0.997 and 0.993 of the exhaustive top 100. The top ``num_results`` are returned.

Exhaustive search decompresses every passage and scores it by exact MaxSim (for small indexes and for measuring what
candidate generation loses).
"""
from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import pandas as pd
import pyterrier as pt
import torch
from tqdm.auto import tqdm

from .build import CODES, DOCLENS, DOCNOS, FORMAT_VERSION, IVF_OFFSETS, IVF_PIDS, META, PAYLOAD
from .codec import ResidualCodec

SHORTLIST = 2  # passages kept by the rough score, per candidate
DECODE_BLOCK = 4096  # token vectors decoded at a time
NPROBE = 256  # centroids probed per query token direction, by default (0.4% of 65,536: see auto_n_centroids)
NCANDIDATES = 6144  # passages scored exactly at most, by default at least: on 100,000 glosses encoded by the offline
# backbone (100 queries, search alone), 4,096 found 0.983 of the exhaustive top 100 in 30 ms, 6,144 found 0.992 in 38;
# on the random encoder's index 0.993 and 0.996, 15.5 and 16.6 ms end to end
FIRST_EXACT = 1024  # candidates scored exactly before the stopping rule is first checked
EXACT_BLOCK = 256  # candidates scored exactly at a time after those


class IndexReader:
    """Read access to the files of a built index (memory-mapped), and the search primitives over them.

    Example::

        reader = IndexReader("wiki.colbert")                 # in_memory=True: read the vectors into RAM
        vectors, lengths = reader.decode([0, 5])            # token vectors of passages 0 and 5
        pids, scores = reader.search(Q, num_results=10)    # Q: [Lq, dim] query token vectors
    """

    def __init__(self, path: str | Path, in_memory: bool = False):
        self.path = Path(path)
        mmap_mode = None if in_memory else "r"
        self.meta = json.loads((self.path / META).read_text())
        if self.meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{self.path} is in index format {self.meta.get('format_version')}, written by another "
                             f"version of pyterrier-clirkd; this one reads format {FORMAT_VERSION}: build it again")
        self.codec = ResidualCodec.load(self.path)
        self.similarity = self.meta["similarity"]
        self.doclens = np.load(self.path / DOCLENS)
        self.offsets = np.concatenate([[0], np.cumsum(self.doclens, dtype=np.int64)])
        self.codes = np.load(self.path / CODES, mmap_mode=mmap_mode)
        self.payload = np.load(self.path / PAYLOAD[self.codec.nbits == 16], mmap_mode=mmap_mode)
        self.ivf_pids = np.load(self.path / IVF_PIDS, mmap_mode=mmap_mode)
        self.ivf_offsets = np.load(self.path / IVF_OFFSETS)
        self.docnos = np.array((self.path / DOCNOS).read_text(encoding="utf-8").split("\n")[:-1], dtype=object)
        self._pid_of: Optional[dict[str, int]] = None
        self._scratch = threading.local()  # one array over all passages per thread, for _distinct
        # the centroids as candidate generation reads them: bfloat16 where the CPU multiplies it natively (4x faster
        # than float32; similarities within 0.003 of float32, 0.0006 on average, which can only reorder candidates:
        # returned scores are always exact MaxSim)
        bf16 = torch.cpu._is_avx512_bf16_supported()
        self._centroids = torch.from_numpy(self.codec.centroids).to(torch.bfloat16 if bf16 else torch.float32)
        self._centroid_norms = (torch.from_numpy(self.codec.centroids).pow(2).sum(1)  # squared, for l2 similarity
                                if self.similarity == "l2" else None)

    def __len__(self) -> int:
        return len(self.doclens)

    def pids_of(self, docnos) -> np.ndarray:
        """Passage ids of docnos; a clear error names docnos that are not in the index."""
        if self._pid_of is None:
            self._pid_of = {d: i for i, d in enumerate(self.docnos)}
        pids = np.fromiter((self._pid_of.get(d, -1) for d in docnos), dtype=np.int64, count=len(docnos))
        if (pids < 0).any():
            missing = list(dict.fromkeys(np.asarray(docnos, dtype=object)[pids < 0]))
            raise KeyError(f"{len(missing)} docnos are not in the index {self.path}: {missing[:5]}")
        return pids

    # ------------------------------------------------------------------ decompression and exact scoring
    def token_ids(self, pids: np.ndarray) -> np.ndarray:
        """Positions of the stored token vectors of ``pids``, passage after passage."""
        return _ranges(self.offsets[pids], self.offsets[pids + 1])

    def decode(self, pids) -> tuple[np.ndarray, np.ndarray]:
        """Token vectors ``float32 [sum of lengths, dim]`` of the passages ``pids``, and their lengths."""
        pids = np.asarray(pids, dtype=np.int64)
        tokens = self.token_ids(pids)
        return self.codec.decode(np.take(self.codes, tokens), np.take(self.payload, tokens, axis=0)), self.doclens[pids]

    def token_scores(self, Q: torch.Tensor, tokens: np.ndarray) -> torch.Tensor:
        """Similarity ``[len(tokens), len(Q)]`` of the stored token vectors ``tokens`` with query vectors ``Q``,
        decoded and scored ``DECODE_BLOCK`` vectors at a time (a block stays in the CPU cache: about 1.6x faster than
        decoding all of them first)."""
        sim = torch.empty((len(tokens), len(Q)), dtype=torch.float32)
        for lo in range(0, len(tokens), DECODE_BLOCK):
            block = tokens[lo:lo + DECODE_BLOCK]
            codes, payload = np.take(self.codes, block), np.take(self.payload, block, axis=0)
            vectors = torch.from_numpy(self.codec.decode(codes, payload, normalize=False))
            part = torch.mm(vectors, Q.T, out=sim[lo:lo + len(block)])
            if self.codec.renormalises:  # cheaper than normalising the vectors: Lq columns instead of dim
                part /= vectors.norm(dim=1, keepdim=True).clamp_min_(1e-12)
            if self.similarity == "l2":
                part.mul_(2).sub_(vectors.pow(2).sum(1, keepdim=True)).sub_(Q.pow(2).sum(1)[None])
        return sim

    def maxsim(self, Q: torch.Tensor, pids: np.ndarray) -> np.ndarray:
        """Exact MaxSim of queries ``Q [nq, Lq, dim]`` with the passages ``pids`` -> ``[nq, len(pids)]``."""
        pids = np.asarray(pids, dtype=np.int64)
        sim = self.token_scores(Q.reshape(-1, Q.shape[-1]), self.token_ids(pids))
        best = _segment_max(sim, self.doclens[pids])  # [n, nq * Lq]
        return best.reshape(len(pids), Q.shape[0], Q.shape[1]).sum(-1).T.numpy()

    # ------------------------------------------------------------------ end-to-end and exhaustive search
    def search(self, Q: np.ndarray, num_results: int, nprobe: int = NPROBE, ncandidates: int = NCANDIDATES
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``num_results`` (passage ids, scores) for one query's token vectors ``Q [Lq, dim]``."""
        Q = np.ascontiguousarray(Q, dtype=np.float32)
        if self.similarity == "cosine":
            Q = Q[np.any(Q != 0, axis=1)]  # positions that score nothing (padding without query augmentation)
        if not len(Q):
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        directions, weights = _group_tokens(Q)
        table = self.centroid_scores(directions)
        cells, cell_direction, unprobed = self._probe_lists(table, weights, nprobe)
        starts, ends = self.ivf_offsets[cells], self.ivf_offsets[cells + 1]
        listed = self.ivf_pids[_ranges(starts, ends)]
        pids, slots = self._distinct(listed)
        if len(pids) > SHORTLIST * ncandidates:
            rough = _rough_scores(table, cells, cell_direction, unprobed, weights, slots, ends - starts, len(pids))
            pids = _best(pids, rough, SHORTLIST * ncandidates)
        else:
            pids = np.sort(pids)
        Qt = torch.from_numpy(Q)[None]
        if len(pids) <= max(FIRST_EXACT, num_results):
            return _top(pids, self.maxsim(Qt, pids)[0], num_results)
        estimate = _weighted_maxsim(table, np.take(self.codes, self.token_ids(pids)), self.doclens[pids], weights)
        order = _top(np.arange(len(estimate)), estimate, ncandidates)[0]  # best first, ties to the lower position
        return _top(*self._exact_while_promising(Qt, pids[order], estimate[order], num_results), num_results)

    def _exact_while_promising(self, Q: torch.Tensor, pids: np.ndarray, estimate: np.ndarray, num_results: int
                               ) -> tuple[np.ndarray, np.ndarray]:
        """Exact MaxSim of candidates ``pids`` ranked by ``estimate``, best first, scored until none left could enter
        the top ``num_results`` (step 4 of the module docstring); returns (the scored pids, their scores)."""
        n = min(len(pids), max(FIRST_EXACT, num_results))
        scores = self.maxsim(Q, pids[:n])[0]
        while n < len(pids):
            threshold = np.partition(scores, n - num_results)[n - num_results]
            if estimate[n] + (scores - estimate[:n]).max() < threshold:
                break
            scores = np.concatenate([scores, self.maxsim(Q, pids[n:n + EXACT_BLOCK])[0]])
            n = len(scores)
        return pids[:n], scores

    def centroid_scores(self, directions: np.ndarray) -> torch.Tensor:
        """Similarity ``[len(directions), n_centroids]`` of the query directions with every centroid (direction-major:
        each direction's row is read contiguously by the probe)."""
        D = torch.from_numpy(directions)
        table = (D.to(self._centroids.dtype) @ self._centroids.T).float()
        if self.similarity == "l2":
            table = 2 * table - D.pow(2).sum(1, keepdim=True) - self._centroid_norms
        return table

    def _probe_lists(self, table: torch.Tensor, weights: np.ndarray, nprobe: int
                     ) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
        """The probed centroids, direction by direction (see the module docstring), from the centroids' similarities
        ``table [directions, n_centroids]``: (centroid ids, the direction each was probed for, and per direction the
        similarity of its nearest centroid left unprobed, or of its farthest one when every centroid was probed)."""
        depth = np.minimum(np.minimum(nprobe * weights, 8 * nprobe), self.codec.n_centroids)
        nearest = torch.topk(table, int(min(depth.max() + 1, self.codec.n_centroids)), dim=1)
        ids = nearest.indices.numpy()
        cells = np.concatenate([row[:d] for row, d in zip(ids, depth)])
        unprobed = nearest.values[torch.arange(len(depth)), torch.from_numpy(np.minimum(depth, len(ids[0]) - 1))]
        return cells, np.repeat(np.arange(len(depth)), depth), unprobed

    def _distinct(self, listed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the distinct passage ids in ``listed``, in no particular order; the position of each entry's passage among
        them). Linear time, no sort: it scatters through a per-thread array over all passages."""
        scratch = getattr(self._scratch, "array", None)
        if scratch is None:
            scratch = self._scratch.array = np.empty(len(self), dtype=np.int32)
        listed = listed.astype(np.intp)  # once, rather than numpy converting it at each of four indexings
        entries = np.arange(len(listed), dtype=np.int32)
        np.put(scratch, listed, entries)  # one entry of each passage stays written
        pids = listed[np.take(scratch, listed) == entries]
        np.put(scratch, pids, np.arange(len(pids), dtype=np.int32))
        return pids, np.take(scratch, listed).astype(np.intp)

    def exhaustive(self, Q: np.ndarray, num_results: int, verbose: bool = False, budget: int = 1 << 24
                   ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Top ``num_results`` (passage ids, scores) of each query ``Q [nq, Lq, dim]`` by MaxSim over every stored
        passage, decompressed block by block; similarity matrices and decoded blocks stay near ``budget`` floats.
        Under cosine similarity, query positions that are zero in every query (padding) are skipped: they score 0."""
        Q = np.ascontiguousarray(Q, dtype=np.float32)
        if self.similarity == "cosine":  # a position that is zero in every query scores 0 everywhere: skip it
            scoring = np.any(Q != 0, axis=(0, 2))
            scoring[0] |= not scoring.any()  # all-zero queries still rank every passage (each scoring 0)
            Q = np.ascontiguousarray(Q[:, scoring])
        per_batch = max(1, min(len(Q), budget // (Q.shape[1] * 4096)))  # at least 4,096 tokens per block
        block_tokens = max(4096, min(budget // (per_batch * Q.shape[1]), budget // Q.shape[2]))
        bounds = np.searchsorted(self.offsets, np.arange(0, self.offsets[-1], block_tokens), side="right") - 1
        bounds = np.unique(np.concatenate([bounds, [len(self)]]))
        blocks = list(zip(bounds[:-1], bounds[1:]))
        results = []
        with tqdm(total=len(blocks) * -(-len(Q) // per_batch), desc="exhaustive search", unit="block",
                  disable=not verbose) as progress:
            for first in range(0, len(Q), per_batch):
                Qt = torch.from_numpy(Q[first:first + per_batch])
                best = [(np.zeros(0, np.int64), np.zeros(0, np.float32)) for _ in range(len(Qt))]
                for lo, hi in blocks:
                    pids = np.arange(lo, hi)
                    scores = self.maxsim(Qt, pids)
                    best = [_top(np.concatenate([b_pids, pids]), np.concatenate([b_scores, s]), num_results)
                            for (b_pids, b_scores), s in zip(best, scores)]
                    progress.update()
                results += best
        return results


def _group_tokens(Q: np.ndarray, threshold: float = 0.98) -> tuple[np.ndarray, np.ndarray]:
    """Query token vectors grouped greedily by cosine >= ``threshold``: (first vector of each group, group sizes)."""
    unit = Q / np.maximum(np.linalg.norm(Q, axis=1, keepdims=True), 1e-12)
    close = (unit @ unit.T >= threshold) | np.all(Q[:, None] == Q[None], axis=-1)  # equal zero vectors too (l2)
    group = np.full(len(Q), -1)
    leaders = []
    for i in range(len(Q)):
        if group[i] < 0:
            group[(group < 0) & close[i]] = len(leaders)
            leaders.append(i)
    return np.ascontiguousarray(Q[leaders]), np.bincount(group)


def _rough_scores(table: torch.Tensor, cells: np.ndarray, directions: np.ndarray, unprobed: torch.Tensor,
                  weights: np.ndarray, slots: np.ndarray, list_lengths: np.ndarray, n_pids: int) -> np.ndarray:
    """The shortlist's rough score of ``n_pids`` passages (step 2 of the module docstring): centroid ``cells[i]``,
    probed for direction ``directions[i]``, lists ``list_lengths[i]`` consecutive entries of ``slots`` (the passages,
    numbered 0 to ``n_pids - 1``); each entry adds ``weights[d] * (table[d, cell] - unprobed[d])`` to its passage."""
    gains = (table[directions, cells] - unprobed[directions]).numpy() * weights[directions]
    return np.bincount(slots, weights=np.repeat(gains, list_lengths), minlength=n_pids)


def _weighted_maxsim(table: torch.Tensor, codes: np.ndarray, lengths: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """MaxSim of consecutive token segments (``lengths``) with each token replaced by its centroid: ``table``
    ``[directions, n_centroids]`` holds the query directions' similarities with the centroids, and direction ``d``
    counts ``weights[d]`` times. A segment without tokens scores 0."""
    # one fused gather and max per passage (torch's embedding_bag; a bag without tokens gives zeros): 2.0 ms for 8,192
    # passages (146,000 tokens, 8 directions), where numpy's gather and maximum.reduceat took 4.1 ms
    starts = _segment_starts(lengths).astype(np.int32)
    best = torch.nn.functional.embedding_bag(torch.from_numpy(codes.astype(np.int32)), table.T.contiguous(),
                                             torch.from_numpy(starts), mode="max")  # [passages, directions]
    return (best @ torch.from_numpy(weights.astype(np.float32))).numpy()


def _best(pids: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` passage ids with the highest scores, in increasing id order."""
    return np.sort(pids[np.argpartition(-scores, k - 1)[:k]])


def _segment_max(sim: torch.Tensor, lengths: np.ndarray) -> torch.Tensor:
    """Max over consecutive row segments of ``sim [sum(lengths), m]`` -> ``[len(lengths), m]``; a passage without
    tokens scores 0 (it matches nothing)."""
    out = torch.zeros((len(lengths), sim.shape[1]), dtype=sim.dtype)
    filled = lengths > 0
    if filled.any():
        out[torch.from_numpy(filled)] = torch.segment_reduce(sim, "max", lengths=torch.from_numpy(lengths[filled]),
                                                            axis=0)
    return out


def _ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, e)`` for each pair."""
    lengths = ends - starts
    return np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(starts - _segment_starts(lengths), lengths)


def _segment_starts(lengths: np.ndarray) -> np.ndarray:
    """Where each of consecutive segments of the given lengths starts (the exclusive prefix sum)."""
    return np.cumsum(lengths) - lengths


def _map_queries(fn: Callable, items: Sequence, threads: int, desc: str, verbose: bool) -> list:
    """``[fn(item) for item in items]``, in order, ``threads`` items at a time. numpy and torch release the GIL in the
    heavy steps, so on 2 cores two threads search 1.25-1.5x as many queries per second as one."""
    results = []
    with tqdm(total=len(items), desc=desc, unit="query", disable=not verbose or len(items) < 2) as bar, \
            ThreadPoolExecutor(max(1, threads)) as pool:
        for result in pool.map(fn, items) if threads > 1 and len(items) > 1 else map(fn, items):
            results.append(result)
            bar.update()
    return results


def _top(pids: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best (pids, scores), best first; ties go to the lower passage id."""
    if len(scores) > k:
        keep = np.argpartition(-scores, k - 1)[:k]
        pids, scores = pids[keep], scores[keep]
    order = np.lexsort((pids, -scores))
    return pids[order], scores[order]


# ---------------------------------------------------------------------- PyTerrier transformers
class _IndexTransformer(pt.Transformer):
    def __init__(self, index, query_model=None, batch_size: int = 64, threads: int = 1, verbose: bool = False):
        if threads < 1:
            raise ValueError(f"threads must be at least 1, not {threads}")
        self.index = index
        self.query_model = query_model
        self.batch_size = batch_size
        self.threads = threads
        self.verbose = verbose
        self._model = index.check_query_model(query_model)

    def _settings(self) -> list[str]:
        """The non-default settings shared by the retriever and the scorer, for ``__repr__``."""
        settings = [f"query_model={self.query_model!r}"] if self.query_model is not None else []
        return settings + ([f"threads={self.threads}"] if self.threads != 1 else [])

    def _query_vectors(self, inp: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Query token vectors of the distinct queries ``[nq, Lq, dim]``, and each row's query number. Uses a
        ``query_embs`` column (``model.query_encoder()``) when present, else encodes ``query`` texts in batches."""
        if "query_embs" in inp.columns:
            embs = np.stack([np.asarray(e, dtype=np.float32) for e in inp["query_embs"]])
            return embs, np.arange(len(inp))
        if self._model is None:
            raise ValueError(f"{self.index!r} was built from precomputed vectors without a model: give queries as a "
                             f"query_embs column, or pass query_model=")
        texts = inp["query"].tolist()
        bad = next((q for q in texts if not isinstance(q, str)), None)
        if bad is not None:
            raise TypeError(f"column 'query' must hold strings, found {type(bad).__name__}: {bad!r}")
        queries, row_query = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
        return self._model.encode_queries(list(queries), batch_size=self.batch_size, verbose=self.verbose), row_query


class ColBERTRetriever(_IndexTransformer):
    """Q -> R: the ``num_results`` best passages of each query by MaxSim over the index (see the module docstring).
    Keeps the input's columns (``query_0``, ``lang``, ...); ranks start at 0.

    Example::

        retriever = index.retriever(num_results=100)               # end to end
        exact = index.retriever(num_results=100, exhaustive=True)  # every passage
        retriever(pt.new.queries(["who wrote hamlet"]))

    ``threads=2`` or more searches that many queries at once end to end (exhaustive search batches them instead), for
    throughput over many queries: 1.25-1.5x the queries per second with 2 on 2 cores. Each query's torch operations
    still use torch's own threads, so on a machine with many cores also lower ``torch.set_num_threads`` to keep their
    product near the number of cores. Each query thread keeps a scratch array of 4 bytes per passage.
    """

    def __init__(self, index, num_results: int = 1000, query_model=None, exhaustive: bool = False, nprobe: int = NPROBE,
                 ncandidates: Optional[int] = None, batch_size: int = 64, threads: int = 1, verbose: bool = False):
        super().__init__(index, query_model, batch_size, threads, verbose)
        if num_results < 1:
            raise ValueError(f"num_results must be at least 1, not {num_results}")
        self.num_results = num_results
        self.exhaustive = exhaustive
        self.nprobe = nprobe
        self.ncandidates = ncandidates

    def __repr__(self) -> str:
        settings = [f"num_results={self.num_results}"]
        if self.exhaustive:
            settings.append("exhaustive=True")
        if self.nprobe != NPROBE:
            settings.append(f"nprobe={self.nprobe}")
        if self.ncandidates is not None:
            settings.append(f"ncandidates={self.ncandidates}")
        return f"{self.index!r}.retriever({', '.join(settings + self._settings())})"

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        pt.validate.query_frame(inp, extra_columns=[] if "query_embs" in inp.columns else ["query"], context=self)
        if not len(inp):
            return inp.assign(docno=pd.Series(dtype=object), score=pd.Series(dtype=float), rank=pd.Series(dtype=int))
        inp = inp.reset_index(drop=True)
        Q, row_query = self._query_vectors(inp)
        reader = self.index.payload()
        if self.exhaustive:
            results = reader.exhaustive(Q, self.num_results, verbose=self.verbose)
        else:
            ncandidates = self.ncandidates or max(4 * self.num_results, NCANDIDATES)
            results = _map_queries(lambda q: reader.search(q, self.num_results, self.nprobe, ncandidates), Q,
                                   self.threads, "searching", self.verbose)
        per_row = [results[query] for query in row_query]
        counts = [len(pids) for pids, _ in per_row]
        # built column by column (PyTerrier's DataFrameBuilder takes ~0.9 ms more per query, 3% of a search)
        out = inp.drop(columns=["docno", "score", "rank"], errors="ignore")
        return out.iloc[np.repeat(np.arange(len(inp)), counts)].reset_index(drop=True).assign(
            docno=reader.docnos[np.concatenate([pids for pids, _ in per_row])],
            score=np.concatenate([scores for _, scores in per_row]).astype(np.float64),
            rank=np.concatenate([np.arange(n) for n in counts]))


class ColBERTScorer(_IndexTransformer):
    """R -> R: each (query, docno) pair re-scored by exact MaxSim over the stored vectors (no text needed), re-ranked.

    Example::

        pipeline = bm25 >> index.scorer()
    """

    def __repr__(self) -> str:
        return f"{self.index!r}.scorer({', '.join(self._settings())})"

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        pt.validate.result_frame(inp, extra_columns=[] if "query_embs" in inp.columns else ["query"], context=self)
        if not len(inp):
            return inp.assign(score=pd.Series(dtype=float), rank=pd.Series(dtype=int))
        inp = inp.reset_index(drop=True)
        reader = self.index.payload()
        pids = reader.pids_of(list(inp["docno"]))
        Q, row_query = self._query_vectors(inp)
        scores = np.empty(len(inp), dtype=np.float64)
        order = np.argsort(row_query, kind="stable")  # the rows of each query, in one pass (not one scan per query)
        rows = np.split(order, np.searchsorted(row_query[order], np.arange(1, len(Q))))

        def score(query: int) -> np.ndarray:
            return reader.maxsim(torch.from_numpy(Q[query:query + 1]), pids[rows[query]])[0]

        per_query = _map_queries(score, range(len(Q)), self.threads, "scoring", self.verbose)
        for query_rows, query_scores in zip(rows, per_query):
            scores[query_rows] = query_scores
        out = inp.assign(score=scores).drop(columns=["rank"], errors="ignore")
        out = out.sort_values(["qid", "score"], ascending=[True, False], kind="stable").reset_index(drop=True)
        return pt.model.add_ranks(out)
