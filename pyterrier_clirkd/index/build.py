"""Writing a ColBERT index: streaming, resumable, optionally sharded over ``torch.distributed`` processes.

The build happens in a work folder beside the target, ``.{name}.partial/``:

1. Encode. Documents stream in and are cut into blocks of ``chunk_size`` passages. Each block is encoded and written
   as a chunk (float16 token vectors, then a JSON file with its docnos and token counts that marks the chunk as
   complete), so memory holds one block of vectors at a time (plus the docnos seen so far, to catch duplicates).
   With ``torchrun``, process ``r`` of ``w`` encodes the blocks ``b`` with ``b % w == r`` (every process reads the
   whole stream, cheaply, and checks docnos).
2. Merge (one process). k-means centroids are trained (faiss; in two levels past 4,096 centroids) on a random sample
   of the stored vectors (32 per centroid), every chunk is compressed into the final files, the inverted lists
   (centroid -> ids of the passages with a token vector there) are built chunk by chunk, and ``pt_meta.json`` is
   written last. The finished folder is then renamed onto the target.

A build that is killed keeps its completed chunks; running the same build again (same documents in the same order,
same settings) skips them after checking their docnos, so no document is lost or duplicated. Bad input (a duplicate
or missing docno, a text that is not a string) raises :class:`IndexInputError` and removes the work folder.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from .codec import ResidualCodec, auto_n_centroids

META = "pt_meta.json"
DOCNOS = "docnos.txt"
DOCLENS = "doclens.npy"
CODES = "codes.npy"
PAYLOAD = {True: "vectors.npy", False: "residuals.npy"}  # keyed by "stored uncompressed (nbits=16)"
IVF_PIDS = "ivf_pids.npy"
IVF_OFFSETS = "ivf_offsets.npy"
MODEL_COPY = "model"
SETTINGS = "build.json"
ARTIFACT_TYPE, ARTIFACT_FORMAT = "colbert_index", "clirkd"
MERGE_FLOATS = 1 << 26  # float32 values compressed at a time (256 MB): two-level assignment of 2 million vectors
# against 65,536 centroids takes 6.3 s in groups of 500,000, 7.6 s chunk by chunk (each group gathers every coarse
# cell's candidate centroids once)
FORMAT_VERSION = 2  # 2: the inverted lists hold passage ids (1: token vector ids)


class IndexInputError(ValueError):
    """The documents given to an indexer are not valid (duplicate or missing docno, text not a string, ...)."""


@dataclass
class BuildSettings:
    """Everything that must match for an interrupted build to be resumed."""

    nbits: int = 2
    n_centroids: Optional[int] = None  # None: auto_n_centroids(number of stored token vectors)
    chunk_size: int = 2048
    kmeans_iters: int = 4
    kmeans_points_per_centroid: int = 32
    seed: int = 0
    dim: Optional[int] = None
    similarity: str = "cosine"
    fingerprint: Optional[str] = None


def partial_folder(path: Path) -> Path:
    """The work folder of a build of ``path``."""
    return path.parent / f".{path.name}.partial"


def is_colbert_index(path: Path) -> bool:
    try:
        meta = json.loads((path / META).read_text())
    except (OSError, ValueError):
        return False
    return meta.get("type") == ARTIFACT_TYPE and meta.get("format") == ARTIFACT_FORMAT


def check_target(path: Path, mode: str) -> None:
    """Refuse to build over an existing folder unless ``mode='overwrite'`` and the folder is a ColBERTIndex."""
    if mode not in ("create", "overwrite"):
        raise ValueError(f"mode must be 'create' or 'overwrite', not {mode!r}")
    if not path.exists():
        return
    if mode == "create":
        raise FileExistsError(f"{path} already exists; pass mode='overwrite' to replace it")
    if path.is_file() or (any(path.iterdir()) and not is_colbert_index(path)):
        raise FileExistsError(f"{path} exists and is not a ColBERTIndex; refusing to overwrite it")


def build(path: Path, docs: Iterable[dict], model, settings: BuildSettings, meta: dict[str, Any], *,
          mode: str = "create", resume: bool = True, batch_size: int = 64, verbose: bool = True) -> None:
    """Build the index at ``path`` (see the module docstring). ``meta`` goes into ``pt_meta.json``."""
    rank, world, dist = _distributed()
    check_target(path, mode)
    work = partial_folder(path)
    if rank == 0:
        _prepare(work, settings, resume)
    _barrier(dist)
    try:
        encoder = _ChunkWriter(work / "chunks", model, settings, batch_size, rank, world)
        n_blocks = encoder.run(docs, verbose=verbose and rank == 0)
        _barrier(dist)
        if rank == 0:
            _merge(work, n_blocks, settings, meta, model, verbose)
            _install(work / "index", path, mode)
            shutil.rmtree(work, ignore_errors=True)
        _barrier(dist)
    except IndexInputError:
        if rank == 0:
            shutil.rmtree(work, ignore_errors=True)
        raise


# ---------------------------------------------------------------------- step 0: the work folder
def _prepare(work: Path, settings: BuildSettings, resume: bool) -> None:
    wanted = asdict(settings)
    if work.exists() and not resume:
        shutil.rmtree(work)
    if work.exists():
        try:
            found = json.loads((work / SETTINGS).read_text())
        except (OSError, ValueError):
            found = None
        if found != wanted:
            differ = sorted(k for k in wanted if found is None or found.get(k) != wanted[k])
            raise ValueError(f"{work} holds an interrupted build with different settings ({', '.join(differ)}); "
                             f"pass resume=False to discard it and start again")
        shutil.rmtree(work / "index", ignore_errors=True)  # a merge that was cut short is simply redone
        return
    (work / "chunks").mkdir(parents=True)
    _write_json(work / SETTINGS, wanted)


# ---------------------------------------------------------------------- step 1: encode blocks into chunks
class _ChunkWriter:
    """Reads the document stream, checks it, and writes the chunks of this process's blocks."""

    def __init__(self, folder: Path, model, settings: BuildSettings, batch_size: int, rank: int, world: int):
        self.folder, self.model, self.settings = folder, model, settings
        self.batch_size, self.rank, self.world = batch_size, rank, world

    def run(self, docs: Iterable[dict], verbose: bool) -> int:
        seen: dict[str, int] = {}
        block: list[tuple[str, Any]] = []
        n_blocks = 0
        total = len(docs) if hasattr(docs, "__len__") else None
        # counts documents as they are encoded (or found encoded by an interrupted build), not as they are read
        self.progress = tqdm(desc="indexing", unit="doc", total=total, disable=not verbose, smoothing=0.05)
        with self.progress:
            for position, doc in enumerate(docs):
                docno, content = _check_doc(doc, position, self.settings.dim)
                if docno in seen:
                    raise IndexInputError(f"duplicate docno {docno!r}: documents {seen[docno]} and {position} "
                                          f"(counting from 0) both have it")
                seen[docno] = position
                block.append((docno, content))
                if len(block) == self.settings.chunk_size:
                    self._flush(n_blocks, block)
                    n_blocks, block = n_blocks + 1, []
            if block:
                self._flush(n_blocks, block)
                n_blocks += 1
        if not n_blocks:
            raise IndexInputError("no documents to index")
        return n_blocks

    def _flush(self, number: int, block: list[tuple[str, Any]]) -> None:
        if number % self.world != self.rank:
            self.progress.update(len(block))  # another process encodes it
            return
        stem = self.folder / f"{number:08d}"
        docnos = [docno for docno, _ in block]
        done = stem.with_suffix(".json")
        if done.exists():
            recorded = json.loads(done.read_text())["docnos"]
            if recorded != docnos:
                first = next(i for i, (a, b) in enumerate(zip(recorded + [None] * len(docnos), docnos)) if a != b)
                raise ValueError(f"cannot resume: block {number} of the interrupted build differs from these documents "
                                 f"(position {number * self.settings.chunk_size + first}: "
                                 f"{recorded[first] if first < len(recorded) else None!r} then, {docnos[first]!r} now); "
                                 f"give the same documents in the same order, or pass resume=False")
            self.progress.update(len(block))
            return
        start = time.perf_counter()
        vectors = self._encode([content for _, content in block])
        seconds = time.perf_counter() - start
        lengths = [len(v) for v in vectors]
        flat = np.concatenate(vectors) if sum(lengths) else np.zeros((0, self.settings.dim), np.float32)
        _write_npy(stem.with_suffix(".npy"), flat.astype(np.float16))
        _write_json(done, {"docnos": docnos, "doclens": lengths, "encode_seconds": seconds})

    def _encode(self, contents: list[Any]) -> list[np.ndarray]:
        """Token vectors per document: given ``doc_embs`` as they are, texts encoded by the model in batches."""
        # longest first, so that batches cut from the whole block carry little padding (as encode_docs would)
        texts = sorted(((i, c) for i, c in enumerate(contents) if isinstance(c, str)), key=lambda t: -len(t[1]))
        out = list(contents)
        self.progress.update(len(contents) - len(texts))
        if texts and self.model is None:
            raise IndexInputError("documents with text need a model to encode them; pass model= to ColBERTIndex, "
                                  "or give precomputed doc_embs")
        for first in range(0, len(texts), self.batch_size):
            batch = texts[first:first + self.batch_size]
            for (i, _), vectors in zip(batch, self.model.encode_docs([t for _, t in batch], batch_size=self.batch_size)):
                out[i] = vectors
            self.progress.update(len(batch))
        return out


