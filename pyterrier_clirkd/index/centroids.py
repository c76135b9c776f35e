"""k-means centroids for the residual codec, and nearest-centroid assignment: flat, or two-level for many centroids.

Up to ``TWO_LEVEL_ABOVE`` centroids, one faiss k-means trains them and every vector goes to its exact nearest centroid.
Above that (PLAID's ``16 * sqrt(n)`` centroids give 16,384 for 2 million token vectors, the default ``64 * sqrt(n)``
65,536), flat k-means and exact assignment each cost about ``n * n_centroids * dim`` multiply-adds, 4 TMAC at 16,384,
minutes on two cores. So the centroids are trained in two levels, as hierarchical k-means: ``n_cells`` (about
``sqrt(n_centroids)``) coarse centroids, then each coarse cell's sample points are clustered into a share of the
centroids proportional to their number. A vector is then assigned among the centroids of the ``COARSE_NEIGHBOURS``
coarse cells nearest to its own coarse cell (about ``9 * sqrt(n_centroids)`` dot products instead of ``n_centroids``).
On 2 million token vectors of WordNet glosses with 16,384 centroids: training 2.5 s instead of 65 s, assignment 6.5 s
instead of 52 s, and 98.8% of the vectors get their exact nearest centroid (mean cosine with the chosen centroid 0.9587
vs 0.9596); the others get a near one, and their residual codes are taken against it, so decoding stays exact to the
codec.

Example::

    centroids, cells = kmeans(sample, n_centroids=16384)           # cells: coarse level (None when flat)
    codes = CentroidAssigner(centroids, cells=cells).assign(vectors)
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import faiss
import numpy as np
import torch

TWO_LEVEL_ABOVE = 4096  # more centroids than this are trained and searched in two levels
COARSE_NEIGHBOURS = 8  # coarse cells whose centroids a vector is compared with
ASSIGN_BLOCK = 1 << 15  # vectors scored against all centroids at once on a GPU
ASSIGN_BLOCK_CPU = 1 << 11  # and on the CPU, where a smaller score block stays in the cache for the max (two-level
# assignment of 500,000 vectors in one call: 0.70 s instead of 0.96 s with the GPU's block)


class CoarseCells(NamedTuple):
    """The coarse level of two-level centroids: coarse centroid ``j`` owns centroids ``offsets[j]:offsets[j + 1]``."""

    centroids: np.ndarray  # [n_cells, dim] float32
    offsets: np.ndarray  # [n_cells + 1] int64


def kmeans(sample: np.ndarray, n_centroids: int, similarity: str = "cosine", iters: int = 4, seed: int = 0
           ) -> tuple[np.ndarray, Optional[CoarseCells]]:
    """``n_centroids`` k-means centroids of ``sample`` (spherical for cosine), flat or in two levels (see the module
    docstring); returns (centroids ``[n_centroids, dim]``, their coarse cells or None)."""
    sample = np.ascontiguousarray(sample, dtype=np.float32)
    if len(sample) < n_centroids:
        raise ValueError(f"k-means needs at least as many vectors as centroids ({len(sample)} < {n_centroids})")
    if n_centroids <= TWO_LEVEL_ABOVE:
        return _faiss_kmeans(sample, n_centroids, similarity, iters, seed), None
    n_cells = 2 ** int(np.round(np.log2(np.sqrt(n_centroids))))
    coarse = _faiss_kmeans(sample, n_cells, similarity, iters, seed)
    order, bounds = _group(CentroidAssigner(coarse, similarity).assign(sample), n_cells)
    per_cell = _apportion(np.diff(bounds), n_centroids)
    parts = [_faiss_kmeans(sample[order[bounds[j]:bounds[j + 1]]], int(per_cell[j]), similarity, iters, seed)
             for j in range(n_cells) if per_cell[j]]
    offsets = np.concatenate([[0], np.cumsum(per_cell)]).astype(np.int64)
    return np.concatenate(parts), CoarseCells(coarse, offsets)


class CentroidAssigner:
    """The nearest centroid of vectors: largest inner product for cosine, smallest distance for l2; among the
    centroids of the nearest coarse cells when ``cells`` is given (see the module docstring).

    Without a ``device`` (default: the GPU when there is one), exact assignment runs on faiss on the CPU; with one,
    as torch matrix products on it, a block of vectors at a time (at XOR-TyDi scale, billions of vectors against
    65,536 centroids, minutes on one GPU instead of hours on the CPUs). Two-level assignment runs on torch, on the
    device or the CPU; both give the same centroids.

    Example::

        codes = CentroidAssigner(centroids, "cosine").assign(vectors)       # [n] centroid ids
    """

    def __init__(self, centroids: np.ndarray, similarity: str = "cosine", cells: Optional[CoarseCells] = None):
        self.centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        self.similarity = similarity
        self.cells = cells
        if cells is None:
            self._faiss = faiss.IndexFlatIP(self.centroids.shape[1]) if similarity == "cosine" else \
                faiss.IndexFlatL2(self.centroids.shape[1])
            self._faiss.add(self.centroids)
            return
        if cells.offsets[-1] != len(self.centroids):
            raise ValueError(f"the coarse cells own {cells.offsets[-1]} centroids, not {len(self.centroids)}")
        self._coarse = CentroidAssigner(cells.centroids, similarity)
        owned = np.diff(cells.offsets) > 0
        nearness = _scores(torch.from_numpy(cells.centroids), torch.from_numpy(cells.centroids[owned]), similarity)
        nearest = np.flatnonzero(owned)[torch.topk(nearness, min(COARSE_NEIGHBOURS, int(owned.sum())), dim=1)
                                        .indices.numpy()]
        self._members = [np.concatenate([np.arange(cells.offsets[n], cells.offsets[n + 1]) for n in row])
                         for row in nearest]

    def assign(self, vectors: np.ndarray, device: Optional[str | torch.device] = None) -> np.ndarray:
        """Centroid ids ``int64 [n]`` of ``vectors [n, dim]``."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if device is None and torch.cuda.is_available():
            device = "cuda"
        if self.cells is not None:
            return self._assign_two_level(vectors, torch.device(device or "cpu"))
        if device is None:
            return self._faiss.search(vectors, 1)[1][:, 0]
        centroids = torch.from_numpy(self.centroids).to(device)
        codes = np.empty(len(vectors), dtype=np.int64)
        step = _block_size(torch.device(device))
        for lo in range(0, len(vectors), step):
            block = torch.from_numpy(vectors[lo:lo + step]).to(device)
            codes[lo:lo + step] = _nearest(block, centroids, self.similarity).cpu().numpy()
        return codes

    def _assign_two_level(self, vectors: np.ndarray, device: torch.device) -> np.ndarray:
        """Each vector's nearest centroid among those of the coarse cells nearest to its own coarse cell."""
        order, bounds = _group(self._coarse.assign(vectors, device), len(self._members))
        centroids = torch.from_numpy(self.centroids).to(device)
        codes = np.empty(len(vectors), dtype=np.int64)
        step = _block_size(device)
        for j in np.flatnonzero(np.diff(bounds)):
            members = self._members[j]
            candidates = centroids[torch.from_numpy(members).to(device)]  # once per cell, not per block
            for lo in range(bounds[j], bounds[j + 1], step):
                rows = order[lo:min(lo + step, bounds[j + 1])]
                block = torch.from_numpy(np.take(vectors, rows, axis=0)).to(device)
                codes[rows] = members[_nearest(block, candidates, self.similarity).cpu().numpy()]
        return codes


