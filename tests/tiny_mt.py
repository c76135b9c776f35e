"""Tiny random translation models of the four Hugging Face MT families, with tokenizers built offline.

Each builder writes a model folder (random weights, a real tokenizer class of that family) that
``AutoTokenizer`` / ``AutoModelForSeq2SeqLM`` load like a hub model:

- NLLB-200: ``NllbTokenizer`` over a character-level BPE; ``M2M100ForConditionalGeneration``;
- mBART-50: ``MBart50Tokenizer`` over a character-level unigram; ``MBartForConditionalGeneration``;
- M2M100: ``M2M100Tokenizer`` over a SentencePiece model (needs ``sentencepiece``); M2M100 model;
- Marian: ``MarianTokenizer`` over a SentencePiece model (needs ``sentencepiece``); ``MarianMTModel``.
"""
from __future__ import annotations

import collections
import io
import json
import math
from pathlib import Path

import torch
import transformers

XOR_TRANSLATIONS = Path("/work/shared/data/xor-tydi/translations")
TINY = dict(d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
            encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=64,
            init_std=0.5)  # large random weights: the output depends visibly on the input
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]


def corpus(langs=("ja", "ru", "ar", "ko", "fi"), lines_per_lang: int = 60) -> list[str]:
    """The first lines of XOR-TyDi's human translations: questions in ``langs`` and their English versions."""
    lines = []
    for lang in langs:
        for name in (lang, "en"):
            text = (XOR_TRANSLATIONS / f"{lang}-en" / f"{name}.txt").read_text(encoding="utf-8")
            lines += text.split("\n")[:lines_per_lang]
    return [line for line in lines if line.strip()]


def _characters(lines: list[str]) -> list[tuple[str, float]]:
    """Each character of ``lines``, with ``▁`` for a word's start, and its log frequency: most frequent first, ties
    in code-point order. Built here because the ``tokenizers`` trainers break ties in a hash map's order, so their
    vocabularies, and with them the random models' outputs, changed from process to process."""
    counts = collections.Counter(char for line in lines for word in line.split() for char in "▁" + word)
    total = sum(counts.values())
    return [(char, math.log(n / total)) for char, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]


def _save(model: transformers.PreTrainedModel, tokenizer, folder: Path) -> Path:
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def nllb_folder(folder: Path, lines: list[str], seed: int = 0) -> Path:
    vocab = {token: i for i, token in enumerate(SPECIALS + [char for char, _ in _characters(lines)])}
    tokenizer = transformers.NllbTokenizer(vocab=vocab, merges=[])
    torch.manual_seed(seed)
    config = transformers.M2M100Config(vocab_size=len(tokenizer), pad_token_id=1, bos_token_id=0, eos_token_id=2,
                                       decoder_start_token_id=2, scale_embedding=True, **TINY)
    return _save(transformers.M2M100ForConditionalGeneration(config), tokenizer, folder)


def mbart50_folder(folder: Path, lines: list[str], seed: int = 0) -> Path:
    vocab = [(special, 0.0) for special in ("<unk>", "<s>", "</s>")] + _characters(lines)
    tokenizer = transformers.MBart50Tokenizer(vocab=vocab)
    torch.manual_seed(seed)
    config = transformers.MBartConfig(vocab_size=len(tokenizer), pad_token_id=1, bos_token_id=0, eos_token_id=2,
                                      decoder_start_token_id=2, **TINY)
    return _save(transformers.MBartForConditionalGeneration(config), tokenizer, folder)


def _sentencepiece_pieces(lines: list[str], folder: Path) -> tuple[Path, list[str]]:
    import sentencepiece

    buffer = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=buffer, vocab_size=800,
                                             hard_vocab_limit=False, character_coverage=0.98, minloglevel=2)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spm.model"
    path.write_bytes(buffer.getvalue())
    processor = sentencepiece.SentencePieceProcessor(model_proto=buffer.getvalue())
    return path, [processor.id_to_piece(i) for i in range(processor.get_piece_size())]


def m2m100_folder(folder: Path, lines: list[str], seed: int = 0) -> Path:
    spm, pieces = _sentencepiece_pieces(lines, folder.with_name(folder.name + "-spm"))
    vocab = {piece: i for i, piece in enumerate(SPECIALS + [p for p in pieces if p not in SPECIALS])}
    vocab_file = spm.with_name("vocab.json")
    vocab_file.write_text(json.dumps(vocab), encoding="utf-8")
    tokenizer = transformers.M2M100Tokenizer(str(vocab_file), str(spm))
    torch.manual_seed(seed)
    size = max(tokenizer.lang_code_to_id.values()) + 1 + tokenizer.num_madeup_words
    config = transformers.M2M100Config(vocab_size=size, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                                       decoder_start_token_id=2, scale_embedding=True, **TINY)
    return _save(transformers.M2M100ForConditionalGeneration(config), tokenizer, folder)


def marian_folder(folder: Path, lines: list[str], source_lang: str, seed: int = 0) -> Path:
    """A Marian ``{source_lang}-en`` pair (as ``Helsinki-NLP/opus-mt-{source_lang}-en``): ``</s>`` = 0, pad last."""
    spm, pieces = _sentencepiece_pieces(lines, folder.with_name(folder.name + "-spm"))
    vocab = {"</s>": 0, "<unk>": 1}
    for piece in pieces:
        if piece not in ("<s>", "<pad>"):
            vocab.setdefault(piece, len(vocab))
    vocab["<pad>"] = pad = len(vocab)
    vocab_file = spm.with_name("vocab.json")
    vocab_file.write_text(json.dumps(vocab), encoding="utf-8")
    tokenizer = transformers.MarianTokenizer(str(spm), str(spm), str(vocab_file), source_lang=source_lang,
                                             target_lang="en")
    torch.manual_seed(seed)
    config = transformers.MarianConfig(vocab_size=len(vocab), pad_token_id=pad, eos_token_id=0,
                                       decoder_start_token_id=pad, **TINY)
    return _save(transformers.MarianMTModel(config), tokenizer, folder)
