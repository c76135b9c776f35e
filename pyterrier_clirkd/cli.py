"""The ``clirkd`` command: a small dispatcher; each subcommand lives with the module it drives.

Example::

    clirkd distill --help
    python -m pyterrier_clirkd.cli train --model offline:me5-small --triples t.tsv --output out/
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from . import __version__
from .commands import add_evaluate_parser, add_index_parser, add_retrieve_parser
from .demo import add_demo_parser
from .train.cli import add_distill_parser, add_train_parser


class _Parser(argparse.ArgumentParser):
    """Bad arguments give one line on stderr (no usage dump, no traceback) and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="clirkd", description="Cross-lingual ColBERT retrieval for PyTerrier (DR.DECR).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_index_parser(subparsers)
    add_retrieve_parser(subparsers)
    add_evaluate_parser(subparsers)
    add_demo_parser(subparsers)
    add_train_parser(subparsers)
    add_distill_parser(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``clirkd`` with ``argv`` (default: the command line); returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except KeyboardInterrupt:
        print(f"clirkd {args.command}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, FloatingPointError) as e:
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"clirkd {args.command}: error: {message}", file=sys.stderr)
        return 1
    finally:
        _leave_process_group()
    return 0


def _leave_process_group() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
