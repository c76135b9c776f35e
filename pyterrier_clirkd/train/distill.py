"""Distiller: DR.DECR's two knowledge-distillation objectives, from a frozen English teacher into a student that
reads non-English questions.

- IR-score KD: ``KL(softmax(t / T) || softmax(s / T)) * T^2`` where ``t`` are the teacher's scores for the English
  question and ``s`` the student's for the native one, over the same English passages: each row's ``passages``
  (e.g. a triple's positive and negatives), or else the micro-batch's English sentences (label-free, in-batch).
- Representation KD on parallel text: ``w * MSE(student query tokens of the native text, teacher query tokens of
  the English text re-positioned by greedy_alignment) + (1 - w) * MSE(student passage tokens, teacher passage
  tokens of the English text)``.

The student either shares one encoder for queries and passages (``passages="shared"``, the paper: it must re-index
its corpus), or keeps the teacher's passage encoder (``passages="teacher"``: only its query path learns, passage
vectors always come from the teacher, and the saved student's ``config.passage_fingerprint`` names the teacher so
that it searches the teacher's index as is).

Example::

    teacher = ColBERT.from_pretrained("offline:me5-small")
    pairs = read_parallel_folder("data/xor-tydi/translations", langs=["ja", "ko", "ru"])
    student = Distiller(teacher, passages="teacher", steps=300).fit(pairs, "student/")
    # the recipe in sequence: representation KD, then IR-score KD on triples with an English twin file
    stage3 = Distiller(teacher, ir_weight=0.0).fit(parallel_sentences, "stage3/")
    stage4 = Distiller(teacher, stage3, representation_weight=0.0).fit(read_triples("xor.tsv", "xor.en.tsv"), "stage4/")
"""
from __future__ import annotations

import copy
import os
from typing import Optional

import pandas as pd
import torch

from ..model import ColBERT, maxsim
from .alignment import align_teacher
from .losses import ir_kd_loss, representation_kd_loss
from .loop import TrainingConfig, setup_distributed, train
from .trainer import Encoding, frame_digest, make_trainable

PASSAGE_MODES = ("shared", "teacher")
# The settings of `clirkd distill` and `clirkd demo`. Measured with the offline backbone on 2 CPU cores: 150 steps
# take about 3 minutes (1.1 s a step), and both student modes beat the zero-shot teacher on each Debian FAQ language
# (benchmarks/distill_faq.py). Of the settings tried, a light representation KD (0.2) with the lower half of the
# encoder frozen gave the best students; more steps did not help.
DISTILL_DEFAULTS = dict(passages="teacher", steps=150, batch_size=32, lr=5e-5, representation_weight=0.2,
                        freeze_embeddings=True, freeze_layers="half")


