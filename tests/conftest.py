import os

# Tests never reach the Hugging Face hub: an unknown model name must fail fast and clearly.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


from pathlib import Path

import pytest
import torch

from pyterrier_clirkd import ColBERT
from tiny_models import tiny_xlmr_folder


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models gain nothing from threads, and on a busy machine a second thread makes them much slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_colbert_folder(tmp_path_factory) -> Path:
    """A tiny ColBERT (random 2-layer XLM-R encoder and head, the same weights every time), saved as a folder so
    that subprocesses load the very same model."""
    root = tmp_path_factory.mktemp("tiny")
    model = ColBERT.from_pretrained(tiny_xlmr_folder(root / "encoder"), device="cpu", dim=8, query_maxlen=12,
                                    doc_maxlen=16)
    model.save_pretrained(root / "colbert")
    return root / "colbert"