def _block_size(device: torch.device) -> int:
    return ASSIGN_BLOCK_CPU if device.type == "cpu" else ASSIGN_BLOCK


def _nearest(vectors: torch.Tensor, centroids: torch.Tensor, similarity: str) -> torch.Tensor:
    """The position of each vector's nearest centroid (the first, on ties). ``max`` rather than ``argmax``: on the
    CPU, ``argmax`` over rows of 1,024 scores takes 3.4x as long."""
    return _scores(vectors, centroids, similarity).max(1).indices


def _scores(vectors: torch.Tensor, centroids: torch.Tensor, similarity: str) -> torch.Tensor:
    """``[n, n_centroids]``, larger is nearer: inner products, or for l2 ``x.c - |c|^2 / 2`` (the same argmax as
    ``-|x - c|^2``)."""
    scores = vectors @ centroids.T
    if similarity != "cosine":
        scores -= 0.5 * centroids.pow(2).sum(1)
    return scores


def _group(keys: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions sorted by key (stable), and where each key's run starts: the positions with key ``j`` are
    ``order[bounds[j]:bounds[j + 1]]``."""
    order = np.argsort(keys, kind="stable")
    return order, np.searchsorted(keys[order], np.arange(n_groups + 1))


def _faiss_kmeans(points: np.ndarray, k: int, similarity: str, iters: int, seed: int) -> np.ndarray:
    kmeans = faiss.Kmeans(points.shape[1], k, niter=iters, seed=seed, spherical=similarity == "cosine",
                          max_points_per_centroid=len(points), min_points_per_centroid=1, verbose=False)
    kmeans.train(points)
    return kmeans.centroids


def _apportion(sizes: np.ndarray, total: int) -> np.ndarray:
    """``total <= sizes.sum()`` split over groups in proportion to ``sizes``, the largest remainders rounded up (so no
    group gets more than its size)."""
    share = sizes * (total / sizes.sum())
    counts = np.floor(share).astype(np.int64)
    counts[np.argsort(counts - share, kind="stable")[:total - counts.sum()]] += 1
    return counts
