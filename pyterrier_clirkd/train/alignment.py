"""Greedy token alignment for representation distillation (DR.DECR): re-position the teacher's query tokens so that
each lands where the student's closest token is.

Example::

    perm = greedy_alignment(teacher_q, student_q)      # teacher_q, student_q: [query_maxlen, dim]
    loss = token_mse(student_q, teacher_q[perm])
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.no_grad()
def greedy_alignment(teacher: torch.Tensor, student: torch.Tensor) -> torch.Tensor:
    """The permutation ``perm`` (LongTensor) such that ``teacher[perm]`` is the teacher's tokens re-positioned.

    ``D[i, j] = 1 - cos(teacher_i, student_j)``. Repeated once per position: take the smallest entry ``(i, j)`` of
    ``D`` (the first in row-major order on ties), move the teacher token at position ``i`` to position ``j`` by
    swapping rows ``i`` and ``j`` (the teacher token that was at ``j`` moves to ``i``), then block row ``j`` and
    column ``j``. Only teacher tokens move. ``teacher`` and ``student`` are ``[tokens, dim]``, or ``[batch, tokens,
    dim]`` for one permutation per row (then ``perm`` is ``[batch, tokens]``).

    Example::

        teacher = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
        student = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        greedy_alignment(teacher, student)        # tensor([1, 0]): teacher[perm] == student
    """
    if teacher.shape != student.shape or teacher.dim() not in (2, 3):
        raise ValueError(f"teacher and student must both be [tokens, dim] or [batch, tokens, dim], got "
                         f"{tuple(teacher.shape)} and {tuple(student.shape)}")
    single = teacher.dim() == 2
    t = F.normalize(teacher.float(), dim=-1, eps=1e-8)
    s = F.normalize(student.float(), dim=-1, eps=1e-8)
    if single:
        t, s = t[None], s[None]
    dist = 1.0 - t @ s.transpose(1, 2)                 # [batch, teacher position, student position]
    batch, n, _ = dist.shape
    rows = torch.arange(batch, device=dist.device)
    perm = torch.arange(n, device=dist.device).repeat(batch, 1)
    for _ in range(n):
        flat = dist.reshape(batch, -1).argmin(-1)      # argmin returns the first minimum: row-major on ties
        i, j = flat // n, flat % n
        dist[rows, i], dist[rows, j] = dist[rows, j].clone(), dist[rows, i].clone()
        perm[rows, i], perm[rows, j] = perm[rows, j].clone(), perm[rows, i].clone()
        dist[rows, j, :] = float("inf")
        dist[rows, :, j] = float("inf")
    return perm[0] if single else perm


def align_teacher(teacher: torch.Tensor, student: torch.Tensor) -> torch.Tensor:
    """The teacher's token vectors ``[batch, tokens, dim]`` re-positioned by :func:`greedy_alignment` against the
    student's (gradients do not flow through the alignment).

    Example::

        loss = token_mse(student_q, align_teacher(teacher_q, student_q))
    """
    perm = greedy_alignment(teacher.detach(), student.detach())
    return teacher.gather(1, perm.unsqueeze(-1).expand_as(teacher))
