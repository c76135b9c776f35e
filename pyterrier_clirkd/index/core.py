"""ColBERTIndex: a PyTerrier artifact and indexer holding compressed ColBERT token vectors, and its search factories."""
from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
import pandas as pd
import pyterrier as pt

from .build import META, MODEL_COPY, BuildSettings, build, check_target
from .search import NPROBE, ColBERTRetriever, ColBERTScorer, IndexReader


class ColBERTIndex(pt.Artifact, pt.Indexer):
    """A ColBERT index: every passage's token vectors, residual-compressed against k-means centroids (``nbits`` per
    dimension: 1, 2 or 4; 16 stores them uncompressed as float16), with inverted lists centroid -> passages.

    Documents are dicts with ``docno`` and ``text`` (a non-empty ``title`` is put before the text as
    ``"title | text"``), or with precomputed ``doc_embs`` (``[tokens, dim]``, e.g. from ``model.doc_encoder()``).
    Building streams the documents through the disk in chunks, resumes after an interruption when run again with the
    same documents (pass ``resume=False`` to start over), never replaces an existing folder unless
    ``mode='overwrite'``, and writes the index atomically (``pt_meta.json`` last, then one rename). Under ``torchrun``
    the processes share the encoding and the first one merges the chunks into one index.

    The index remembers its model: its ``name_or_path`` when reloading that gives the same model (``"offline:..."``,
    or a checkpoint folder, stored as an absolute path; see ``ColBERT.reloads_as_loaded``), otherwise (no name, a
    bare encoder with a new random head, a model trained since it was loaded, a folder rewritten since, or
    ``save_model=True``) a copy of the model saved inside the index. Searching with a model whose
    ``passage_fingerprint()`` differs from the fingerprint of the model that built the index is an error.

    Example::

        index = ColBERTIndex("wiki.colbert", model)
        index.index(dataset.get_corpus_iter())
        index = ColBERTIndex.load("wiki.colbert")         # or pt.Artifact.load("wiki.colbert")
        results = index.retriever(num_results=100)(pt.new.queries(["who wrote hamlet"]))
        rescored = (bm25 >> index.scorer())(topics)
        student_run = index.retriever(query_model=student)   # student.passage_fingerprint() == index fingerprint
    """

    ARTIFACT_TYPE = "colbert_index"
    ARTIFACT_FORMAT = "clirkd"
    ARTIFACT_PACKAGE_HINT = "pyterrier-clirkd"

    def __init__(self, path: str | Path, model=None, *, nbits: int = 2, n_centroids: Optional[int] = None,
                 mode: str = "create", resume: bool = True, chunk_size: int = 2048, batch_size: int = 64,
                 save_model: bool = False, seed: int = 0, in_memory: bool = False, verbose: bool = True):
        super().__init__(path)
        self.model = model
        self.nbits = nbits
        self.n_centroids = n_centroids
        self.mode = mode
        self.resume = resume
        self.chunk_size = chunk_size
        self.batch_size = batch_size
        self.save_model = save_model
        self.seed = seed
        self.in_memory = in_memory
        self.verbose = verbose
        self._reader: Optional[IndexReader] = None
        self._loaded_model = None

    # ------------------------------------------------------------------ artifact
    def built(self) -> bool:
        """Whether a complete index is at ``path``."""
        return (Path(self.path) / META).exists()

    def meta(self) -> dict:
        """The index's ``pt_meta.json``: sizes, codec settings, model reference and fingerprint."""
        self._require_built()
        return json.loads((Path(self.path) / META).read_text())

    def payload(self) -> IndexReader:
        """The index files, opened once: memory-mapped, or read into RAM with ``in_memory=True`` (about 3x faster
        random access to the vectors that end-to-end search gathers)."""
        if self._reader is None:
            self._require_built()
            self._reader = IndexReader(self.path, in_memory=self.in_memory)
        return self._reader

    def __len__(self) -> int:
        return self.meta()["n_docs"]

    def __repr__(self) -> str:
        return f"ColBERTIndex({str(self.path)!r})"

    def _require_built(self) -> None:
        if not self.built():
            raise FileNotFoundError(f"{self.path} is not a built ColBERTIndex (no {META}); call .index(docs) first")

    # ------------------------------------------------------------------ indexing
    def index_inputs(self):
        return [["docno", "text"], ["docno", "doc_embs"]]

    def index(self, docs: Iterable[dict] | pd.DataFrame) -> "ColBERTIndex":
        """Build the index from ``docs`` (dicts with ``docno`` and ``text`` or ``doc_embs``); returns ``self``."""
        if isinstance(docs, pd.DataFrame):
            docs = docs.to_dict("records")
        check_target(Path(self.path), self.mode)  # before any work
        model = self.model
        if model is not None:
            dim, similarity, fingerprint = model.config.dim, model.config.similarity, model.fingerprint()
        else:  # precomputed vectors only: their width comes from the first document
            iterator = iter(docs)
            first = next(iterator, None)
            if first is None or "doc_embs" not in first:
                raise ValueError("ColBERTIndex without a model can only index documents with precomputed doc_embs")
            dim, similarity, fingerprint = np.shape(first["doc_embs"])[-1], "cosine", None
            docs = itertools.chain([first], iterator)
        settings = BuildSettings(nbits=self.nbits, n_centroids=self.n_centroids, chunk_size=self.chunk_size,
                                 seed=self.seed, dim=int(dim), similarity=similarity, fingerprint=fingerprint)
        copy = model is not None and (self.save_model or not model.reloads_as_loaded())
        meta = {"model": None if model is None or copy else _model_reference(model.name_or_path),
                "model_copy": MODEL_COPY if copy else None,
                "colbert_config": model.config.to_dict() if model is not None else None}
        build(Path(self.path).absolute(), docs, model, settings, meta, mode=self.mode, resume=self.resume,
              batch_size=self.batch_size, verbose=self.verbose)
        self._reader = None
        return self

    # ------------------------------------------------------------------ models
    def built_model(self):
        """The model the index was built with: the one given to the constructor, else reloaded from the reference
        (or the copy) in ``pt_meta.json``; None for an index built from precomputed vectors without a model."""
        if self.model is not None:
            return self.model
        if self._loaded_model is None:
            from ..model import ColBERT

            meta = self.meta()
            source = Path(self.path) / meta["model_copy"] if meta.get("model_copy") else meta.get("model")
            if source is None:
                return None
            config = meta["colbert_config"]  # lengths may have been overridden at load time; they are not weights
            model = ColBERT.from_pretrained(source, query_maxlen=config["query_maxlen"],
                                            doc_maxlen=config["doc_maxlen"])
            if meta["fingerprint"] is not None and model.fingerprint() != meta["fingerprint"]:
                raise ValueError(f"the model at {str(source)!r} has changed since {self.path} was built (fingerprint "
                                 f"{model.fingerprint()} now, {meta['fingerprint']} then); pass the model that built "
                                 f"the index as ColBERTIndex(path, model)")
            self._loaded_model = model
        return self._loaded_model

    def check_query_model(self, query_model=None):
        """The model that encodes queries (``query_model``, else the index's own), after checking that its queries
        are meant for this index's passage vectors."""
        model = query_model if query_model is not None else self.built_model()
        if model is None:
            return None
        meta = self.meta()
        expected = meta["fingerprint"]
        if expected is not None and model.passage_fingerprint() != expected:
            raise ValueError(f"{model!r} cannot search {self.path}: its queries are for passage vectors of the model "
                             f"with fingerprint {model.passage_fingerprint()}, but the index holds vectors of the "
                             f"model with fingerprint {expected}; re-index with this model, or use a student whose "
                             f"passage encoder is the index's model")
        if model.config.dim != meta["dim"]:
            raise ValueError(f"{model!r} makes {model.config.dim}-dimensional vectors, the index holds {meta['dim']}")
        return model

    # ------------------------------------------------------------------ search
    def retriever(self, num_results: int = 1000, *, query_model=None, exhaustive: bool = False, nprobe: int = NPROBE,
                  ncandidates: Optional[int] = None, batch_size: int = 64, threads: int = 1,
                  verbose: bool = False) -> ColBERTRetriever:
        """Q -> R end to end: the passages with token vectors under each query token's ``nprobe`` nearest centroids
        are ranked by MaxSim over their tokens' centroids, and the best are scored by exact MaxSim over all their
        decompressed vectors, at most ``ncandidates`` (default ``max(4 * num_results, 6144)``), fewer when the rest
        cannot reach the top ``num_results`` (see ``pyterrier_clirkd.index.search``). ``exhaustive=True`` scores
        every passage instead. Larger ``nprobe`` and ``ncandidates`` find more of the exhaustive top results and take
        longer (see ``benchmarks/index_search.py``). ``threads`` queries are searched at once (see
        :class:`ColBERTRetriever`).

        Example::

            index.retriever(num_results=100)(pt.new.queries(["who wrote hamlet"]))
        """
        return ColBERTRetriever(self, num_results=num_results, query_model=query_model, exhaustive=exhaustive,
                                nprobe=nprobe, ncandidates=ncandidates, batch_size=batch_size, threads=threads,
                                verbose=verbose)

    def scorer(self, *, query_model=None, batch_size: int = 64, threads: int = 1,
               verbose: bool = False) -> ColBERTScorer:
        """R -> R re-scored by exact MaxSim over the stored (decompressed) vectors; no passage text needed.
        ``threads`` queries are scored at once.

        Example::

            (bm25 >> index.scorer())(topics)
        """
        return ColBERTScorer(self, query_model=query_model, batch_size=batch_size, threads=threads, verbose=verbose)


def _model_reference(name_or_path) -> str:
    """How ``pt_meta.json`` names the model: an existing local path made absolute, anything else as given."""
    path = Path(str(name_or_path))
    return str(path.resolve()) if path.exists() else str(name_or_path)
