"""Tiny random encoders with the real XLM-R tokenizer of the offline backbone, for fast tests."""
from __future__ import annotations

from pathlib import Path

import torch
import transformers

from pyterrier_clirkd.offline import offline_model_path


def xlmr_tokenizer():
    return transformers.AutoTokenizer.from_pretrained(str(offline_model_path(verbose=False)))


def tiny_xlmr_folder(folder: Path, seed: int = 0, hidden: int = 32) -> Path:
    """A random 2-layer ``XLMRobertaModel`` with the real 250k-piece XLM-R tokenizer, saved as an HF folder."""
    tokenizer = xlmr_tokenizer()
    torch.manual_seed(seed)
    config = transformers.XLMRobertaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=2 * hidden, max_position_embeddings=520, pad_token_id=1)
    transformers.XLMRobertaModel(config, add_pooling_layer=False).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
