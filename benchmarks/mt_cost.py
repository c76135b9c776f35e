"""What machine translation costs at query time: queries per second of the teacher pipeline
``MTQueryRewriter >> index.retriever()`` against the one-step student retriever on the same index, on CPU.

- MT models: real-size architectures written from the public ``config.json`` of Helsinki-NLP/opus-mt-ja-en
  (Marian: 6+6 layers, width 512, vocabulary 60,716; every opus-mt-*-en pair has this shape) and of
  facebook/nllb-200-distilled-600M (12+12 layers, width 1024, vocabulary 256,206), with random weights (no
  weights can be downloaded here), run through ``MTQueryRewriter`` and ``Seq2SeqTranslator`` with beam search.
- Tokens: the XLM-R SentencePiece vocabulary of the offline backbone stands in for both MT vocabularies (NLLB's is
  a 256k SentencePiece too): as an ``NllbTokenizer`` with the FLORES-200 codes for NLLB, and cut down to the pieces
  of the benchmark's questions for Marian so that its ids fit a 60,716-entry vocabulary (the same segmentation).
  Each query decodes as many tokens as a real translation: the XLM-R length of its human English translation,
  plus the end-of-sentence token (and NLLB's forced ``eng_Latn``), fixed with ``min_new_tokens = max_new_tokens``.
- Queries: XOR-TyDi's human question translations, ``--per-lang`` random questions in each of the 7 languages.
- Index: ``ColBERTIndex`` over the first ``--docs`` WordNet glosses of ``clirkd-mini/countries``, ColBERT on the
  offline backbone. The student has the teacher's architecture, so the one-step student is timed as the same
  retriever given the native question (the student's query encoder costs what the teacher's does).
- Latency: one query at a time (interactive search), after one warm-up query; QPS = 1 / mean latency.

Example::

    python benchmarks/mt_cost.py --per-lang 2 --docs 1000 --threads 1
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

import pandas as pd
import pyterrier as pt
import torch
import transformers
from tokenizers import Tokenizer

import pyterrier_clirkd as clirkd
from pyterrier_clirkd.datasets import xor_tydi_translations
from pyterrier_clirkd.offline import offline_model_path
from pyterrier_clirkd.translate import MTQueryRewriter, Seq2SeqTranslator

LANGS = ("ar", "bn", "fi", "ja", "ko", "ru", "te")
# Helsinki-NLP/opus-mt-ja-en config.json (token ids aside: this benchmark's tokenizer numbers its own specials)
MARIAN = dict(vocab_size=60716, d_model=512, encoder_layers=6, decoder_layers=6, encoder_attention_heads=8,
              decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048, activation_function="swish",
              max_position_embeddings=512, scale_embedding=True, share_encoder_decoder_embeddings=True)
# facebook/nllb-200-distilled-600M config.json
NLLB = dict(vocab_size=256206, d_model=1024, encoder_layers=12, decoder_layers=12, encoder_attention_heads=16,
            decoder_attention_heads=16, encoder_ffn_dim=4096, decoder_ffn_dim=4096, activation_function="relu",
            max_position_embeddings=1024, scale_embedding=True, pad_token_id=1, bos_token_id=0, eos_token_id=2,
            decoder_start_token_id=2)


def xor_queries(per_lang: int, seed: int) -> pd.DataFrame:
    """``per_lang`` random XOR-TyDi questions a language: qid, query (native), lang, query_en (human)."""
    frames = [xor_tydi_translations(lang).sample(per_lang, random_state=seed) for lang in LANGS]
    frame = pd.concat(frames, ignore_index=True)
    return frame.assign(qid=[f"{lang}-{i}" for i, lang in enumerate(frame["lang"])])[
        ["qid", "query", "lang", "query_en"]]


def random_model(model_class, config: transformers.PretrainedConfig, seed: int = 0) -> transformers.PreTrainedModel:
    """A model with uniform random weights (std ~0.03), allocated without the slow default initialisation."""
    with torch.device("meta"):
        model = model_class(config)
    model.to_empty(device="cpu")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in itertools.chain(model.parameters(), model.buffers()):
            if tensor.is_floating_point():
                tensor.uniform_(-0.05, 0.05, generator=generator)
    model.tie_weights()
    return model.eval()


def marian_tokenizer(xlmr, texts: list[str], size: int) -> transformers.PreTrainedTokenizerFast:
    """XLM-R's unigram model cut to ``size`` pieces: the specials, every piece ``texts`` use, and the most frequent
    others (SentencePiece numbers pieces by score), renumbered from 0, with Marian's ``text </s>`` template. The best
    segmentation of ``texts`` only uses kept pieces, so it is unchanged."""
    spec = json.loads(xlmr.backend_tokenizer.to_str())
    needed = {i for text in texts for i in xlmr(text)["input_ids"]} | set(xlmr.all_special_ids)
    if len(needed) > size:
        raise ValueError(f"the texts use {len(needed)} pieces, more than a {size}-entry vocabulary")
    others = (i for i in range(len(spec["model"]["vocab"])) if i not in needed)
    used = sorted(needed | set(itertools.islice(others, size - len(needed))))
    renumber = {old: new for new, old in enumerate(used)}
    spec["model"]["vocab"] = [spec["model"]["vocab"][i] for i in used]
    spec["model"]["unk_id"] = renumber[spec["model"]["unk_id"]]
    for token in spec["added_tokens"]:
        token["id"] = renumber[token["id"]]
    eos = xlmr.eos_token
    text, end = {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": eos, "type_id": 0}}
    spec["post_processor"] = {
        "type": "TemplateProcessing", "single": [text, end],
        "pair": [text, {"Sequence": {"id": "B", "type_id": 0}}, end],
        "special_tokens": {eos: {"id": eos, "ids": [renumber[xlmr.eos_token_id]], "tokens": [eos]}}}
    return transformers.PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(spec)), eos_token=eos,
                                                pad_token=xlmr.pad_token, unk_token=xlmr.unk_token)


def marian_translator(xlmr, texts: list[str], num_beams: int) -> Seq2SeqTranslator:
    tokenizer = marian_tokenizer(xlmr, texts, MARIAN["vocab_size"])
    pad = tokenizer.pad_token_id  # Marian starts decoding with its pad token
    config = transformers.MarianConfig(**MARIAN, pad_token_id=pad, decoder_start_token_id=pad,
                                       eos_token_id=tokenizer.eos_token_id)
    return Seq2SeqTranslator(random_model(transformers.MarianMTModel, config), tokenizer,
                             name="opus-mt-xx-en (random)", num_beams=num_beams, cache=False, verbose=False)


def nllb_translator(xlmr, num_beams: int) -> Seq2SeqTranslator:
    tokenizer = transformers.NllbTokenizer(tokenizer_object=xlmr.backend_tokenizer)
    model = random_model(transformers.M2M100ForConditionalGeneration, transformers.M2M100Config(**NLLB))
    return Seq2SeqTranslator(model, tokenizer, name="nllb-200-distilled-600M (random)", num_beams=num_beams,
                             cache=False, verbose=False)


def latencies(systems: dict[str, tuple[pt.Transformer, pd.DataFrame, Optional[Callable[[int], None]]]],
              n_queries: int) -> dict[str, list[float]]:
    """Seconds per query of each system ``{label: (transformer, queries, before(i))}``, one query at a time,
    the systems taking turns on each query (so that a change of load on the machine hits them alike), after an
    untimed warm-up round on the first query."""
    times: dict[str, list[float]] = {label: [] for label in systems}
    for round_number, i in enumerate([0] + list(range(n_queries))):
        for label, (system, frame, before) in systems.items():
            if before is not None:
                before(i)
            start = time.perf_counter()
            system(frame.iloc[[i]])
            if round_number:
                times[label].append(time.perf_counter() - start)
    return times


def fixed_length(translator: Seq2SeqTranslator, lengths: list[int]) -> Callable[[int], None]:
    """Makes the translator decode exactly ``lengths[i]`` tokens for query i."""
    def set_length(i: int) -> None:
        translator.max_new_tokens = lengths[i]
        translator.generate_kwargs = {"min_new_tokens": lengths[i]}
    return set_length


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-lang", type=int, default=2, help="questions per language (7 languages)")
    parser.add_argument("--docs", type=int, default=1000, help="WordNet glosses in the index")
    parser.add_argument("--num-beams", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()

    queries = xor_queries(args.per_lang, args.seed)
    xlmr = transformers.AutoTokenizer.from_pretrained(str(offline_model_path(verbose=False)))
    english_tokens = [len(xlmr(text, add_special_tokens=False)["input_ids"]) for text in queries["query_en"]]
    native_tokens = [len(xlmr(text, add_special_tokens=False)["input_ids"]) for text in queries["query"]]
    print(f"{len(queries)} XOR-TyDi questions ({args.per_lang} in each of {', '.join(LANGS)}); XLM-R tokens: native "
          f"mean {statistics.mean(native_tokens):.1f}, English translation mean {statistics.mean(english_tokens):.1f}; "
          f"{args.threads} CPU thread(s), beam {args.num_beams}; load average {os.getloadavg()[0]:.1f}")

    started = time.perf_counter()
    model = clirkd.ColBERT.from_pretrained("offline:me5-small", device="cpu")
    docs = itertools.islice(pt.get_dataset("irds:clirkd-mini/countries").get_corpus_iter(verbose=False), args.docs)
    with tempfile.TemporaryDirectory() as tmp:
        index = clirkd.ColBERTIndex(Path(tmp) / "glosses.colbert", model, verbose=False).index(docs)
        retriever = index.retriever()
        print(f"index: {len(index)} passages in {time.perf_counter() - started:.0f} s")
        native, english = queries[["qid", "query", "lang"]], queries[["qid", "query_en", "lang"]].rename(
            columns={"query_en": "query"})
        marian = marian_translator(xlmr, list(queries["query"]) + list(queries["query_en"]), args.num_beams)
        nllb = nllb_translator(xlmr, args.num_beams)
        times = latencies({
            "student: retriever, native question": (retriever, native, None),
            "retriever, human English translation": (retriever, english, None),
            # decode the English length, + </s> (+ NLLB's forced eng_Latn)
            "Marian opus-mt >> retriever": (MTQueryRewriter(marian) >> retriever, native,
                                            fixed_length(marian, [n + 1 for n in english_tokens])),
            "NLLB-200 600M >> retriever": (MTQueryRewriter(nllb) >> retriever, native,
                                           fixed_length(nllb, [n + 2 for n in english_tokens])),
        }, len(queries))

    print(f"\n{'system':40} {'mean ms':>9} {'median ms':>10} {'QPS':>7}")
    for label, seconds in times.items():
        print(f"{label:40} {1000 * statistics.mean(seconds):9.1f} {1000 * statistics.median(seconds):10.1f} "
              f"{1 / statistics.mean(seconds):7.2f}")
    student = statistics.mean(times["student: retriever, native question"])
    english = statistics.mean(times["retriever, human English translation"])
    for label in ("Marian opus-mt >> retriever", "NLLB-200 600M >> retriever"):
        pipeline = statistics.mean(times[label])
        print(f"{label}: student QPS / pipeline QPS = {pipeline / student:.1f} "
              f"(MT alone about {1000 * (pipeline - english):.0f} ms a query)")
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