def _check_doc(doc: dict, position: int, dim: Optional[int]) -> tuple[str, Any]:
    """(docno, text or token vectors); the title, when present and not empty, is put before the text as
    ``"title | text"``."""
    if not isinstance(doc, Mapping) or "docno" not in doc:
        raise IndexInputError(f"document {position} has no docno (expected dicts with 'docno' and 'text' or "
                              f"'doc_embs', got {type(doc).__name__})")
    docno = doc["docno"]
    if not isinstance(docno, str) or not docno or "\n" in docno or "\r" in docno:
        raise IndexInputError(f"document {position}: docno must be a non-empty string without line breaks, "
                              f"got {docno!r}")
    if "doc_embs" in doc:
        vectors = np.asarray(doc["doc_embs"], dtype=np.float32)
        if vectors.ndim != 2 or (dim is not None and vectors.shape[1] != dim) or not np.isfinite(vectors).all():
            raise IndexInputError(f"document {docno!r}: doc_embs must be a finite [tokens, {dim}] array, "
                                  f"got shape {vectors.shape}")
        return docno, vectors
    text = doc.get("text")
    if not isinstance(text, str):
        raise IndexInputError(f"document {docno!r}: text must be a string, got {type(text).__name__}: {text!r}")
    title = doc.get("title")
    if isinstance(title, str) and title.strip():
        text = f"{title} | {text}"
    return docno, text


