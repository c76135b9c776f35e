"""ColBERTConfig: every setting that changes a ColBERT model's vectors or scores."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Optional

CONFIG_NAME = "colbert_config.json"
SIMILARITIES = ("cosine", "l2")


@dataclasses.dataclass
class ColBERTConfig:
    """Settings of a ColBERT model, saved beside the weights as ``colbert_config.json``.

    Example::

        config = ColBERTConfig(query_maxlen=32, doc_maxlen=180, dim=128)
        config.save("ckpt/")
        assert ColBERTConfig.load("ckpt/") == config
    """

    query_maxlen: int = 32
    doc_maxlen: int = 180
    dim: int = 128
    similarity: str = "cosine"
    mask_punctuation: bool = True
    query_marker: str = "[Q]"
    doc_marker: str = "[D]"
    #: pad queries to ``query_maxlen`` with an augmentation token that is encoded and scored (ColBERT's query
    #: augmentation); off, padding positions score nothing (for encoders never trained with it, e.g. the offline one)
    query_augmentation: bool = True
    #: token that pads queries to ``query_maxlen`` (query augmentation): "pad" (XLM-R, as PrimeQA) or "mask" (BERT)
    augmentation_token: str = "pad"
    #: fingerprint of the model whose passage vectors this model's queries are trained to search (None: its own)
    passage_fingerprint: Optional[str] = None

    def __post_init__(self):
        if self.similarity not in SIMILARITIES:
            raise ValueError(f"similarity must be one of {SIMILARITIES}, not {self.similarity!r}")
        if self.augmentation_token not in ("pad", "mask"):
            raise ValueError(f"augmentation_token must be 'pad' or 'mask', not {self.augmentation_token!r}")
        for name in ("query_maxlen", "doc_maxlen", "dim"):
            if int(getattr(self, name)) < (4 if name.endswith("maxlen") else 1):
                raise ValueError(f"{name} is too small: {getattr(self, name)}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, folder: str | Path) -> None:
        self.save_to_file(Path(folder, CONFIG_NAME))

    def save_to_file(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, folder: str | Path) -> "ColBERTConfig":
        data = json.loads(Path(folder, CONFIG_NAME).read_text())
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{Path(folder, CONFIG_NAME)}: unknown settings {unknown}; written by a newer pyterrier-clirkd?")
        return cls(**data)