class Distiller:
    """Distil ``teacher`` (frozen, reads English) into ``student`` (default: a copy of the teacher).

    ``passages``: "shared" or "teacher" (see the module docstring). ``temperature``: T of the IR-score KD.
    ``query_weight``: w of the representation KD. ``representation_weight`` and ``ir_weight`` weigh the two
    objectives in the joint loss (set one to 0 to run the other alone). ``freeze_embeddings`` keeps the student's
    token embeddings fixed, ``freeze_layers`` its lowest transformer layers (a number, or ``"half"``). Other keywords
    are :class:`TrainingConfig` settings.

    Example::

        distiller = Distiller(teacher, passages="teacher", steps=400, batch_size=32, lr=2e-5)
        student = distiller.fit(read_parallel_folder("translations/"), "student/")
    """

    def __init__(self, teacher: ColBERT, student: Optional[ColBERT] = None, *, passages: str = "shared",
                 temperature: float = 2.0, query_weight: float = 0.5, representation_weight: float = 1.0,
                 ir_weight: float = 1.0, freeze_embeddings: bool = False, freeze_layers: int | str = 0,
                 **training_settings):
        if passages not in PASSAGE_MODES:
            raise ValueError(f"passages must be one of {PASSAGE_MODES}, not {passages!r}")
        if representation_weight < 0 or ir_weight < 0 or representation_weight + ir_weight == 0:
            raise ValueError(f"the objective weights must be non-negative and not both zero "
                             f"(representation_weight={representation_weight}, ir_weight={ir_weight})")
        self.teacher = teacher
        self.student = student
        self.passages = passages
        self.temperature = temperature
        self.query_weight = query_weight
        self.representation_weight = representation_weight
        self.ir_weight = ir_weight
        self.freeze_embeddings = freeze_embeddings
        self.freeze_layers = freeze_layers
        self.config = TrainingConfig(**training_settings)
        self.losses: list[float] = []

    def __repr__(self) -> str:
        return (f"Distiller({self.teacher!r}, {self.student!r}, passages={self.passages!r}, "
                f"temperature={self.temperature}, query_weight={self.query_weight}, "
                f"representation_weight={self.representation_weight}, ir_weight={self.ir_weight}, "
                f"freeze_embeddings={self.freeze_embeddings}, freeze_layers={self.freeze_layers!r}, {self.config})")

    def fit(self, data: pd.DataFrame, output: str | os.PathLike,
            checkpoint_dir: Optional[str | os.PathLike] = None) -> ColBERT:
        """Distil over ``data``, save the student to ``output`` and return it.

        ``data`` has ``text`` (the non-English question or sentence) and ``english`` columns (as from
        :func:`read_parallel_folder`), and optionally ``passages`` (a list of English passages per row); triples read
        with an English twin file (``query``, ``english``, ``positive``, ``negatives``) are taken as they are.
        An interrupted run resumes from ``checkpoint_dir`` (default ``{output}.checkpoint``).
        """
        data = distillation_frame(data)
        _, _, device = setup_distributed()
        student = self._prepare_student(device)
        self.teacher.to(device).eval()
        objective = _DistillationObjective(self, student, data)
        self.losses = train(objective, self.config, output, save=student.save_pretrained,
                            checkpoint_dir=checkpoint_dir)
        self.student = student
        return student

    def _prepare_student(self, device: torch.device) -> ColBERT:
        student = self.student
        if student is None:
            student = copy.deepcopy(self.teacher)
            student.name_or_path = None
        _check_compatible(self.teacher, student)
        student.to(device)
        make_trainable(student, self.freeze_embeddings, self.freeze_layers)
        # whose passage vectors the student's queries search: the teacher's, or its own (re-indexing)
        student.config.passage_fingerprint = self.teacher.passage_fingerprint() if self.passages == "teacher" else None
        return student


