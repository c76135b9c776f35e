"""Runs a small distillation in its own process, for tests/test_train.py: resuming after a real SIGKILL, and
two-process data-parallel training (run under ``torchrun``).

    python tests/train_helper.py TEACHER_FOLDER PARALLEL_FOLDER OUTPUT [--kill-at STEP] [--accumulation N] [--no-dropout]
"""
import argparse
import copy
import os
import signal

import torch

from pyterrier_clirkd import ColBERT
from pyterrier_clirkd.train import Distiller, read_parallel_folder
from pyterrier_clirkd.train import distill


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("teacher")
    parser.add_argument("parallel")
    parser.add_argument("output")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--accumulation", type=int, default=1)
    parser.add_argument("--checkpoint-every", type=int, default=2)
    parser.add_argument("--kill-at", type=int, help="SIGKILL this process when the loss of this step is computed")
    parser.add_argument("--no-dropout", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    teacher = ColBERT.from_pretrained(args.teacher, device="cpu")
    student = copy.deepcopy(teacher)
    if args.no_dropout:
        for module in student.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
    if args.kill_at is not None:
        original, calls = distill._DistillationObjective.loss, []

        def loss(self, forward, examples):
            calls.append(1)
            if len(calls) == args.kill_at * args.accumulation:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(self, forward, examples)
        distill._DistillationObjective.loss = loss
    Distiller(teacher, student, passages="shared", steps=args.steps, batch_size=args.batch_size,
              accumulation=args.accumulation, lr=1e-3, checkpoint_every=args.checkpoint_every,
              verbose=False).fit(read_parallel_folder(args.parallel), args.output)


if __name__ == "__main__":
    main()
