"""Label-free passages for IR-score distillation: the teacher's own top-k passages for each English question, from an
English corpus, plus randomly sampled ones.

The corpus is encoded once by the teacher and searched exactly by MaxSim in memory, which suits corpora of up to
some tens of thousands of passages.

Example::

    pairs = read_parallel_folder("translations/", langs=["ja"])
    pairs["passages"] = teacher_passages(teacher, pairs["english"].tolist(), read_passages("collection.tsv"))
    Distiller(teacher, passages="teacher").fit(pairs, "student/")
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..model import ColBERT, maxsim


@torch.no_grad()
def teacher_passages(teacher: ColBERT, questions: Sequence[str], corpus: Sequence[str], k: int = 4,
                     sampled: int = 4, seed: int = 12345, batch_size: int = 64, verbose: bool = False) -> list[tuple[str, ...]]:
    """For each English question, the teacher's ``k`` best passages of ``corpus`` (best first) followed by
    ``sampled`` other passages drawn at random (seeded).

    Example::

        teacher_passages(teacher, ["Who wrote Hamlet?"], passages, k=2, sampled=2)
        # [("Hamlet is a tragedy by Shakespeare.", "...", "<random>", "<random>")]
    """
    corpus = list(corpus)
    if k < 1 or sampled < 0 or k + sampled > len(corpus):
        raise ValueError(f"need 1 <= k and 0 <= sampled with k + sampled <= {len(corpus)} corpus passages "
                         f"(k={k}, sampled={sampled})")
    Q = torch.from_numpy(teacher.encode_queries(list(questions), batch_size=batch_size, verbose=verbose))
    docs = teacher.encode_docs(corpus, batch_size=batch_size, verbose=verbose)
    scores = torch.empty((len(Q), len(corpus)))
    chunk, group = 256, 16   # scores [group, chunk, query tokens, passage tokens] at a time: under 100 MB
    for start in range(0, len(corpus), chunk):
        part = docs[start:start + chunk]
        width = max(len(d) for d in part)
        D = torch.zeros((len(part), width, Q.shape[-1]))
        mask = torch.zeros((len(part), width), dtype=torch.bool)
        for i, d in enumerate(part):
            D[i, :len(d)] = torch.from_numpy(d)
            mask[i, :len(d)] = True
        for q in range(0, len(Q), group):
            scores[q:q + group, start:start + len(part)] = maxsim(Q[q:q + group, None], D[None], mask[None],
                                                                  teacher.config.similarity)
    top = scores.topk(k, dim=1).indices.numpy()
    rng = np.random.default_rng(seed)
    out = []
    for best in top:
        drawn = [i for i in rng.choice(len(corpus), size=k + sampled, replace=False) if i not in best][:sampled]
        out.append(tuple(corpus[i] for i in [*best, *drawn]))
    return out
