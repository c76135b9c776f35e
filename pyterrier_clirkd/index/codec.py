"""Residual compression of token vectors, as ColBERTv2 / PLAID: a k-means centroid id plus ``nbits`` per dimension.

Each vector ``v`` is stored as the id ``c`` of its nearest centroid and, per dimension ``j``, the bucket of the residual
``v[j] - C[c, j]``. Bucket cutoffs are per-dimension quantiles of a sample of residuals (equal mass per bucket) and each
bucket decodes to the mean residual that fell into it. Decoding adds the bucket values to the centroid and, for cosine
similarity, re-normalises. ``nbits=16`` stores the vectors uncompressed as float16 (the centroids still serve the
inverted lists).

Example::

    codec = ResidualCodec.train(sample_vectors, n_centroids=1024, nbits=2)
    codes, payload = codec.encode(vectors)          # int ids, uint8 [n, dim * nbits / 8]
    approx = codec.decode(codes, payload)           # float32 [n, dim]
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .centroids import CentroidAssigner, CoarseCells, kmeans

NBITS = (1, 2, 4, 16)
CENTROIDS = "centroids.npy"
BUCKETS = "buckets.npz"
CODEC = "codec.json"
COARSE = "coarse.npz"
BUCKET_SAMPLE = 1 << 16


def auto_n_centroids(n_tokens: int) -> int:
    """The default number of centroids: a power of two near ``64 * sqrt(n_tokens)``, four times PLAID's
    ``16 * sqrt(n)`` (32,768 for 400,000 token vectors, 65,536 for 2 million), at most ``n_tokens / 8`` (so every
    centroid has some training points), between 1 and 65,536 (so ids fit in 16 bits). Finer centroids bring the
    centroid-only estimate that ranks candidates closer to exact MaxSim, so fewer candidates need exact scoring; search
    then probes as many more of them (``NPROBE``), the same share. On 100,000 WordNet glosses (2 million vectors,
    ``benchmarks/index_search.py``), encoded by the offline backbone, PLAID's 16,384 centroids probed 64 deep find 0.965
    of the exhaustive top 100, because the estimate ranks them poorly (the 100th best lies at rank 4,100 of it on
    average, past the 4,096 candidates scored); with the random 2-layer encoder 65,536 centroids probed 256 deep find
    0.995 instead of 0.983 for 16,384 probed 64 deep, 20.6 vs 17.6 ms per search. On 20,000 glosses (400,000 backbone
    vectors), 32,768 centroids probed 128 deep find 0.997 in 23 ms where 8,192 probed 64 deep find 0.991 in 30 ms.
    Training and assigning that many centroids runs in two levels (:mod:`.centroids`)."""
    target = 64 * np.sqrt(max(n_tokens, 1))
    k = 2 ** int(np.round(np.log2(target)))
    while k > 1 and k > n_tokens / 8:
        k //= 2
    return int(min(max(k, 1), 65536))


class ResidualCodec:
    """Centroids plus per-dimension residual buckets; encodes float32 vectors and decodes them in bulk.

    Example::

        codec = ResidualCodec.train(sample, n_centroids=256, nbits=2)
        codec.save(folder); codec = ResidualCodec.load(folder)
    """

    def __init__(self, centroids: np.ndarray, nbits: int, similarity: str = "cosine",
                 cutoffs: Optional[np.ndarray] = None, weights: Optional[np.ndarray] = None,
                 cells: Optional[CoarseCells] = None):
        if nbits not in NBITS:
            raise ValueError(f"nbits must be one of {NBITS}, not {nbits!r}")
        self.centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        self.nbits = nbits
        self.similarity = similarity
        self.dim = self.centroids.shape[1]
        if nbits != 16 and (self.dim * nbits) % 8:
            raise ValueError(f"dim * nbits must be a multiple of 8 to pack residuals into bytes "
                             f"(dim={self.dim}, nbits={nbits})")
        self.cutoffs = cutoffs  # [dim, 2**nbits - 1] float32, ascending per dimension
        self.weights = weights  # [dim, 2**nbits] float32: the value each bucket decodes to
        self.cells = cells  # the coarse level of two-level centroids (see .centroids), else None
        self._assigner = CentroidAssigner(self.centroids, similarity, cells)
        if nbits != 16 and weights is None:
            raise ValueError(f"a {nbits}-bit codec needs its residual bucket cutoffs and weights")
        self._table = None if nbits == 16 else _byte_table(self.weights, nbits)
        self._table_offsets = None if nbits == 16 else np.arange(self.dim * nbits // 8, dtype=np.int32) * 256

    @property
    def n_centroids(self) -> int:
        return len(self.centroids)

    @property
    def code_dtype(self):
        return np.uint16 if self.n_centroids <= 65536 else np.int32

    @property
    def bytes_per_vector(self) -> int:
        """Payload bytes per stored vector (the centroid id comes on top)."""
        return self.dim * 2 if self.nbits == 16 else self.dim * self.nbits // 8

    # ------------------------------------------------------------------ training
    @classmethod
    def train(cls, sample: np.ndarray, n_centroids: int, nbits: int = 2, similarity: str = "cosine",
              iters: int = 4, seed: int = 0) -> "ResidualCodec":
        """k-means centroids (faiss; spherical for cosine; in two levels for many centroids, see
        :mod:`.centroids`) and residual buckets from a sample of token vectors."""
        centroids, cells = kmeans(sample, n_centroids, similarity, iters, seed)
        if nbits == 16:
            return cls(centroids, nbits, similarity, cells=cells)
        sample = np.ascontiguousarray(sample, dtype=np.float32)
        if len(sample) > BUCKET_SAMPLE:  # quantiles need far fewer points than k-means
            sample = sample[np.random.default_rng(seed).choice(len(sample), BUCKET_SAMPLE, replace=False)]
        residuals = sample - centroids[CentroidAssigner(centroids, similarity, cells).assign(sample)]
        cutoffs, weights = residual_buckets(residuals, nbits)
        return cls(centroids, nbits, similarity, cutoffs, weights, cells)

    # ------------------------------------------------------------------ encoding and decoding
    def assign(self, vectors: np.ndarray, device: Optional[str | torch.device] = None) -> np.ndarray:
        """The nearest centroid of each vector (among those of the nearest coarse cells for two-level centroids), on
        ``device`` (default: the GPU when there is one); see :class:`.centroids.CentroidAssigner`.

        Example::

            codes = codec.assign(vectors)                  # [n] centroid ids
        """
        return self._assigner.assign(vectors, device).astype(self.code_dtype)

    def encode(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Centroid ids ``[n]`` and the payload: packed residual buckets ``uint8 [n, dim*nbits/8]``, or float16
        vectors ``[n, dim]`` when ``nbits=16``."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        codes = self.assign(vectors)
        if self.nbits == 16:
            return codes, vectors.astype(np.float16)
        residuals = vectors - self.centroids[codes]
        buckets = np.zeros(residuals.shape, dtype=np.uint8)
        for level in range(self.cutoffs.shape[1]):  # bucket = how many cutoffs lie at or below the residual
            buckets += residuals >= self.cutoffs[:, level]
        return codes, pack_bits(buckets, self.nbits)

    @property
    def renormalises(self) -> bool:
        """Whether decoded vectors are re-normalised (residual codes under cosine similarity)."""
        return self.nbits != 16 and self.similarity == "cosine"

    def decode(self, codes: np.ndarray, payload: np.ndarray, normalize: bool = True) -> np.ndarray:
        """float32 vectors ``[n, dim]`` from centroid ids and payload (one table lookup per payload byte).
        ``normalize=False`` skips the re-normalisation (for callers that divide scores by the norms instead)."""
        if self.nbits == 16:
            return np.asarray(payload, dtype=np.float32)
        payload = np.asarray(payload)
        rows = (payload.astype(np.int32) + self._table_offsets).reshape(-1)
        vectors = self._table.take(rows, axis=0).reshape(len(payload), self.dim)
        vectors += self.centroids.take(np.asarray(codes, dtype=np.int64), axis=0)
        if normalize and self.renormalises:
            vectors /= np.maximum(np.sqrt(np.einsum("ij,ij->i", vectors, vectors)), 1e-12)[:, None]
        return vectors

    # ------------------------------------------------------------------ persistence
    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        np.save(folder / CENTROIDS, self.centroids)
        if self.nbits != 16:
            np.savez(folder / BUCKETS, cutoffs=self.cutoffs, weights=self.weights)
        if self.cells is not None:
            np.savez(folder / COARSE, centroids=self.cells.centroids, offsets=self.cells.offsets)
        (folder / CODEC).write_text(json.dumps({"nbits": self.nbits, "similarity": self.similarity}) + "\n")

    @classmethod
    def load(cls, folder: str | Path) -> "ResidualCodec":
        folder = Path(folder)
        settings = json.loads((folder / CODEC).read_text())
        buckets = np.load(folder / BUCKETS) if settings["nbits"] != 16 else {}
        cells = None
        if (folder / COARSE).exists():
            with np.load(folder / COARSE) as coarse:
                cells = CoarseCells(coarse["centroids"], coarse["offsets"])
        return cls(np.load(folder / CENTROIDS), settings["nbits"], settings["similarity"],
                   buckets.get("cutoffs"), buckets.get("weights"), cells)

    def __repr__(self) -> str:
        return f"ResidualCodec(n_centroids={self.n_centroids}, dim={self.dim}, nbits={self.nbits})"


def residual_buckets(residuals: np.ndarray, nbits: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension bucket cutoffs (quantiles: equal mass per bucket) and bucket values (the mean residual that
    falls into each bucket; the cutoffs' midpoint for a bucket the sample leaves empty)."""
    levels = 2 ** nbits
    cutoffs = np.quantile(residuals, np.arange(1, levels) / levels, axis=0).T.astype(np.float32)  # [dim, levels-1]
    weights = np.empty((residuals.shape[1], levels), dtype=np.float32)
    for j in range(residuals.shape[1]):
        column = residuals[:, j]
        bucket = np.searchsorted(cutoffs[j], column, side="right")
        counts = np.bincount(bucket, minlength=levels)
        sums = np.bincount(bucket, weights=column, minlength=levels)
        edges = np.concatenate([[column.min()], cutoffs[j], [column.max()]])
        midpoints = (edges[:-1] + edges[1:]) / 2
        weights[j] = np.where(counts > 0, sums / np.maximum(counts, 1), midpoints)
    return cutoffs, weights


