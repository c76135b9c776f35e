"""Training losses: small pure functions of score and vector tensors (no models, no state).

Example::

    loss = pairwise_softmax_ce(torch.stack([pos_scores, neg_scores], dim=1))
    kd = ir_kd_loss(student_scores, teacher_scores, temperature=2.0)
    rep = representation_kd_loss(student_q, teacher_q[perm], student_p, teacher_p, passage_mask)
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F


def pairwise_softmax_ce(scores: torch.Tensor, positives: Optional[torch.Tensor] = None) -> torch.Tensor:
    """ColBERT's training loss: softmax cross-entropy over each query's candidate passages, mean over queries.

    ``scores`` is ``[queries, candidates]``; the positive passage is column 0 unless ``positives`` (a LongTensor
    ``[queries]``) names it, as with in-batch negatives.

    Example::

        pairwise_softmax_ce(torch.tensor([[3.0, 1.0]]))   # -log(e^3 / (e^3 + e^1)) = 0.1269
    """
    if scores.dim() != 2:
        raise ValueError(f"scores must be [queries, candidates], got shape {tuple(scores.shape)}")
    if positives is None:
        positives = torch.zeros(scores.shape[0], dtype=torch.long, device=scores.device)
    return F.cross_entropy(scores.float(), positives)


def ir_kd_loss(student_scores: torch.Tensor, teacher_scores: torch.Tensor, temperature: float = 2.0,
               mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """IR-score distillation: ``KL(softmax(t / T) || softmax(s / T)) * T^2``, mean over queries.

    Both score tensors are ``[queries, candidates]`` over the same passages; ``mask`` (bool, same shape) drops
    candidates that are not real (padding). The teacher's scores carry no gradient.

    Example::

        ir_kd_loss(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 0.0]]), temperature=1.0)  # log(1 + e) - 0.5 - log 2
    """
    if student_scores.shape != teacher_scores.shape or student_scores.dim() != 2:
        raise ValueError(f"student and teacher scores must both be [queries, candidates], got "
                         f"{tuple(student_scores.shape)} and {tuple(teacher_scores.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, not {temperature}")
    s = student_scores.float() / temperature
    t = teacher_scores.detach().float() / temperature
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
        t = t.masked_fill(~mask, float("-inf"))
    log_p_student = F.log_softmax(s, dim=-1)
    log_p_teacher = F.log_softmax(t, dim=-1)
    p_teacher = log_p_teacher.exp()
    # 0 * log 0 terms (masked candidates) contribute 0
    per_candidate = torch.where(p_teacher > 0, p_teacher * (log_p_teacher - log_p_student), torch.zeros_like(p_teacher))
    return per_candidate.sum(-1).mean() * temperature ** 2


def token_mse(student: torch.Tensor, teacher: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Mean squared error between token vectors ``[..., tokens, dim]``, position by position: the squared Euclidean
    distance of each token pair, averaged over the tokens where ``mask`` (``[..., tokens]``) is True (all without a
    mask). Each token vector is one observation, so the scale does not shrink with ``dim`` (for unit vectors it is
    ``2 - 2 cos``). The teacher carries no gradient.

    Example::

        token_mse(torch.tensor([[[1.0, 0.0], [0.0, 1.0]]]), torch.tensor([[[0.0, 0.0], [0.0, 1.0]]]))   # (1 + 0) / 2
    """
    if student.shape != teacher.shape:
        raise ValueError(f"student and teacher token vectors differ in shape: {tuple(student.shape)} and "
                         f"{tuple(teacher.shape)}")
    squared = (student.float() - teacher.detach().float()).pow(2).sum(-1)
    if mask is None:
        return squared.mean()
    mask = mask.bool()
    return (squared * mask).sum() / mask.sum().clamp(min=1)


def representation_kd_loss(student_query: torch.Tensor, teacher_query_aligned: torch.Tensor,
                           student_passage: Optional[torch.Tensor] = None,
                           teacher_passage: Optional[torch.Tensor] = None,
                           passage_mask: Optional[torch.Tensor] = None, query_weight: float = 0.5,
                           query_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Representation distillation on parallel text:
    ``w * MSE(student query tokens, aligned teacher query tokens) + (1 - w) * MSE(student passage tokens, teacher
    passage tokens)``, with ``w = query_weight``.

    The query term compares ``[batch, query_maxlen, dim]`` tensors whose teacher side is already re-positioned
    (see :func:`greedy_alignment`); the passage term compares the English sentence encoded as a passage by both
    models, over ``passage_mask``; ``query_mask`` limits the query term to the student's scoring query positions (all
    of them with query augmentation). Without passage tensors (a student that keeps the teacher's passage encoder)
    the passage term is zero.

    Example::

        loss = representation_kd_loss(student_q, align_teacher(teacher_q, student_q), student_p, teacher_p, mask)
    """
    if not 0.0 <= query_weight <= 1.0:
        raise ValueError(f"query_weight must be in [0, 1], not {query_weight}")
    loss = query_weight * token_mse(student_query, teacher_query_aligned, query_mask)
    if (student_passage is None) != (teacher_passage is None):
        raise ValueError("give both student and teacher passage vectors, or neither")
    if student_passage is not None:
        loss = loss + (1.0 - query_weight) * token_mse(student_passage, teacher_passage, passage_mask)
    return loss
