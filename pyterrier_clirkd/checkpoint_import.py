"""Imports of existing ColBERT checkpoints: Stanford ColBERTv2 / PrimeQA folders and ColBERT v1 ``.dnn`` files.

Both keep the encoder under a prefix (``bert.``, ``roberta.``, possibly behind ``module.``) and the projection as
``linear.weight``; markers and lengths come from the checkpoint's own settings. Weights are read with safetensors or
``torch.load(weights_only=True)``, never by unpickling code.

Example::

    model = ColBERT.from_pretrained("colbertv2.0/")                          # Stanford folder
    model = ColBERT.from_pretrained("DrDecr.dnn", backbone="xlm-roberta-base")  # ColBERT v1 file
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import torch
import transformers
from safetensors.torch import load_file

from .config import ColBERTConfig
from .model import BERT_MARKERS, _quiet_transformers, load_tokenizer

# PrimeQA's XLM-R ColBERT inserts token ids 9748 / 9749 as query / passage markers (the code points of its intended
# symbols, used as ids); its checkpoints were trained with those pieces, so imports keep them.
PRIMEQA_XLMR_MARKER_IDS = (9748, 9749)


def from_stanford_folder(cls, path: Path, **config_overrides):
    """A Stanford ColBERTv2 or PrimeQA folder: HF config + weights with ``linear.weight`` + ``artifact.metadata``."""
    metadata = json.loads((path / "artifact.metadata").read_text())
    settings = metadata.get("config", metadata)  # newer colbert-ai nests the settings under "config"
    state = _read_weights(path)
    encoder_config = transformers.AutoConfig.from_pretrained(path)
    return _assemble(cls, encoder_config, load_tokenizer(path), state, settings, config_overrides, str(path))


def from_colbert_v1(cls, path: Path, backbone: Optional[str] = None, **config_overrides):
    """A ColBERT v1 checkpoint (``torch.save`` of ``{"model_state_dict": ..., "arguments": ...}``).

    The encoder architecture and tokenizer come from ``backbone``, else from the checkpoint's ``model_type``
    argument (PrimeQA), else ``bert-base-uncased`` (ColBERT v1's only backbone).
    """
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # an unsafe or corrupt pickle is refused, not executed
        raise ValueError(f"{path}: cannot read as a ColBERT v1 checkpoint with weights_only=True ({e})") from None
    if not isinstance(checkpoint, dict) or "model_state_dict" not in checkpoint:
        raise ValueError(f"{path}: not a ColBERT v1 checkpoint (no 'model_state_dict')")
    settings = dict(checkpoint.get("arguments") or {})
    backbone = backbone or settings.get("model_type") or "bert-base-uncased"
    encoder_config = transformers.AutoConfig.from_pretrained(backbone)
    return _assemble(cls, encoder_config, load_tokenizer(backbone), checkpoint["model_state_dict"], settings,
                     config_overrides, str(path))


def _assemble(cls, encoder_config, tokenizer, state: dict, settings: dict, overrides: dict, source: str):
    state = {_strip(k): v for k, v in state.items()}
    if "linear.weight" not in state:
        raise ValueError(f"{source}: no 'linear.weight' projection in the checkpoint")
    linear_weight = state.pop("linear.weight")
    with _quiet_transformers():
        encoder = transformers.AutoModel.from_config(encoder_config)
    prefix = encoder.base_model_prefix + "."
    encoder_state = {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state.items()}
    missing, unexpected = encoder.load_state_dict(encoder_state, strict=False)
    missing = [k for k in missing if not k.startswith("pooler.") and "position_ids" not in k]
    if missing:
        raise ValueError(f"{source}: encoder weights missing from the checkpoint: {missing[:5]}")
    if encoder_config.model_type == "xlm-roberta":
        markers, augmentation = tuple(tokenizer.convert_ids_to_tokens(list(PRIMEQA_XLMR_MARKER_IDS))), "pad"
    else:
        markers = (settings.get("query_token_id", BERT_MARKERS[0]), settings.get("doc_token_id", BERT_MARKERS[1]))
        augmentation = "mask"
    config = ColBERTConfig(**{
        "query_maxlen": int(settings.get("query_maxlen", 32)),
        "doc_maxlen": int(settings.get("doc_maxlen", 180)),
        "dim": int(linear_weight.shape[0]),
        "similarity": settings.get("similarity", "cosine"),
        "mask_punctuation": bool(settings.get("mask_punctuation", True)),
        "query_marker": markers[0], "doc_marker": markers[1], "augmentation_token": augmentation,
        **overrides})
    linear = torch.nn.Linear(linear_weight.shape[1], linear_weight.shape[0], bias=False)
    linear.weight.data.copy_(linear_weight.float())
    return cls(encoder, tokenizer, config, linear=linear, name_or_path=source)


def _read_weights(path: Path) -> dict:
    if (path / "model.safetensors").exists():
        return load_file(str(path / "model.safetensors"))
    if (path / "pytorch_model.bin").exists():
        return torch.load(path / "pytorch_model.bin", map_location="cpu", weights_only=True)
    raise ValueError(f"{path}: no model.safetensors or pytorch_model.bin")


def _strip(key: str) -> str:
    return key[len("module."):] if key.startswith("module.") else key
