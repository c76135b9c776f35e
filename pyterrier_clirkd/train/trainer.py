"""ColBERTTrainer: supervised ColBERT training on (query, positive, negatives) triples.

Example::

    from pyterrier_clirkd.train import ColBERTTrainer, read_triples
    model = ColBERT.from_pretrained("xlm-roberta-base")
    ColBERTTrainer(model, steps=1000, batch_size=32, lr=3e-6).fit(read_triples("triples.tsv"), "teacher/")
"""
from __future__ import annotations

import hashlib
import os
from typing import Optional

import pandas as pd
import torch

from ..model import ColBERT, maxsim
from .data import read_triples
from .losses import pairwise_softmax_ce
from .loop import TrainingConfig, setup_distributed, train


class Encoding(torch.nn.Module):
    """Wraps a ColBERT so that one forward call encodes several tokenized batches (queries, passages), as
    DistributedDataParallel expects one forward per backward.

    Example::

        Q, D = Encoding(model)(model.tokenize_queries(qs), model.tokenize_docs(ps))
    """

    def __init__(self, model: ColBERT):
        super().__init__()
        self.model = model

    def forward(self, *batches: dict) -> list[torch.Tensor]:
        device = self.model.device
        return [self.model(batch["input_ids"].to(device), batch["attention_mask"].to(device)) for batch in batches]


def make_trainable(model: ColBERT, freeze_embeddings: bool = False, freeze_layers: int | str = 0) -> None:
    """Let every weight that shapes the token vectors learn, except: the encoder's pooler, which ColBERT does not use
    (an unused trainable weight also breaks DistributedDataParallel); the token embeddings if ``freeze_embeddings``;
    the lowest ``freeze_layers`` transformer layers (``"half"``: the lower half, whatever the depth)."""
    model.requires_grad_(True)
    pooler = getattr(model.encoder, "pooler", None)
    if pooler is not None:
        pooler.requires_grad_(False)
    if freeze_embeddings:
        model.encoder.get_input_embeddings().requires_grad_(False)
    if freeze_layers:
        layers = transformer_layers(model)
        count = len(layers) // 2 if freeze_layers == "half" else freeze_layers
        if not isinstance(count, int) or not 0 <= count <= len(layers):
            raise ValueError(f"freeze_layers must be \"half\" or between 0 and {len(layers)}, not {freeze_layers!r}")
        for layer in layers[:count]:
            layer.requires_grad_(False)


def transformer_layers(model: ColBERT) -> torch.nn.ModuleList:
    """The encoder's stack of transformer layers, lowest first (the ModuleList as long as ``num_hidden_layers``)."""
    count = getattr(model.encoder.config, "num_hidden_layers", None)
    for module in model.encoder.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == count:
            return module
    raise ValueError(f"cannot find the transformer layers of {type(model.encoder).__name__}")


def frame_digest(frame: pd.DataFrame) -> str:
    """A short hash of a training frame's size, columns and a sample of its rows (for resuming safely)."""
    step = max(1, len(frame) // 1000)
    sample = frame.iloc[::step].astype(str).to_csv(index=False)
    return hashlib.sha256(f"{len(frame)}|{sample}".encode()).hexdigest()[:16]


class ColBERTTrainer:
    """Fine-tune a ColBERT on triples with ColBERT's pairwise softmax cross-entropy.

    ``in_batch_negatives`` also scores every query against the other queries' passages in its micro-batch.
    ``queries`` picks the question column: "query", or "english" for triples read with an English twin file
    (training an English teacher from the same files). Other keywords are :class:`TrainingConfig` settings.

    Example::

        trainer = ColBERTTrainer(model, in_batch_negatives=True, steps=500, batch_size=32, lr=1e-5)
        model = trainer.fit(read_triples("triples.tsv"), "ckpt/")
        trainer.losses[-1]
    """

    def __init__(self, model: ColBERT, *, in_batch_negatives: bool = False, queries: str = "query",
                 **training_settings):
        self.model = model
        self.in_batch_negatives = in_batch_negatives
        self.queries = queries
        self.config = TrainingConfig(**training_settings)
        self.losses: list[float] = []

    def __repr__(self) -> str:
        return (f"ColBERTTrainer({self.model!r}, in_batch_negatives={self.in_batch_negatives}, "
                f"queries={self.queries!r}, {self.config})")

    def fit(self, triples: pd.DataFrame | str | os.PathLike, output: str | os.PathLike,
            checkpoint_dir: Optional[str | os.PathLike] = None) -> ColBERT:
        """Train on ``triples`` (a frame from :func:`read_triples`, or a triples TSV path), save the model to
        ``output`` and return it. An interrupted run resumes from ``checkpoint_dir`` (default ``{output}.checkpoint``).
        """
        if not isinstance(triples, pd.DataFrame):
            triples = read_triples(triples)
        missing = {self.queries, "positive", "negatives"} - set(triples.columns)
        if missing:
            raise ValueError(f"triples lack the column(s) {sorted(missing)} (have {list(triples.columns)})")
        _, _, device = setup_distributed()
        self.model.to(device)
        make_trainable(self.model)
        objective = _TriplesObjective(self.model, triples.reset_index(drop=True), self.queries,
                                      self.in_batch_negatives)
        self.losses = train(objective, self.config, output, save=self.model.save_pretrained,
                            checkpoint_dir=checkpoint_dir)
        return self.model


class _TriplesObjective:
    def __init__(self, model: ColBERT, triples: pd.DataFrame, queries: str, in_batch: bool):
        self.model = model
        self.module = Encoding(model)
        self.triples = triples
        self.queries = queries
        self.in_batch = in_batch
        self._start = {"model": model.fingerprint(), "data": frame_digest(triples)}

    def __len__(self) -> int:
        return len(self.triples)

    def signature(self) -> dict:
        return {"kind": "colbert-triples", "queries": self.queries, "in_batch_negatives": self.in_batch, **self._start}

    def loss(self, forward, examples: list[int]) -> torch.Tensor:
        rows = self.triples.iloc[examples]
        per_query = 1 + len(rows["negatives"].iloc[0])
        passages = [p for pos, negs in zip(rows["positive"], rows["negatives"]) for p in (pos, *negs)]
        q_batch = self.model.tokenize_queries(rows[self.queries].tolist())
        d_batch = self.model.tokenize_docs(passages)
        Q, D = forward(q_batch, d_batch)
        Q = Q * self.model.query_mask(q_batch["attention_mask"]).to(Q.device).unsqueeze(-1)
        mask = self.model.doc_mask(**d_batch).to(D.device)
        n = len(rows)
        if self.in_batch:
            scores = maxsim(Q[:, None], D[None], mask[None], self.model.config.similarity)
            positives = torch.arange(n, device=scores.device) * per_query
            return pairwise_softmax_ce(scores, positives)
        scores = maxsim(Q[:, None], D.view(n, per_query, *D.shape[1:]), mask.view(n, per_query, -1),
                        self.model.config.similarity)
        return pairwise_softmax_ce(scores)
