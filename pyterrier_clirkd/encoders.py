"""PyTerrier transformers made by a ColBERT model: query encoder, passage encoder, text scorer."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyterrier as pt
import torch

from .model import ColBERT, maxsim


class _ModelTransformer(pt.Transformer):
    """Shared base: keeps the model and settings, prints like the code that made it, equal when the model is."""

    factory = ""

    def __init__(self, model: ColBERT, batch_size: int = 64, verbose: bool = False, text_field: str = "text"):
        self.model = model
        self.batch_size = batch_size
        self.verbose = verbose
        self.text_field = text_field

    def __repr__(self) -> str:
        return f"{self.model!r}.{self.factory}()"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.model is other.model and self.text_field == other.text_field

    def __hash__(self) -> int:
        return hash((type(self), id(self.model), self.text_field))


class ColBERTQueryEncoder(_ModelTransformer):
    """Q -> Q + ``query_toks`` (token ids) and ``query_embs`` (``[query_maxlen, dim]`` arrays).

    Example::

        model.query_encoder()(pd.DataFrame({"qid": ["1"], "query": ["who wrote hamlet"]}))
    """

    factory = "query_encoder"

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        pt.validate.query_frame(inp, extra_columns=["query"], context=self)
        out = inp.copy()
        if not len(inp):
            return out.assign(query_toks=pd.Series(dtype=object), query_embs=pd.Series(dtype=object))
        unique, inverse = np.unique(np.asarray(inp["query"].map(_as_text("query")), dtype=object), return_inverse=True)
        vecs, ids = self.model.encode_queries(list(unique), batch_size=self.batch_size, verbose=self.verbose,
                                              return_ids=True)
        out["query_toks"] = [ids[i] for i in inverse]
        out["query_embs"] = [vecs[i] for i in inverse]
        return out


class ColBERTDocEncoder(_ModelTransformer):
    """D -> D + ``doc_toks`` (kept token ids) and ``doc_embs`` (``[tokens, dim]``, punctuation and padding removed).

    Example::

        model.doc_encoder()(pd.DataFrame({"docno": ["d1"], "text": ["Hamlet is a tragedy."]}))
    """

    factory = "doc_encoder"

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        pt.validate.columns(inp, includes=[self.text_field], context=self)
        out = inp.copy()
        if not len(inp):
            return out.assign(doc_toks=pd.Series(dtype=object), doc_embs=pd.Series(dtype=object))
        texts = list(inp[self.text_field].map(_as_text(self.text_field)))
        out["doc_embs"], out["doc_toks"] = self.model.encode_docs(texts, batch_size=self.batch_size,
                                                                  verbose=self.verbose, return_ids=True)
        return out


class ColBERTTextScorer(_ModelTransformer):
    """R (``qid, query, docno`` and passage text) -> R re-scored by MaxSim and re-ranked. Each distinct query and
    passage text is encoded once per call.

    Example::

        pipeline = bm25 >> pt.text.get_text(dataset, "text") >> model.text_scorer()
    """

    factory = "text_scorer"

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        pt.validate.result_frame(inp, extra_columns=["query", self.text_field], context=self)
        if not len(inp):
            return inp.assign(score=pd.Series(dtype=float), rank=pd.Series(dtype=int))
        queries, q_of_row = np.unique(np.asarray(inp["query"].map(_as_text("query")), dtype=object),
                                      return_inverse=True)
        texts, d_of_row = np.unique(np.asarray(inp[self.text_field].map(_as_text(self.text_field)), dtype=object),
                                    return_inverse=True)
        Q = torch.from_numpy(self.model.encode_queries(list(queries), batch_size=self.batch_size, verbose=self.verbose))
        docs = self.model.encode_docs(list(texts), batch_size=self.batch_size, verbose=self.verbose)
        scores = np.empty(len(inp), dtype=np.float64)
        for start in range(0, len(inp), 1024):
            rows = slice(start, start + 1024)
            D, mask = _pad([docs[i] for i in d_of_row[rows]])
            scores[rows] = maxsim(Q[q_of_row[rows]], D, mask, self.model.config.similarity).numpy()
        out = inp.assign(score=scores).drop(columns=["rank"], errors="ignore")
        out = out.sort_values(["qid", "score"], ascending=[True, False], kind="stable")
        return pt.model.add_ranks(out.reset_index(drop=True))


def _pad(arrays: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack variable-length ``[tokens, dim]`` arrays into a padded tensor and its mask."""
    width = max(1, max(len(a) for a in arrays))
    D = torch.zeros((len(arrays), width, arrays[0].shape[1]), dtype=torch.float32)
    mask = torch.zeros((len(arrays), width), dtype=torch.bool)
    for i, a in enumerate(arrays):
        D[i, :len(a)] = torch.from_numpy(a)
        mask[i, :len(a)] = True
    return D, mask


def _as_text(column: str):
    def check(value):
        if not isinstance(value, str):
            raise TypeError(f"column {column!r} must hold strings, found {type(value).__name__}: {value!r}")
        return value
    return check
