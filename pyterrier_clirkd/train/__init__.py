"""Training: supervised ColBERT fine-tuning and DR.DECR's two distillation objectives."""
from .alignment import align_teacher, greedy_alignment
from .data import read_parallel_files, read_parallel_folder, read_passages, read_triples
from .distill import DISTILL_DEFAULTS, Distiller
from .loop import TrainingConfig, read_losses, train
from .losses import ir_kd_loss, pairwise_softmax_ce, representation_kd_loss, token_mse
from .mining import teacher_passages
from .trainer import ColBERTTrainer

__all__ = ["ColBERTTrainer", "Distiller", "DISTILL_DEFAULTS", "TrainingConfig", "train", "read_losses", "greedy_alignment",
           "align_teacher", "pairwise_softmax_ce", "ir_kd_loss", "token_mse", "representation_kd_loss",
           "read_triples", "read_parallel_folder", "read_parallel_files", "read_passages", "teacher_passages"]