# ---------------------------------------------------------------------- step 2: merge chunks into the index
def _merge(work: Path, n_blocks: int, settings: BuildSettings, meta: dict, model, verbose: bool) -> None:
    start = time.perf_counter()
    chunks = work / "chunks"
    records = [json.loads((chunks / f"{b:08d}.json").read_text()) for b in range(n_blocks)]
    doclens = np.array([n for r in records for n in r["doclens"]], dtype=np.int32)
    n_docs, n_tokens = len(doclens), int(doclens.sum())
    token_starts = np.concatenate([[0], np.cumsum([sum(r["doclens"]) for r in records])])
    doc_starts = np.concatenate([[0], np.cumsum([len(r["doclens"]) for r in records])])
    k = settings.n_centroids or auto_n_centroids(n_tokens)
    if n_tokens < k:
        raise IndexInputError(f"the documents gave {n_tokens} token vectors, fewer than n_centroids={k}")
    out = work / "index"
    out.mkdir()

    sample = _sample(chunks, token_starts, min(n_tokens, k * settings.kmeans_points_per_centroid), settings.dim,
                     settings.seed)
    codec = ResidualCodec.train(sample, k, settings.nbits, settings.similarity, settings.kmeans_iters, settings.seed)
    del sample
    codec.save(out)

    codes = np.lib.format.open_memmap(out / CODES, mode="w+", dtype=codec.code_dtype, shape=(n_tokens,))
    uncompressed = settings.nbits == 16
    payload = np.lib.format.open_memmap(out / PAYLOAD[uncompressed], mode="w+",
                                        dtype=np.float16 if uncompressed else np.uint8,
                                        shape=(n_tokens, settings.dim if uncompressed else codec.bytes_per_vector))
    ivf = _InvertedLists(work / "chunks", k, n_docs)
    groups = _block_groups(token_starts, MERGE_FLOATS // settings.dim)
    for first, last in tqdm(groups, desc="compressing", unit="group", disable=not verbose or len(groups) < 2):
        vectors = np.concatenate([np.load(chunks / f"{b:08d}.npy") for b in range(first, last)])
        lo, hi = token_starts[first], token_starts[last]
        codes[lo:hi], payload[lo:hi] = codec.encode(vectors.astype(np.float32))
        passages = slice(doc_starts[first], doc_starts[last])
        ivf.add(np.asarray(codes[lo:hi]), np.repeat(np.arange(passages.start, passages.stop), doclens[passages]))
    codes.flush(), payload.flush()
    del codes, payload
    ivf.write(out)

    np.save(out / DOCLENS, doclens)
    with open(out / DOCNOS, "w", encoding="utf-8", newline="\n") as f:
        for r in records:
            f.write("".join(d + "\n" for d in r["docnos"]))
    if meta.get("model_copy"):
        model.save_pretrained(out / MODEL_COPY)
    build_stats = {"encode_seconds": round(sum(r["encode_seconds"] for r in records), 3),
                   "merge_seconds": round(time.perf_counter() - start, 3)}
    _write_json(out / META, {"type": ARTIFACT_TYPE, "format": ARTIFACT_FORMAT, "package_hint": "pyterrier-clirkd",
                             "format_version": FORMAT_VERSION, **meta, "n_docs": n_docs, "n_tokens": n_tokens,
                             "n_centroids": k, "nbits": settings.nbits, "dim": settings.dim,
                             "similarity": settings.similarity, "fingerprint": settings.fingerprint,
                             "build": build_stats})


def _block_groups(token_starts: np.ndarray, max_tokens: int) -> list[tuple[int, int]]:
    """Runs ``(first, last)`` of consecutive blocks (``first`` included, ``last`` not), each holding at most
    ``max_tokens`` token vectors (or a single block that holds more), for compressing several chunks at once."""
    n_blocks = len(token_starts) - 1
    groups, first = [], 0
    for last in range(1, n_blocks + 1):
        if last - first > 1 and token_starts[last] - token_starts[first] > max_tokens:
            groups.append((first, last - 1))
            first = last - 1
    return groups + [(first, n_blocks)]


def _sample(chunks: Path, token_starts: np.ndarray, size: int, dim: int, seed: int) -> np.ndarray:
    """``size`` token vectors drawn uniformly without replacement from all chunks (reads one chunk at a time)."""
    n_tokens = int(token_starts[-1])
    chosen = np.sort(np.random.default_rng(seed).choice(n_tokens, size=size, replace=False))
    sample = np.empty((size, dim), dtype=np.float32)
    for b in range(len(token_starts) - 1):
        lo, hi = np.searchsorted(chosen, [token_starts[b], token_starts[b + 1]])
        if hi > lo:
            vectors = np.load(chunks / f"{b:08d}.npy", mmap_mode="r")
            # np.take, converted as it is stored: 3x faster than fancy indexing the memory map, then converting
            sample[lo:hi] = np.take(vectors, chosen[lo:hi] - token_starts[b], axis=0)
    return sample


class _InvertedLists:
    """Centroid -> ids of the passages with a token vector assigned to it (each passage once per centroid, ascending),
    collected chunk by chunk into part files, then laid out in one array."""

    def __init__(self, folder: Path, n_centroids: int, n_docs: int):
        self.folder, self.n_centroids = folder, n_centroids
        self.dtype = np.int32 if n_docs < 2 ** 31 else np.int64
        self.counts = np.zeros(n_centroids, dtype=np.int64)
        self.n_parts = 0

    def add(self, codes: np.ndarray, pids: np.ndarray) -> None:
        """``codes[i]``: the centroid of token vector ``i`` of the chunk; ``pids[i]``: its passage (ascending)."""
        order = np.argsort(codes, kind="stable")  # stable: passages stay ascending within each centroid
        codes, pids = codes[order], pids[order]
        first = np.concatenate([[True], (codes[1:] != codes[:-1]) | (pids[1:] != pids[:-1])])
        codes, pids = codes[first], pids[first]
        self.counts += np.bincount(codes, minlength=self.n_centroids)
        np.savez(self.folder / f"{self.n_parts:08d}.ivf.npz", codes=codes, pids=pids.astype(self.dtype))
        self.n_parts += 1

    def write(self, out: Path) -> None:
        offsets = np.concatenate([[0], np.cumsum(self.counts)]).astype(np.int64)
        lists = np.lib.format.open_memmap(out / IVF_PIDS, mode="w+", dtype=self.dtype, shape=(int(offsets[-1]),))
        cursor = offsets[:-1].copy()
        for part in range(self.n_parts):  # parts come in passage order, so every list stays sorted
            with np.load(self.folder / f"{part:08d}.ivf.npz") as data:
                part_codes, part_pids = data["codes"].astype(np.int64), data["pids"]
            counts = np.bincount(part_codes, minlength=self.n_centroids)
            group_start = np.cumsum(counts) - counts
            within = np.arange(len(part_codes)) - group_start[part_codes]
            lists[cursor[part_codes] + within] = part_pids
            cursor += counts
        lists.flush()
        np.save(out / IVF_OFFSETS, offsets)


def _install(built: Path, path: Path, mode: str) -> None:
    """Move the finished index onto ``path`` (an existing index is replaced only with ``mode='overwrite'``)."""
    if not path.exists():
        os.replace(built, path)
        return
    check_target(path, mode)
    backup = path.with_name(f".{path.name}.old-{os.getpid()}")
    os.replace(path, backup)
    os.replace(built, path)
    shutil.rmtree(backup)


# ---------------------------------------------------------------------- helpers
def _distributed():
    """(rank, world size, torch.distributed or None). Joins the process group that ``torchrun`` describes in the
    environment (gloo on CPU, nccl on GPU) when the caller has not already initialised one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), dist
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and dist.is_available():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
        return dist.get_rank(), dist.get_world_size(), dist
    return 0, 1, None


def _barrier(dist) -> None:
    if dist is not None:
        dist.barrier()


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _write_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)
