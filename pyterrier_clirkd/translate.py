"""Query translation as a PyTerrier stage: ``MTQueryRewriter`` (Q -> Q) and the translators behind it.

The rewriter sets ``query`` to the English translation and keeps the original in ``query_0``
(``pt.model.push_queries``); ``lang`` and every other column stay. A translator turns texts of one source
language into English: :class:`Seq2SeqTranslator` runs a Hugging Face seq2seq MT model (Marian opus-mt,
NLLB-200, M2M100, mBART-50), :class:`PerLanguageTranslator` routes each language to its own translator (one
opus-mt model per language pair), :class:`TableTranslator` looks translations up (human ones, or MT output
computed elsewhere).

Example::

    import pyterrier_clirkd as clirkd
    mt = clirkd.MTQueryRewriter.from_pretrained("facebook/nllb-200-distilled-600M", cache="mt-cache.sqlite")
    mt = clirkd.MTQueryRewriter.from_pretrained({"ja": "Helsinki-NLP/opus-mt-ja-en",
                                                 "ru": "Helsinki-NLP/opus-mt-ru-en"})
    mt = clirkd.MTQueryRewriter.from_table(topics, key="qid")      # topics with a query_en column
    pipeline = mt >> english_index.retriever()
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Optional, Protocol, Sequence

import pandas as pd
import pyterrier as pt
import torch
import transformers
from tqdm.auto import tqdm

from .datasets.common import open_text, read_line_pairs
from .model import default_device

ENGLISH = "en"

# ISO 639-1 -> the FLORES-200 code that NLLB-200 uses (the macrolanguages map to NLLB's standard variety).
NLLB_CODES = {
    "af": "afr_Latn", "am": "amh_Ethi", "ar": "arb_Arab", "az": "azj_Latn", "be": "bel_Cyrl", "bg": "bul_Cyrl",
    "bn": "ben_Beng", "bs": "bos_Latn", "ca": "cat_Latn", "cs": "ces_Latn", "cy": "cym_Latn", "da": "dan_Latn",
    "de": "deu_Latn", "el": "ell_Grek", "en": "eng_Latn", "es": "spa_Latn", "et": "est_Latn", "eu": "eus_Latn",
    "fa": "pes_Arab", "fi": "fin_Latn", "fr": "fra_Latn", "ga": "gle_Latn", "gl": "glg_Latn", "gu": "guj_Gujr",
    "ha": "hau_Latn", "he": "heb_Hebr", "hi": "hin_Deva", "hr": "hrv_Latn", "hu": "hun_Latn", "hy": "hye_Armn",
    "id": "ind_Latn", "ig": "ibo_Latn", "is": "isl_Latn", "it": "ita_Latn", "ja": "jpn_Jpan", "jv": "jav_Latn",
    "ka": "kat_Geor", "kk": "kaz_Cyrl", "km": "khm_Khmr", "kn": "kan_Knda", "ko": "kor_Hang", "ky": "kir_Cyrl",
    "lo": "lao_Laoo", "lt": "lit_Latn", "lv": "lvs_Latn", "mk": "mkd_Cyrl", "ml": "mal_Mlym", "mn": "khk_Cyrl",
    "mr": "mar_Deva", "ms": "zsm_Latn", "my": "mya_Mymr", "nb": "nob_Latn", "ne": "npi_Deva", "nl": "nld_Latn",
    "nn": "nno_Latn", "no": "nob_Latn", "pa": "pan_Guru", "pl": "pol_Latn", "ps": "pbt_Arab", "pt": "por_Latn",
    "ro": "ron_Latn", "ru": "rus_Cyrl", "si": "sin_Sinh", "sk": "slk_Latn", "sl": "slv_Latn", "so": "som_Latn",
    "sq": "als_Latn", "sr": "srp_Cyrl", "sv": "swe_Latn", "sw": "swh_Latn", "ta": "tam_Taml", "te": "tel_Telu",
    "th": "tha_Thai", "tl": "tgl_Latn", "tr": "tur_Latn", "uk": "ukr_Cyrl", "ur": "urd_Arab", "uz": "uzn_Latn",
    "vi": "vie_Latn", "xh": "xho_Latn", "yo": "yor_Latn", "zh": "zho_Hans", "zu": "zul_Latn",
}
_NLLB_CODE = re.compile(r"[a-z]{3}_[A-Z][a-z]{3}")     # jpn_Jpan
_MBART_CODE = re.compile(r"[a-z]{2}_[A-Z]{2}")         # ja_XX, ar_AR


class Translator(Protocol):
    """What :class:`MTQueryRewriter` calls: the English translations of texts in one source language, in order.

    ``src_lang`` is an ISO 639-1 code, or None when the queries carry no language. A translator answers None for
    a text it has no translation for (the rewriter then fails, or keeps the original with ``fallback="original"``).
    It may set ``key = "qid"`` to be given query ids instead of query texts (a table of translations by query id).
    """

    def translate(self, texts: list[str], src_lang: Optional[str]) -> list[Optional[str]]: ...


class MTQueryRewriter(pt.Transformer):
    """Q -> Q: ``query`` becomes its English translation, the original moves to ``query_0``; ``lang`` and the
    other columns stay. Each query's source language is ``src_lang`` when given, else its ``lang`` column
    (ISO 639-1), else unknown (enough for a single-direction model or a table). English queries stay as they are.

    Example::

        mt = MTQueryRewriter.from_pretrained("facebook/nllb-200-distilled-600M")
        mt(pd.DataFrame({"qid": ["1"], "query": ["ハムレットを書いたのは誰"], "lang": ["ja"]}))
        # qid, query="Who wrote Hamlet?", query_0="ハムレットを書いたのは誰", lang
    """

    def __init__(self, translator: Translator, *, src_lang: Optional[str] = None, fallback: Optional[str] = None):
        if fallback not in (None, "original"):
            raise ValueError(f"fallback must be None (missing translations are an error) or 'original', "
                             f"not {fallback!r}")
        self.translator = translator
        self.src_lang = src_lang
        self.fallback = fallback

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike | Mapping[str, str | os.PathLike], *,
                        src_lang: Optional[str] = None, **kwargs) -> "MTQueryRewriter":
        """A rewriter over a Hugging Face seq2seq MT model (hub id or folder): NLLB-200, M2M100 and mBART-50
        translate from many languages; Marian opus-mt models translate one pair each, so pass a mapping
        ``{lang: model}`` (or one model with a fixed ``src_lang``). ``kwargs`` go to
        :meth:`Seq2SeqTranslator.from_pretrained` (``num_beams``, ``max_new_tokens``, ``batch_size``, ``device``,
        ``dtype``, ``cache``, ``verbose``, and other ``generate`` arguments).

        Example::

            mt = MTQueryRewriter.from_pretrained({"ja": "Helsinki-NLP/opus-mt-ja-en"}, cache="mt.sqlite")
        """
        if isinstance(name_or_path, Mapping):
            translator = PerLanguageTranslator({lang: Seq2SeqTranslator.from_pretrained(path, **kwargs)
                                                for lang, path in name_or_path.items()})
        else:
            translator = Seq2SeqTranslator.from_pretrained(name_or_path, **kwargs)
        return cls(translator, src_lang=src_lang)

    @classmethod
    def from_table(cls, translations: Mapping[str, str] | str | os.PathLike | pd.DataFrame, *, key: str = "query",
                   fallback: Optional[str] = None) -> "MTQueryRewriter":
        """A rewriter that looks translations up, by query text (``key="query"``) or by ``qid``.

        ``translations``: a dict ``{key: English}``; a TSV file of ``key<TAB>English`` lines (no header); or a
        DataFrame with the ``key`` column and a ``query_en`` column (e.g. XOR-TyDi topics). Empty translations
        count as missing; a key given twice keeps its first translation. Missing translations are an error unless
        ``fallback="original"`` keeps the original query.

        Example::

            mt = MTQueryRewriter.from_table({"q1": "Who wrote Hamlet?"}, key="qid")
        """
        return cls(TableTranslator(read_table(translations, key=key), key=key), fallback=fallback)

    @classmethod
    def from_parallel_files(cls, src_path: str | os.PathLike, en_path: str | os.PathLike, *,
                            fallback: Optional[str] = None) -> "MTQueryRewriter":
        """A rewriter that looks up query texts in line-aligned parallel files (plain or ``.gz``): line i of
        ``en_path`` translates line i of ``src_path``, as in XOR-TyDi's ``translations/{lang}-en/``.

        Example::

            mt = MTQueryRewriter.from_parallel_files("translations/ja-en/ja.txt", "translations/ja-en/en.txt")
        """
        return cls.from_table(read_parallel_files(src_path, en_path), key="query", fallback=fallback)

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        pt.validate.query_frame(inp, extra_columns=["query"], context=self)
        key = getattr(self.translator, "key", "query")
        if key not in inp.columns:
            raise ValueError(f"{self!r} looks translations up by {key!r}, but the queries have no such column "
                             f"(columns: {list(inp.columns)})")
        out = pt.model.push_queries(inp)
        position = list(out.columns).index("query_0")
        if not len(inp):
            out.insert(position, "query", pd.Series(dtype=object))
            return out
        queries = [str(q) for q in inp["query"]]
        keys = [str(k) for k in inp[key]]
        if self.src_lang is not None:
            langs = [self.src_lang] * len(inp)
        elif "lang" in inp.columns:
            langs = [lang if isinstance(lang, str) and lang else None for lang in inp["lang"]]
        else:
            langs = [None] * len(inp)
        translated: list[Optional[str]] = list(queries)
        for lang in dict.fromkeys(langs):
            if lang == ENGLISH:
                continue
            rows = [i for i, row_lang in enumerate(langs) if row_lang == lang]
            unique = list(dict.fromkeys(keys[i] for i in rows))
            answers = list(self.translator.translate(unique, lang))
            if len(answers) != len(unique):
                raise ValueError(f"{self.translator!r} answered {len(answers)} translations for {len(unique)} texts")
            found = dict(zip(unique, answers))
            for i in rows:
                translated[i] = found[keys[i]]
        missing = [i for i, text in enumerate(translated) if text is None]
        if missing and self.fallback is None:
            examples = ", ".join(repr(keys[i]) for i in missing[:3])
            raise ValueError(f"{len(missing)} of {len(inp)} queries have no translation (by {key}: {examples}"
                             f"{', ...' if len(missing) > 3 else ''}); pass fallback='original' to keep their "
                             f"original text")
        for i in missing:
            translated[i] = queries[i]
        out.insert(position, "query", translated)
        return out

    def __repr__(self) -> str:
        args = [repr(self.translator)]
        if self.src_lang is not None:
            args.append(f"src_lang={self.src_lang!r}")
        if self.fallback is not None:
            args.append(f"fallback={self.fallback!r}")
        return f"MTQueryRewriter({', '.join(args)})"


@dataclass(frozen=True)
class _Direction:
    """How to ask a model for English from one source language."""
    src_code: Optional[str] = None               # the tokenizer's src_lang (NLLB, M2M100, mBART-50)
    prefix: str = ""                             # put before each text (multi-target Marian: ">>eng<< ")
    forced_bos_token_id: Optional[int] = None    # the English token that starts the output


class Seq2SeqTranslator:
    """Translates into English with a Hugging Face seq2seq model: batched beam search over texts sorted by length,
    the language codes of the model's family (NLLB-200 ``jpn_Jpan``, M2M100 ``ja``, mBART-50 ``ja_XX``, with the
    English token forced first; Marian pairs as they are), and a cache (see :class:`TranslationCache`).

    ``cache``: True (in memory), False (none), or the path of an sqlite file that keeps translations across
    sessions, keyed by the model ``name``, its generation settings, the language and the text.

    Example::

        translator = Seq2SeqTranslator.from_pretrained("facebook/nllb-200-distilled-600M", num_beams=4)
        translator.translate(["ハムレットを書いたのは誰"], "ja")     # ["Who wrote Hamlet?"]
    """

    def __init__(self, model: transformers.PreTrainedModel, tokenizer, *, name: Optional[str] = None,
                 num_beams: int = 4, max_new_tokens: int = 64, batch_size: int = 32,
                 cache: bool | str | os.PathLike = True, verbose: bool = True, **generate_kwargs):
        self.model = model
        self.tokenizer = tokenizer
        self.name = name if name is not None else str(getattr(model, "name_or_path", "") or "")
        self.num_beams = num_beams
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.cache = cache
        self.verbose = verbose
        self.generate_kwargs = generate_kwargs
        if cache not in (True, False) and not self.name:
            raise ValueError("a translation cache on disk is keyed by the model's name: pass name=")
        self._cache = None if cache is False else TranslationCache(None if cache is True else cache)
        self._family, self._codes = _language_scheme(tokenizer)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, *, device: Optional[str | torch.device] = None,
                        dtype: Optional[torch.dtype] = None, **kwargs) -> "Seq2SeqTranslator":
        """Load a model and its tokenizer (hub id or folder) onto ``device`` (default: the GPU when there is one),
        in ``dtype`` (default: bfloat16 or float16 on a GPU, float32 on a CPU). ``kwargs``: see the class."""
        device = torch.device(device) if device is not None else default_device()
        if dtype is None and device.type == "cuda":
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        source = str(name_or_path)
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(source)
            model = transformers.AutoModelForSeq2SeqLM.from_pretrained(source, dtype=dtype or torch.float32)
        except OSError as e:
            raise ValueError(f"cannot load a translation model from {source!r}: not a local model folder and not "
                             f"reachable on the Hugging Face hub ({e})") from None
        name = os.path.abspath(source) if os.path.isdir(source) else source
        return cls(model.to(device).eval(), tokenizer, name=name, **kwargs)

    def translate(self, texts: list[str], src_lang: Optional[str]) -> list[str]:
        """The English translations of ``texts`` (one source language), in order; empty texts stay empty."""
        texts = [str(t) for t in texts]
        direction = self._direction(src_lang)
        settings, lang = self._settings(), src_lang or ""
        found = self._cache.get(settings, lang, texts) if self._cache is not None else {}
        todo = sorted(dict.fromkeys(t for t in texts if t.strip() and t not in found), key=len, reverse=True)
        progress = tqdm(total=len(todo), unit="query", desc=f"translating {lang or 'queries'}",
                        disable=not self.verbose or len(todo) <= self.batch_size)
        with progress:
            for start in range(0, len(todo), self.batch_size):
                batch = todo[start:start + self.batch_size]
                translations = dict(zip(batch, self._generate(batch, direction)))
                if self._cache is not None:
                    self._cache.put(settings, lang, translations)
                found.update(translations)
                progress.update(len(batch))
        return [found.get(t, "") for t in texts]

    def _generate(self, texts: list[str], direction: _Direction) -> list[str]:
        if direction.src_code is not None:
            self.tokenizer.src_lang = direction.src_code
        inputs = self.tokenizer([direction.prefix + t for t in texts], return_tensors="pt", padding=True,
                                truncation=True).to(self.model.device)
        kwargs = dict(num_beams=self.num_beams, max_new_tokens=self.max_new_tokens, **self.generate_kwargs)
        if direction.forced_bos_token_id is not None:
            kwargs["forced_bos_token_id"] = direction.forced_bos_token_id
        with torch.inference_mode():
            output = self.model.generate(**inputs, **kwargs)
        # drop the decoder start token and the forced language token (M2M100's are not all marked special)
        output = output[:, 1 if direction.forced_bos_token_id is None else 2:]
        return [t.strip() for t in self.tokenizer.batch_decode(output, skip_special_tokens=True)]

    def _settings(self) -> str:
        """What the cache keys a translation by, besides language and text: the model and how it decodes."""
        return json.dumps({"model": self.name, "num_beams": self.num_beams, "max_new_tokens": self.max_new_tokens,
                           **self.generate_kwargs}, sort_keys=True, default=str)

    def _direction(self, src_lang: Optional[str]) -> _Direction:
        family, codes, tok = self._family, self._codes, self.tokenizer
        if family == "marian":
            return self._marian_direction(src_lang)
        if family == "other":
            return _Direction()
        if src_lang is None:
            raise ValueError(f"{self.name} translates from many languages: it needs each query's source language "
                             f"(a 'lang' column, or src_lang=)")
        if family == "nllb":
            code, english, hint = NLLB_CODES.get(src_lang, src_lang), "eng_Latn", "such as 'jpn_Jpan'"
        elif family == "mbart":
            matches = [c for c in codes if c.split("_")[0] == src_lang]
            code, english, hint = (matches[0] if len(matches) == 1 else src_lang), "en_XX", "such as 'ja_XX'"
        else:  # m2m100
            code, english, hint = src_lang, ENGLISH, "such as 'ja'"
        if code not in codes:
            raise ValueError(f"{self.name} cannot translate from {src_lang!r}: its tokenizer has no language code "
                             f"for it (an ISO 639-1 code, or one of its own codes {hint})")
        english_id = tok.get_lang_id(english) if family == "m2m100" else tok.convert_tokens_to_ids(english)
        return _Direction(src_code=code, forced_bos_token_id=english_id)

    def _marian_direction(self, src_lang: Optional[str]) -> _Direction:
        tok = self.tokenizer
        source, target = getattr(tok, "source_lang", None), getattr(tok, "target_lang", None)
        if src_lang is not None and source and len(source) == 2 and source != src_lang:
            raise ValueError(f"{self.name} translates from {source!r}, not {src_lang!r}: give one model per language, "
                             f"e.g. MTQueryRewriter.from_pretrained({{{source!r}: ..., {src_lang!r}: ...}})")
        for code in (">>eng<<", ">>en<<"):
            if code in tok.supported_language_codes:
                return _Direction(prefix=code + " ")
        if target and target not in ("en", "eng"):
            raise ValueError(f"{self.name} translates into {target!r}, not English")
        return _Direction()

    def __repr__(self) -> str:
        defaults = dict(num_beams=4, max_new_tokens=64, batch_size=32, cache=True, verbose=True)
        args = [repr(self.name)]
        for option, default in defaults.items():
            value = getattr(self, option)
            if value != default:
                args.append(f"{option}={str(value) if isinstance(value, Path) else value!r}")
        args += [f"{k}={v!r}" for k, v in self.generate_kwargs.items()]
        return f"Seq2SeqTranslator.from_pretrained({', '.join(args)})"


def _language_scheme(tokenizer) -> tuple[str, set[str]]:
    """The family of a translation tokenizer and its language codes: NLLB-200 (``eng_Latn``), mBART-50
    (``en_XX``), M2M100 (``lang_code_to_id``), Marian (``supported_language_codes``), or other (no codes)."""
    if hasattr(tokenizer, "supported_language_codes"):
        return "marian", set(tokenizer.supported_language_codes)
    vocab = tokenizer.get_vocab()
    if "eng_Latn" in vocab:
        return "nllb", {t for t in vocab if _NLLB_CODE.fullmatch(t)}
    if "en_XX" in vocab:
        return "mbart", {t for t in vocab if _MBART_CODE.fullmatch(t)}
    if isinstance(getattr(tokenizer, "lang_code_to_id", None), dict) and hasattr(tokenizer, "get_lang_id"):
        return "m2m100", set(tokenizer.lang_code_to_id)
    return "other", set()


class PerLanguageTranslator:
    """Routes each source language to its own translator (Marian opus-mt: one model per language pair).

    Example::

        PerLanguageTranslator({"ja": Seq2SeqTranslator.from_pretrained("Helsinki-NLP/opus-mt-ja-en"),
                               "ru": Seq2SeqTranslator.from_pretrained("Helsinki-NLP/opus-mt-ru-en")})
    """

    def __init__(self, translators: Mapping[str, Translator]):
        self.translators = dict(translators)

    def translate(self, texts: list[str], src_lang: Optional[str]) -> list[Optional[str]]:
        if src_lang not in self.translators:
            raise ValueError(f"no translation model for {src_lang!r}: the models cover {sorted(self.translators)} "
                             f"({self!r})" + ("; the queries need a 'lang' column, or src_lang=" if src_lang is None
                                              else ""))
        return self.translators[src_lang].translate(texts, src_lang)

    def __repr__(self) -> str:
        return f"PerLanguageTranslator({self.translators!r})"


class TableTranslator:
    """Looks translations up in a table ``{key: English}``, by query text (``key="query"``) or by ``qid``; the
    language does not matter. Answers None for keys it lacks.

    Example::

        TableTranslator({"q1": "Who wrote Hamlet?"}, key="qid").translate(["q1", "q2"], "ja")   # [..., None]
    """

    def __init__(self, table: Mapping[str, str], *, key: str = "query"):
        if key not in ("query", "qid"):
            raise ValueError(f"key must be 'query' or 'qid', not {key!r}")
        self.table = {str(k).strip(): str(v) for k, v in table.items() if isinstance(v, str) and v.strip()}
        self.key = key

    def translate(self, texts: list[str], src_lang: Optional[str] = None) -> list[Optional[str]]:
        return [self.table.get(str(t).strip()) for t in texts]

    def __repr__(self) -> str:
        return f"TableTranslator(<{len(self.table)} translations>, key={self.key!r})"


def read_table(translations: Mapping[str, str] | str | os.PathLike | pd.DataFrame, *, key: str) -> dict[str, str]:
    """``{key: English}`` from a dict, a ``key<TAB>English`` TSV file, or a DataFrame with ``key`` and
    ``query_en`` columns; a key given twice keeps its first non-empty translation."""
    if isinstance(translations, pd.DataFrame):
        pt.validate.columns(translations, includes=[key, "query_en"])
        pairs: Iterable = zip(translations[key], translations["query_en"])
    elif isinstance(translations, Mapping):
        pairs = translations.items()
    elif isinstance(translations, (str, os.PathLike)):
        pairs = _read_tsv(Path(translations))
    else:
        raise TypeError(f"translations must be a dict, a TSV file path or a DataFrame, not {type(translations)}")
    table: dict[str, str] = {}
    for k, text_en in pairs:
        if isinstance(text_en, str) and text_en.strip():
            table.setdefault(str(k).strip(), text_en.strip())
    return table


def read_parallel_files(src_path: str | os.PathLike, en_path: str | os.PathLike) -> dict[str, str]:
    """``{source line: English line}`` from two line-aligned files (plain or ``.gz``); blank lines are skipped,
    a source line given twice keeps its first translation."""
    table: dict[str, str] = {}
    for text, text_en in read_line_pairs(src_path, en_path):
        table.setdefault(text, text_en)
    return table


def _read_lines(path: Path) -> list[str]:
    with open_text(path) as f:
        return f.read().rstrip("\n").split("\n")


def _read_tsv(path: Path) -> list[tuple[str, str]]:
    pairs = []
    for number, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            raise ValueError(f"{path}:{number}: expected 'key<TAB>English', found {len(fields)} tab-separated "
                             f"field(s)")
        pairs.append((fields[0], fields[1]))
    return pairs


class TranslationCache:
    """Translations keyed by (model settings, source language, text), in memory and, with a ``path``, in an sqlite
    file that later sessions and other processes reuse (plain text rows, no pickle).

    Example::

        cache = TranslationCache("mt-cache.sqlite")
        cache.put("nllb-600M", "ja", {"猫": "cat"}); cache.get("nllb-600M", "ja", ["猫", "犬"])   # {"猫": "cat"}
    """

    _SCHEMA = ("CREATE TABLE IF NOT EXISTS translations (model TEXT NOT NULL, lang TEXT NOT NULL, "
               "text TEXT NOT NULL, translation TEXT NOT NULL, PRIMARY KEY (model, lang, text))")

    def __init__(self, path: Optional[str | os.PathLike] = None):
        self.path = path
        self._memory: dict[tuple[str, str, str], str] = {}
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as con:
                con.execute(self._SCHEMA)
                con.execute("SELECT model, lang, text, translation FROM translations LIMIT 1")

    @contextlib.contextmanager
    def _connect(self):
        try:
            with contextlib.closing(sqlite3.connect(str(self.path), timeout=60)) as con:
                with con:  # one transaction, committed on success
                    yield con
        except sqlite3.DatabaseError as e:
            raise ValueError(f"{self.path} is not a usable translation cache (an sqlite file with a "
                             f"'translations' table): {e}") from None

    def get(self, model: str, lang: str, texts: Sequence[str]) -> dict[str, str]:
        """The cached translations among ``texts``."""
        found = {t: self._memory[model, lang, t] for t in texts if (model, lang, t) in self._memory}
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if self.path is not None and missing:
            with self._connect() as con:
                for start in range(0, len(missing), 500):
                    chunk = missing[start:start + 500]
                    rows = con.execute("SELECT text, translation FROM translations WHERE model = ? AND lang = ? "
                                       f"AND text IN ({', '.join('?' * len(chunk))})", (model, lang, *chunk))
                    for text, translation in rows:
                        found[text] = self._memory[model, lang, text] = translation
        return found

    def put(self, model: str, lang: str, translations: Mapping[str, str]) -> None:
        for text, translation in translations.items():
            self._memory[model, lang, text] = translation
        if self.path is not None and translations:
            with self._connect() as con:
                con.executemany("INSERT OR REPLACE INTO translations VALUES (?, ?, ?, ?)",
                                [(model, lang, t, tr) for t, tr in translations.items()])

    def __repr__(self) -> str:
        return f"TranslationCache({self.path!r})" if self.path is not None else "TranslationCache()"
