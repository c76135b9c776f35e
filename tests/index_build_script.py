"""Builds a ColBERTIndex in its own process, for tests/test_index.py: a build killed by SIGKILL (``--kill-after N``
documents, or ``--kill-in merge``), and a sharded build under ``torchrun`` (two CPU processes, gloo)."""
from __future__ import annotations

import argparse
import os
import signal

import torch

WORDS = ("the cat sat on a mat dog ran far away city river mountain blue green red house tree book tokyo "
         "hamlet play wrote capital japan water fire stone road").split()


def corpus(n: int, seed: int = 0) -> list[dict]:
    """``n`` short random passages with docnos ``p0 .. p{n-1}`` (a few of them empty)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return [{"docno": f"p{i}", "text": " ".join(rng.choice(WORDS, int(rng.integers(0, 14))))} for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--docs", type=int, required=True)
    parser.add_argument("--chunk-size", type=int, default=50)
    parser.add_argument("--kill-after", type=int, help="SIGKILL this process when the indexer asks for this document")
    parser.add_argument("--kill-in", choices=["merge"], help="SIGKILL this process when the merge starts")
    args = parser.parse_args()
    torch.set_num_threads(1)

    from pyterrier_clirkd import ColBERT, ColBERTIndex
    from pyterrier_clirkd.index import codec

    def kill():
        os.kill(os.getpid(), signal.SIGKILL)

    def documents():
        for position, doc in enumerate(corpus(args.docs)):
            if position == args.kill_after:
                kill()
            yield doc

    if args.kill_in == "merge":
        codec.ResidualCodec.train = classmethod(lambda *a, **k: kill())
    model = ColBERT.from_pretrained(args.model, device="cpu")
    ColBERTIndex(args.out, model, chunk_size=args.chunk_size, verbose=False).index(documents())


if __name__ == "__main__":
    main()