def distillation_frame(data: pd.DataFrame) -> pd.DataFrame:
    """``text``, ``english`` and (when given) ``passages`` columns from parallel text or triples with a twin file.

    Example::

        distillation_frame(read_triples("xor.tsv", english="xor.en.tsv")).columns  # text, english, passages
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"expected a DataFrame of training rows, not {type(data).__name__}")
    if {"query", "positive", "negatives"} <= set(data.columns):
        if "english" not in data.columns:
            raise ValueError("triples need an 'english' column (read them with an English twin file) to distil")
        data = pd.DataFrame({"text": data["query"], "english": data["english"],
                             "passages": [(p, *n) for p, n in zip(data["positive"], data["negatives"])]})
    missing = {"text", "english"} - set(data.columns)
    if missing:
        raise ValueError(f"distillation data lack the column(s) {sorted(missing)} (have {list(data.columns)})")
    if not len(data):
        raise ValueError("no distillation data")
    if "passages" in data.columns and len({len(p) for p in data["passages"]}) > 1:
        raise ValueError("every row must have the same number of passages")
    return data.reset_index(drop=True)


def _check_compatible(teacher: ColBERT, student: ColBERT) -> None:
    for name in ("query_maxlen", "doc_maxlen", "dim", "similarity", "query_marker", "doc_marker"):
        if getattr(teacher.config, name) != getattr(student.config, name):
            raise ValueError(f"teacher and student differ in {name} ({getattr(teacher.config, name)!r} vs "
                             f"{getattr(student.config, name)!r}); distillation compares their tokens one by one")
    if len(teacher.tokenizer) != len(student.tokenizer):
        raise ValueError("teacher and student have different vocabularies; distillation needs the same tokenizer")


class _DistillationObjective:
    def __init__(self, distiller: Distiller, student: ColBERT, data: pd.DataFrame):
        self.d = distiller
        self.teacher = distiller.teacher
        self.student = student
        self.module = Encoding(student)
        self.data = data
        self.has_passages = "passages" in data.columns
        self._start = {"teacher": self.teacher.fingerprint(), "student": student.fingerprint(),
                       "data": frame_digest(data)}

    def __len__(self) -> int:
        return len(self.data)

    def signature(self) -> dict:
        d = self.d
        return {"kind": "distillation", "passages": d.passages, "temperature": d.temperature,
                "query_weight": d.query_weight, "representation_weight": d.representation_weight,
                "ir_weight": d.ir_weight, "freeze_embeddings": d.freeze_embeddings, "freeze_layers": d.freeze_layers,
                **self._start}

    def loss(self, forward, examples: list[int]) -> torch.Tensor:
        d, teacher, student = self.d, self.teacher, self.student
        rows = self.data.iloc[examples]
        natives, english = rows["text"].tolist(), rows["english"].tolist()
        use_rep, use_ir = d.representation_weight > 0, d.ir_weight > 0
        # passages to encode: those of the IR-score KD (each row's own, or else the micro-batch's English sentences),
        # then, for a shared student's representation KD, the English sentences unless they are already there
        docs = ([p for ps in rows["passages"] for p in ps] if self.has_passages else list(english)) if use_ir else []
        rep_start = None
        if use_rep and d.passages == "shared":
            rep_start = 0 if use_ir and not self.has_passages else len(docs)
            docs += english if rep_start == len(docs) else []
        q_batch, t_batch = student.tokenize_queries(natives), teacher.tokenize_queries(english)
        d_batch = student.tokenize_docs(docs) if docs else None
        with torch.no_grad():   # the teacher is frozen
            Q_t = _queries(teacher, teacher(**_to(t_batch, teacher.device)), t_batch)
            D_t = teacher(**_to(d_batch, teacher.device)) if docs else None
        if d.passages == "shared" and docs:
            Q_s, D_s = forward(q_batch, d_batch)
        else:   # the student's passages are the teacher's
            (Q_s,), D_s = forward(q_batch), D_t
        Q_s = _queries(student, Q_s, q_batch)
        mask = student.doc_mask(**d_batch).to(Q_s.device) if docs else None
        loss = Q_s.new_zeros(())
        if use_ir:
            n = len(docs) if rep_start in (None, 0) else rep_start
            per_row = len(rows["passages"].iloc[0]) if self.has_passages else None
            s = _scores(student, Q_s, D_s[:n], mask[:n], per_row)
            t = _scores(student, Q_t, D_t[:n], mask[:n], per_row)
            loss = loss + d.ir_weight * ir_kd_loss(s, t, d.temperature)
        if use_rep:
            passage_terms = {}
            if rep_start is not None:
                rep = slice(rep_start, rep_start + len(english))
                passage_terms = dict(student_passage=D_s[rep], teacher_passage=D_t[rep], passage_mask=mask[rep])
            query_mask = student.query_mask(q_batch["attention_mask"]).to(Q_s.device)
            loss = loss + d.representation_weight * representation_kd_loss(
                Q_s, align_teacher(Q_t, Q_s), query_weight=d.query_weight, query_mask=query_mask, **passage_terms)
        return loss


def _scores(model: ColBERT, Q: torch.Tensor, D: torch.Tensor, mask: torch.Tensor, per_row) -> torch.Tensor:
    """MaxSim ``[queries, candidates]``: every query against every passage (in-batch), or against its own
    ``per_row`` consecutive passages."""
    if per_row is None:
        return maxsim(Q[:, None], D[None], mask[None], model.config.similarity)
    shape = (len(Q), per_row, *D.shape[1:])
    return maxsim(Q[:, None], D.view(shape), mask.view(shape[:3]), model.config.similarity)


def _queries(model: ColBERT, vectors: torch.Tensor, batch: dict) -> torch.Tensor:
    """Query vectors with the positions that do not score (padding without query augmentation) zeroed."""
    return vectors * model.query_mask(batch["attention_mask"]).to(vectors.device).unsqueeze(-1)


def _to(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) for k, v in batch.items()}
