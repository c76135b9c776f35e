"""The ``clirkd train`` and ``clirkd distill`` subcommands.

Example::

    clirkd distill --teacher offline:me5-small --parallel data/xor-tydi/translations --output student/
    torchrun --nproc_per_node 2 -m pyterrier_clirkd.cli train --model xlm-roberta-base --triples t.tsv --output t/
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..config import CONFIG_NAME
from .distill import DISTILL_DEFAULTS


def add_train_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``clirkd train``: supervised ColBERT training on text triples."""
    parser = subparsers.add_parser(
        "train", help="fine-tune a ColBERT on (query, positive, negative) text triples",
        description="Fine-tune a ColBERT on text triples (query<TAB>positive<TAB>negative... a line) with the pairwise "
                    "softmax cross-entropy. Interrupted runs resume from OUTPUT.checkpoint; run under torchrun for "
                    "data-parallel training.")
    parser.add_argument("--model", required=True, help="starting model: a Hugging Face encoder or folder, a saved "
                                                        "ColBERT, or offline:me5-small")
    parser.add_argument("--triples", required=True, type=Path, help="ColBERT text triples TSV")
    parser.add_argument("--english", type=Path, help="row-aligned twin file with the English questions (PrimeQA "
                                                     "layout); with --queries english, train on them")
    parser.add_argument("--queries", choices=("query", "english"), default="query",
                        help="which questions to train on (default: the triples' own)")
    parser.add_argument("--in-batch-negatives", action="store_true",
                        help="also use the other queries' passages in each micro-batch as negatives")
    parser.add_argument("--output", required=True, type=Path, help="folder for the trained model")
    _add_training_options(parser, steps=1000, batch_size=32, lr=3e-6)
    parser.set_defaults(run=_run_train)
    return parser


