"""ColBERT (late interaction) over any Hugging Face encoder: markers, query augmentation, projection, MaxSim."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import unicodedata
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np
import torch
import transformers
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from .config import CONFIG_NAME, ColBERTConfig

HEAD_NAME = "colbert_linear.safetensors"

# Marker tokens already in the vocabulary: BERT's unused slots (Stanford ColBERT), or for the XLM-R vocabulary the two
# rare symbols that PrimeQA's XLM-R ColBERT (DR.DECR) meant to use. PrimeQA's code feeds their code points (9748,
# 9749) as token ids, which are other pieces; imported PrimeQA checkpoints keep those ids (checkpoint_import.py).
BERT_MARKERS = ("[unused0]", "[unused1]")
XLMR_MARKERS = ("\u2614", "\u2615")  # umbrella with rain drops, hot beverage: ids 246260, 245281 in XLM-R


def maxsim(Q: torch.Tensor, D: torch.Tensor, D_mask: Optional[torch.Tensor] = None,
           similarity: str = "cosine") -> torch.Tensor:
    """Late-interaction score: for each query token the best passage token, summed over query tokens.

    ``Q`` is ``[..., Lq, dim]``, ``D`` is ``[..., Ld, dim]`` and ``D_mask`` ``[..., Ld]`` (True for tokens that count);
    leading dimensions broadcast, so ``maxsim(Q[:, None], D[None], mask[None])`` scores every query against every passage.

    Example::

        scores = maxsim(model.encode_query_batch(["who wrote hamlet"]), *model.encode_doc_batch(["Hamlet is a play"]))
    """
    if similarity == "cosine":
        sim = Q @ D.transpose(-1, -2)
    elif similarity == "l2":
        sim = -(Q.pow(2).sum(-1, keepdim=True) + D.pow(2).sum(-1).unsqueeze(-2) - 2 * Q @ D.transpose(-1, -2))
    else:
        raise ValueError(f"similarity must be 'cosine' or 'l2', not {similarity!r}")
    if D_mask is not None:
        sim = sim.masked_fill(~D_mask.bool().unsqueeze(-2), float("-inf"))
    best = sim.max(-1).values
    # a passage with no scoring token contributes nothing rather than -inf
    return best.masked_fill(torch.isinf(best), 0.0).sum(-1)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def punctuation_ids(tokenizer) -> set[int]:
    """Ids of vocabulary entries that are punctuation only (after removing word-boundary markers like "▁" and "##")."""
    ids = set()
    for piece, idx in tokenizer.get_vocab().items():
        core = piece.replace("\u2581", "").replace("##", "").replace("\u0120", "")
        if core and all(unicodedata.category(ch).startswith("P") for ch in core):
            ids.add(idx)
    return ids


class ColBERT(torch.nn.Module):
    """ColBERT: a Hugging Face encoder, a linear projection to ``config.dim`` and L2 normalisation, scored by MaxSim.

    Example::

        model = ColBERT.from_pretrained("offline:me5-small")        # or "xlm-roberta-base", or a saved folder
        Q = model.encode_queries(["Wer schrieb Hamlet?"])           # [1, query_maxlen, dim]
        D = model.encode_docs(["Hamlet is a tragedy by Shakespeare."])  # list of [tokens, dim]
        pipeline = model.query_encoder() >> ...
        model.save_pretrained("ckpt/")
    """

    def __init__(self, encoder: transformers.PreTrainedModel, tokenizer, config: ColBERTConfig,
                 linear: Optional[torch.nn.Linear] = None, name_or_path: Optional[str] = None):
        super().__init__()
        if getattr(encoder, "pooler", None) is not None:
            encoder.pooler = None  # unused by ColBERT; dropped so it neither trains, saves, nor enters the fingerprint
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.config = config
        self.linear = linear if linear is not None else torch.nn.Linear(encoder.config.hidden_size, config.dim, bias=False)
        if self.linear.in_features != encoder.config.hidden_size or self.linear.out_features != config.dim:
            raise ValueError(f"projection is {self.linear.in_features}->{self.linear.out_features}, but the encoder has "
                             f"hidden size {encoder.config.hidden_size} and config.dim is {config.dim}")
        self.name_or_path = name_or_path
        vocab = tokenizer.get_vocab()
        for marker in (config.query_marker, config.doc_marker):
            if marker not in vocab:
                raise ValueError(f"marker token {marker!r} is not in the tokenizer's vocabulary")
        self.query_marker_id = vocab[config.query_marker]
        self.doc_marker_id = vocab[config.doc_marker]
        self.cls_id = _first_not_none(tokenizer.cls_token_id, tokenizer.bos_token_id)
        self.sep_id = _first_not_none(tokenizer.sep_token_id, tokenizer.eos_token_id)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        if config.augmentation_token == "mask":
            if tokenizer.mask_token_id is None:
                raise ValueError("augmentation_token='mask' but the tokenizer has no mask token")
            self.augment_id = tokenizer.mask_token_id
        else:
            self.augment_id = self.pad_id
        skip = punctuation_ids(tokenizer) if config.mask_punctuation else set()
        self.register_buffer("_skiplist", torch.tensor(sorted(skip), dtype=torch.long), persistent=False)

    # ------------------------------------------------------------------ construction, saving, loading
    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, *, device: Optional[str | torch.device] = None,
                        backbone: Optional[str] = None, **config_overrides) -> "ColBERT":
        """Load a ColBERT model.

        ``name_or_path`` may be a folder written by :meth:`save_pretrained`; ``"offline:me5-small"`` (the bundled
        backbone); a Stanford ColBERTv2 / PrimeQA folder (weights with ``linear.weight`` and ``artifact.metadata``);
        a ColBERT v1 ``.dnn`` file (``model_state_dict``; its encoder architecture comes from ``backbone`` or the
        checkpoint's own arguments); or any Hugging Face encoder id or folder, which gets a new projection head.
        ``config_overrides`` (``dim``, ``query_maxlen``, ...) apply to new heads and to settings that do not
        change the weights (``query_maxlen``, ``doc_maxlen``).

        Example::

            model = ColBERT.from_pretrained("xlm-roberta-base", dim=128)
            student = ColBERT.from_pretrained("runs/student/")
        """
        from . import checkpoint_import  # imports only on demand: knows Stanford / v1 layouts
        from .offline import OFFLINE_PREFIX

        source = str(name_or_path)
        if source.startswith(OFFLINE_PREFIX):
            return cls._from_offline(source, device=device, **config_overrides)
        path = Path(source)
        checkpoint = None  # a folder that from_pretrained(source) reloads as this model (a new head would differ)
        if path.is_dir() and (path / CONFIG_NAME).exists():
            model, checkpoint = cls._from_clirkd_folder(path, **config_overrides), path
        elif path.is_dir() and (path / "artifact.metadata").exists():
            model, checkpoint = checkpoint_import.from_stanford_folder(cls, path, **config_overrides), path
        elif path.is_file() and path.suffix == ".dnn":
            model = checkpoint_import.from_colbert_v1(cls, path, backbone=backbone, **config_overrides)
        elif path.is_file():
            raise ValueError(f"{source}: not a ColBERT checkpoint (expected a folder, or a ColBERT v1 .dnn file)")
        else:
            model = cls.from_encoder(source, **config_overrides)
        model.name_or_path = source
        if checkpoint is not None:
            model._remember_source(checkpoint)
        return model.to(device if device is not None else default_device()).eval()

    @classmethod
    def from_encoder(cls, name_or_path: str, **config_overrides) -> "ColBERT":
        """A new ColBERT on a Hugging Face encoder (hub id or folder), with a freshly initialised projection head."""
        tokenizer = load_tokenizer(name_or_path)
        with _quiet_transformers():
            encoder = transformers.AutoModel.from_pretrained(name_or_path)
        vocab = tokenizer.get_vocab()
        settings = dict(config_overrides)
        if all(m in vocab for m in BERT_MARKERS):
            settings.setdefault("query_marker", BERT_MARKERS[0])
            settings.setdefault("doc_marker", BERT_MARKERS[1])
            settings.setdefault("augmentation_token", "mask")
        elif all(m in vocab for m in XLMR_MARKERS):
            settings.setdefault("query_marker", XLMR_MARKERS[0])
            settings.setdefault("doc_marker", XLMR_MARKERS[1])
        config = ColBERTConfig(**settings)
        added = tokenizer.add_tokens([m for m in (config.query_marker, config.doc_marker) if m not in vocab],
                                     special_tokens=True)
        if added:
            encoder.resize_token_embeddings(len(tokenizer))
        return cls(encoder, tokenizer, config, name_or_path=name_or_path)

    @classmethod
    def _from_clirkd_folder(cls, path: Path, **config_overrides) -> "ColBERT":
        config = ColBERTConfig.load(path)
        weight_settings = {"dim", "similarity", "query_marker", "doc_marker", "passage_fingerprint"}
        changed = weight_settings & {k for k, v in config_overrides.items() if getattr(config, k) != v}
        if changed:
            raise ValueError(f"{path}: cannot override {sorted(changed)} of a trained ColBERT checkpoint")
        config = ColBERTConfig(**{**config.to_dict(), **config_overrides})
        tokenizer = load_tokenizer(path)
        with _quiet_transformers():
            encoder = transformers.AutoModel.from_pretrained(path)
        head = load_file(str(path / HEAD_NAME))
        linear = torch.nn.Linear(encoder.config.hidden_size, config.dim, bias=False)
        linear.weight.data.copy_(head["weight"])
        return cls(encoder, tokenizer, config, linear=linear)

    @classmethod
    def _from_offline(cls, name: str, device=None, **config_overrides) -> "ColBERT":
        """The bundled backbone with a PCA-initialised head, made once and cached beside the converted weights."""
        from .offline import resolve_offline
        from .projection import pca_head_folder

        folder = pca_head_folder(Path(resolve_offline(name)), cls)
        model = cls._from_clirkd_folder(folder, **config_overrides)
        model.name_or_path = name
        model._remember_source(folder)
        return model.to(device if device is not None else default_device()).eval()

    def save_pretrained(self, path: str | os.PathLike) -> None:
        """Write a Hugging Face style folder: encoder config + safetensors, tokenizer, ``colbert_config.json`` and
        the projection head. The folder is written atomically (a temporary folder, then a rename).

        Example::

            model.save_pretrained("ckpt/")
            same = ColBERT.from_pretrained("ckpt/")
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
        try:
            with _quiet_transformers():
                self.encoder.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
            save_file({"weight": self.linear.weight.detach().float().cpu().contiguous()}, str(tmp / HEAD_NAME))
            self.config.save(tmp)  # written last: its presence marks a complete checkpoint
            if path.exists():
                backup = path.with_name(f".{path.name}.old-{os.getpid()}")
                os.replace(path, backup)
                os.replace(tmp, path)
                shutil.rmtree(backup)
            else:
                os.replace(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    # ------------------------------------------------------------------ identity
    def fingerprint(self) -> str:
        """A short hash of the settings and weights that determine this model's vectors (for index compatibility)."""
        h = hashlib.sha256(json.dumps({k: v for k, v in self.config.to_dict().items() if k != "passage_fingerprint"},
                                      sort_keys=True).encode())
        for name, tensor in sorted(self.state_dict().items()):
            flat = tensor.detach().reshape(-1)
            sample = flat[:: max(1, flat.numel() // 4096)].float().cpu().numpy()
            h.update(name.encode())
            h.update(np.round(sample, 4).tobytes())
        return h.hexdigest()[:16]

    def _remember_source(self, folder: Path) -> None:
        """Note what was just loaded from ``folder`` (the weights' fingerprint, the files' sizes and times), so that
        :meth:`reloads_as_loaded` can tell later, without loading it again, whether it would still give this model."""
        self._source = (self.name_or_path, self.fingerprint(), _files_signature(folder), folder)

    def reloads_as_loaded(self) -> bool:
        """Whether ``ColBERT.from_pretrained(self.name_or_path)`` gives back this very model: it was loaded from a
        checkpoint folder (or is the bundled backbone), and neither its weights and settings in memory nor the
        folder's files have changed since (so an index can name it instead of keeping a copy).

        Example::

            model = ColBERT.from_pretrained("runs/student/")
            model.reloads_as_loaded()          # True, until it is trained further or the folder is rewritten
        """
        source = getattr(self, "_source", None)
        if source is None:
            return False
        name, fingerprint, signature, folder = source
        return name == self.name_or_path and fingerprint == self.fingerprint() and signature == _files_signature(folder)

    def passage_fingerprint(self) -> str:
        """Fingerprint of the model whose passage vectors this model's queries are meant to search."""
        return self.config.passage_fingerprint or self.fingerprint()

    @property
    def device(self) -> torch.device:
        return self.linear.weight.device

    def __repr__(self) -> str:
        return f"ColBERT.from_pretrained({self.name_or_path!r})" if self.name_or_path else "ColBERT(...)"

    # ------------------------------------------------------------------ tokenisation
    def _check_texts(self, texts: Sequence) -> list[str]:
        texts = list(texts)
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
        if bad:
            raise TypeError(f"expected strings, but {len(bad)} of {len(texts)} values are not "
                            f"(first at position {bad[0]}: {texts[bad[0]]!r})")
        return texts

    def _token_ids(self, texts: Sequence[str], room: int) -> list[list[int]]:
        return self.tokenizer(self._check_texts(texts), add_special_tokens=False, truncation=True,
                              max_length=room)["input_ids"]

    def tokenize_queries(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """``[CLS] [Q] tokens [SEP]`` padded to ``query_maxlen`` with the augmentation token (encoded and scored,
        but not attended to by the real tokens, as in ColBERT)."""
        n = self.config.query_maxlen
        ids = torch.full((len(texts), n), self.augment_id, dtype=torch.long)
        mask = torch.zeros((len(texts), n), dtype=torch.long)
        for row, toks in enumerate(self._token_ids(texts, n - 3)):
            seq = [self.cls_id, self.query_marker_id, *toks, self.sep_id]
            ids[row, :len(seq)] = torch.tensor(seq)
            mask[row, :len(seq)] = 1
        return {"input_ids": ids, "attention_mask": mask}

    def tokenize_docs(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """``[CLS] [D] tokens [SEP]`` truncated to ``doc_maxlen``, padded to the longest in the batch."""
        seqs = [[self.cls_id, self.doc_marker_id, *toks, self.sep_id]
                for toks in self._token_ids(texts, self.config.doc_maxlen - 3)]
        width = max((len(s) for s in seqs), default=0)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, seq in enumerate(seqs):
            ids[row, :len(seq)] = torch.tensor(seq)
            mask[row, :len(seq)] = 1
        return {"input_ids": ids, "attention_mask": mask}

    def query_mask(self, attention_mask: torch.Tensor) -> torch.Tensor:
        """True for query positions that take part in scoring: all of them with query augmentation, else the real
        tokens only."""
        if self.config.query_augmentation:
            return torch.ones_like(attention_mask, dtype=torch.bool)
        return attention_mask.bool()

    def doc_mask(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """True for passage tokens that take part in scoring: not padding, not punctuation."""
        keep = attention_mask.bool()
        if self._skiplist.numel():
            keep = keep & ~torch.isin(input_ids, self._skiplist.to(input_ids.device))
        return keep

    # ------------------------------------------------------------------ encoding
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Token vectors ``[batch, length, dim]``: encoder, projection, then L2 normalisation."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return torch.nn.functional.normalize(self.linear(hidden), p=2, dim=-1)

    def encode_query_batch(self, texts: Sequence[str]) -> torch.Tensor:
        """Query vectors ``[batch, query_maxlen, dim]`` with gradients (training); positions that do not score
        (padding without query augmentation) are zero vectors."""
        batch = {k: v.to(self.device) for k, v in self.tokenize_queries(texts).items()}
        return self(**batch) * self.query_mask(batch["attention_mask"]).unsqueeze(-1)

    def encode_doc_batch(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Passage vectors ``[batch, length, dim]`` and their scoring mask ``[batch, length]``, with gradients."""
        batch = {k: v.to(self.device) for k, v in self.tokenize_docs(texts).items()}
        return self(**batch), self.doc_mask(**batch)

    def score(self, queries: Sequence[str], docs: Sequence[str]) -> torch.Tensor:
        """MaxSim score of each (query, passage) pair, with gradients (training)."""
        D, mask = self.encode_doc_batch(docs)
        return maxsim(self.encode_query_batch(queries), D, mask, self.config.similarity)

    def encode_queries(self, texts: Sequence[str], batch_size: int = 64, verbose: bool = False,
                       return_ids: bool = False):
        """Query vectors as a float32 array ``[n, query_maxlen, dim]`` (and the token ids if ``return_ids``)."""
        texts = self._check_texts(texts)
        vecs = np.zeros((len(texts), self.config.query_maxlen, self.config.dim), dtype=np.float32)
        ids = np.zeros((len(texts), self.config.query_maxlen), dtype=np.int64)
        for order, batch in self._batches(texts, batch_size, verbose, "queries"):
            tok = self.tokenize_queries(batch)
            vecs[order] = self._infer(tok) * self.query_mask(tok["attention_mask"]).unsqueeze(-1).numpy()
            ids[order] = tok["input_ids"].numpy()
        return (vecs, ids) if return_ids else vecs

    def encode_docs(self, texts: Sequence[str], batch_size: int = 64, verbose: bool = False,
                    return_ids: bool = False):
        """Passage vectors: a list of float32 arrays ``[tokens, dim]``, punctuation and padding removed
        (and the kept token ids if ``return_ids``)."""
        texts = self._check_texts(texts)
        vecs: list = [None] * len(texts)
        ids: list = [None] * len(texts)
        for order, batch in self._batches(texts, batch_size, verbose, "passages"):
            tok = self.tokenize_docs(batch)
            out = self._infer(tok)
            keep = self.doc_mask(**tok).numpy()
            for row, i in enumerate(order):
                vecs[i] = out[row][keep[row]]
                ids[i] = tok["input_ids"][row].numpy()[keep[row]]
        return (vecs, ids) if return_ids else vecs

    def _batches(self, texts: list[str], batch_size: int, verbose: bool, what: str):
        """Batches of texts sorted by length (little padding), with their original positions."""
        order = np.argsort([-len(t) for t in texts], kind="stable")
        starts = range(0, len(texts), batch_size)
        for start in tqdm(starts, desc=f"encoding {what}", unit="batch", disable=not verbose or len(starts) < 2):
            idx = order[start:start + batch_size]
            yield idx, [texts[i] for i in idx]

    @torch.inference_mode()
    def _infer(self, tokenized: dict[str, torch.Tensor]) -> np.ndarray:
        batch = {k: v.to(self.device) for k, v in tokenized.items()}
        with _autocast(self.device):
            out = self(**batch)
        return out.float().cpu().numpy()

    # ------------------------------------------------------------------ PyTerrier transformers
    def query_encoder(self, batch_size: int = 64, verbose: bool = False):
        """Q -> Q + ``query_toks``, ``query_embs``. Example: ``model.query_encoder()(pd.DataFrame(...))``."""
        from .encoders import ColBERTQueryEncoder
        return ColBERTQueryEncoder(self, batch_size=batch_size, verbose=verbose)

    def doc_encoder(self, batch_size: int = 64, verbose: bool = False, text_field: str = "text"):
        """D -> D + ``doc_toks``, ``doc_embs`` (punctuation and padding removed)."""
        from .encoders import ColBERTDocEncoder
        return ColBERTDocEncoder(self, batch_size=batch_size, verbose=verbose, text_field=text_field)

    def text_scorer(self, batch_size: int = 64, verbose: bool = False, text_field: str = "text"):
        """R (with passage text) -> R re-scored by MaxSim and re-ranked."""
        from .encoders import ColBERTTextScorer
        return ColBERTTextScorer(self, batch_size=batch_size, verbose=verbose, text_field=text_field)


def _files_signature(folder: Path) -> list[tuple[str, int, int]]:
    """(name, size, modification time) of the files in ``folder``: changes when any of them is rewritten."""
    stats = [(f.name, f.stat()) for f in folder.iterdir() if f.is_file()]
    return sorted((name, stat.st_size, stat.st_mtime_ns) for name, stat in stats)


def load_tokenizer(name_or_path: str | os.PathLike):
    """The fast tokenizer of a Hugging Face model, with a clear error when it cannot be found."""
    try:
        return transformers.AutoTokenizer.from_pretrained(str(name_or_path))
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot load a tokenizer for {str(name_or_path)!r}: not a local model folder, not "
                         f"'offline:me5-small', and not reachable on the Hugging Face hub ({e})") from None


def _first_not_none(*values):
    return next(v for v in values if v is not None)


def _autocast(device: torch.device):
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


@contextlib.contextmanager
def _quiet_transformers():
    """Silence transformers' load report (e.g. an unused pooler) and its per-file progress bars."""
    level = transformers.logging.get_verbosity()
    bars = transformers.utils.logging.is_progress_bar_enabled()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(level)
        if bars:
            transformers.utils.logging.enable_progress_bar()