def pack_bits(buckets: np.ndarray, nbits: int) -> np.ndarray:
    """Pack ``[n, dim]`` bucket ids (each < 2**nbits) into ``uint8 [n, dim*nbits/8]``, first dimension in the high bits.
    One shift-or per position in the byte (7x faster than ``np.bitwise_or.reduce`` over the short last axis)."""
    per_byte = 8 // nbits
    n, dim = buckets.shape
    groups = buckets.reshape(n, dim // per_byte, per_byte).astype(np.uint8, copy=False)
    packed = groups[:, :, 0] << np.uint8(nbits * (per_byte - 1))
    for position in range(1, per_byte):
        packed |= groups[:, :, position] << np.uint8(nbits * (per_byte - 1 - position))
    return packed


def unpack_bits(packed: np.ndarray, nbits: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: ``uint8 [n, nbytes]`` -> bucket ids ``[n, nbytes * 8 / nbits]``."""
    per_byte = 8 // nbits
    shifts = (nbits * np.arange(per_byte - 1, -1, -1)).astype(np.uint8)
    mask = np.uint8(2 ** nbits - 1)
    return ((packed[:, :, None] >> shifts) & mask).reshape(len(packed), -1)


def _byte_table(weights: np.ndarray, nbits: int) -> np.ndarray:
    """Lookup table ``[nbytes * 256, 8 / nbits]``: row ``j * 256 + b`` holds the residual values that byte value ``b``
    at byte position ``j`` decodes to, so decoding a whole payload is one ``index_select``."""
    per_byte = 8 // nbits
    dim = weights.shape[0]
    buckets = unpack_bits(np.arange(256, dtype=np.uint8)[:, None], nbits)  # [256, per_byte]
    dims = np.arange(dim).reshape(dim // per_byte, 1, per_byte)  # [nbytes, 1, per_byte]
    table = weights[dims, buckets[None]]  # [nbytes, 256, per_byte]
    return np.ascontiguousarray(table.reshape(-1, per_byte), dtype=np.float32)