def add_distill_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``clirkd distill``: DR.DECR knowledge distillation into a native-language student."""
    d = DISTILL_DEFAULTS
    parser = subparsers.add_parser(
        "distill", help="distil an English ColBERT into a student that reads non-English questions",
        description="Distil a frozen English teacher into a student that reads non-English questions: representation "
                    "KD (aligned token MSE) and IR-score KD (KL at temperature T) on parallel questions, with the "
                    "micro-batch's English questions as passages; or IR-score KD over triples' passages with "
                    "--triples and --english. The recipe in sequence: first --parallel ... --ir-weight 0, then "
                    "--student FIRST_OUTPUT --triples ... --english ... --representation-weight 0.")
    parser.add_argument("--teacher", required=True, help="the English teacher (a saved ColBERT, or offline:me5-small)")
    parser.add_argument("--student", help="starting student (default: a copy of the teacher)")
    data = parser.add_argument_group("data (one of --parallel or --triples)")
    data.add_argument("--parallel", nargs="+", type=Path, metavar="PATH",
                      help="a folder laid out as {lang}-en/{lang}.txt + {lang}-en/en.txt, or two line-aligned files "
                           "(non-English, English)")
    data.add_argument("--langs", help="comma-separated languages to take from a --parallel folder (default: all)")
    data.add_argument("--corpus", type=Path,
                      help="English passages (one a line, or a collection TSV): IR-score KD over the teacher's own "
                           "top-k passages for each English question plus sampled ones, instead of in-batch questions")
    data.add_argument("--top-k", type=int, default=4, help="teacher's passages per question with --corpus (default: 4)")
    data.add_argument("--sampled", type=int, default=4,
                      help="random passages per question with --corpus (default: 4)")
    data.add_argument("--triples", type=Path, help="ColBERT text triples with native-language questions")
    data.add_argument("--english", type=Path, help="row-aligned English twin file of --triples")
    parser.add_argument("--output", required=True, type=Path, help="folder for the student")
    parser.add_argument("--passages", choices=("teacher", "shared"), default=d["passages"],
                        help="teacher: only the query path learns and the student searches the teacher's index; "
                             "shared: one encoder for both, the corpus must be re-indexed (default: %(default)s)")
    parser.add_argument("--temperature", type=float, default=2.0, help="IR-score KD temperature (default: 2)")
    parser.add_argument("--query-weight", type=float, default=0.5,
                        help="weight of the query term in the representation KD (default: 0.5)")
    parser.add_argument("--representation-weight", type=float, default=d["representation_weight"],
                        help="weight of the representation KD (default: %(default)s)")
    parser.add_argument("--ir-weight", type=float, default=1.0, help="weight of the IR-score KD (default: 1)")
    parser.add_argument("--train-embeddings", dest="freeze_embeddings", action="store_false",
                        default=d["freeze_embeddings"], help="also train the token embeddings (default: frozen)")
    parser.add_argument("--freeze-layers", type=_layer_count, default=d["freeze_layers"], metavar="N|half",
                        help="keep the student's lowest N transformer layers fixed; half: the lower half, 6 of a "
                             "12-layer encoder (default: %(default)s; 0 trains them all)")
    _add_training_options(parser, steps=d["steps"], batch_size=d["batch_size"], lr=d["lr"])
    parser.set_defaults(run=_run_distill)
    return parser


def _add_training_options(parser: argparse.ArgumentParser, steps: int, batch_size: int, lr: float) -> None:
    group = parser.add_argument_group("training")
    group.add_argument("--steps", type=int, default=steps, help="optimizer steps (default: %(default)s)")
    group.add_argument("--batch-size", type=int, default=batch_size,
                       help="examples per step over all processes (default: %(default)s)")
    group.add_argument("--accumulation", type=int, default=1, help="micro-batches per step (default: 1)")
    group.add_argument("--lr", type=float, default=lr, help="AdamW learning rate (default: %(default)s)")
    group.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay (default: 0)")
    group.add_argument("--schedule", choices=("constant", "warmup", "linear"), default="constant",
                       help="learning-rate schedule (default: constant)")
    group.add_argument("--warmup-steps", type=int, default=0, help="warm-up steps (default: 0)")
    group.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                       help="autocast precision; auto: bf16/fp16 on GPU, fp32 on CPU")
    group.add_argument("--seed", type=int, default=12345, help="random seed (default: 12345)")
    group.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints (default: 100)")
    group.add_argument("--quiet", action="store_true", help="no progress bar")


def _layer_count(value: str) -> int | str:
    if value == "half":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of layers or 'half', not {value!r}") from None


def _training_settings(args) -> dict:
    return dict(steps=args.steps, batch_size=args.batch_size, accumulation=args.accumulation, lr=args.lr,
                weight_decay=args.weight_decay, schedule=args.schedule, warmup_steps=args.warmup_steps,
                precision=args.precision, seed=args.seed, checkpoint_every=args.checkpoint_every,
                verbose=not args.quiet)


def _check_output(output: Path) -> None:
    checkpoint = output.with_name(output.name + ".checkpoint")
    if (output / CONFIG_NAME).exists() and not checkpoint.exists():
        raise ValueError(f"{output} already holds a trained model; choose another --output or delete it")


def _run_train(args) -> None:
    from ..model import ColBERT
    from .data import read_triples
    from .trainer import ColBERTTrainer

    _check_output(args.output)
    if args.queries == "english" and args.english is None:
        raise ValueError("--queries english needs --english (the twin file with the English questions)")
    triples = read_triples(args.triples, english=args.english)
    model = ColBERT.from_pretrained(args.model)
    ColBERTTrainer(model, in_batch_negatives=args.in_batch_negatives, queries=args.queries,
                   **_training_settings(args)).fit(triples, args.output)
    _report(f"saved {args.output}")


def _run_distill(args) -> None:
    from ..model import ColBERT
    from .data import read_parallel_files, read_parallel_folder, read_passages, read_triples
    from .distill import Distiller
    from .mining import teacher_passages

    _check_output(args.output)
    if (args.parallel is None) == (args.triples is None):
        raise ValueError("give one of --parallel (parallel questions) or --triples with --english")
    if args.parallel is not None:
        if len(args.parallel) > 2:
            raise ValueError("--parallel takes a folder, or two line-aligned files (non-English, English)")
        if len(args.parallel) == 2:
            data = read_parallel_files(*args.parallel)
        else:
            langs = [lang.strip() for lang in args.langs.split(",") if lang.strip()] if args.langs else None
            data = read_parallel_folder(args.parallel[0], langs=langs)
    else:
        if args.english is None:
            raise ValueError("--triples needs --english, the row-aligned twin file with the English questions")
        data = read_triples(args.triples, english=args.english)
    if args.corpus is not None and args.parallel is None:
        raise ValueError("--corpus goes with --parallel (triples bring their own passages)")
    teacher = ColBERT.from_pretrained(args.teacher)
    if args.corpus is not None:
        data["passages"] = teacher_passages(teacher, data["english"].tolist(), read_passages(args.corpus),
                                            k=args.top_k, sampled=args.sampled, seed=args.seed, verbose=not args.quiet)
    student = ColBERT.from_pretrained(args.student) if args.student else None
    Distiller(teacher, student, passages=args.passages, temperature=args.temperature, query_weight=args.query_weight,
              representation_weight=args.representation_weight, ir_weight=args.ir_weight,
              freeze_embeddings=args.freeze_embeddings, freeze_layers=args.freeze_layers,
              **_training_settings(args)).fit(data, args.output)
    _report(f"saved {args.output} (passages={args.passages})")


def _report(message: str) -> None:
    """Print once, from the first process of a torchrun job."""
    import torch.distributed as dist

    if not dist.is_initialized() or dist.get_rank() == 0:
        print(message)
