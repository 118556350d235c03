"""``frameseek fit-multilingual`` and the per-language table of ``frameseek eval --dataset multi30k``:
queries in any language (``frameseek.lab.multilingual``; the command line may reach the lab)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from frameseek.cli.options import JsonOpt, ModelOpt, load_api
from frameseek.cli.output import out


def print_languages(report: dict[str, Any]) -> None:
    """One line per language: R@1/5/10, the share of English R@1, how many captions took the tower."""
    out.print(
        f"{report['dataset']} {report['split']}: {report['images']} photos, one caption per photo and "
        f"language, model {report['model']}"
    )
    out.print("language  R@1    R@5    R@10   of English R@1  through the multilingual tower")
    for lang, row in report["text_to_image"].items():
        share = row["of_english_R@1"]
        out.print(
            f"{lang:<9} {row['R@1']:5.1f}  {row['R@5']:5.1f}  {row['R@10']:5.1f}  "
            f"{'' if share is None else f'{100 * share:.0f} %':<15} {row['through_tower']}"
        )


def fit_multilingual(
    data: Annotated[
        Path, typer.Option(help="Flickr8k folder: its TRAIN captions and photos (never DEV or TEST).")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Model folder to write multilingual.* into.")],
    multi30k: Annotated[
        Path | None,
        typer.Option(help="Multi30k folder: its en/de/fr/cs captions of Flickr8k TRAIN photos join the fit."),
    ] = None,
    msrvtt: Annotated[Path | None, typer.Option(help="MSR-VTT folder: its captions join the fit.")] = None,
    flickr8k_test: Annotated[
        Path | None,
        typer.Option(
            help="Flickr8k's TEST list (Flickr_8k.testImages.txt): with it, Multi30k photos outside Flickr8k "
            "(neither TRAIN, DEV nor TEST) join the fit."
        ),
    ] = None,
    outside_photos: Annotated[
        int | None,
        typer.Option(help="Use only the first N (shuffled) Multi30k photos outside Flickr8k.", min=1),
    ] = None,
    encoders: Annotated[
        str, typer.Option(help="The encoders whose joined embedding the head takes: e5, use or e5,use.")
    ] = "e5,use",
    model: ModelOpt = "lite",
    limit: Annotated[
        int | None,
        typer.Option(help="Use only the first N (shuffled) sentences of the Flickr8k TRAIN part.", min=50),
    ] = None,
    epochs: Annotated[int, typer.Option(min=1)] = 8,
    hidden: Annotated[int, typer.Option(min=8)] = 1024,
    seed: int = 0,
    json_out: JsonOpt = False,
) -> None:
    """Fit a model's multilingual tower: multilingual-e5-small and USE multilingual, joined, + a head
    fitted onto the model's English text side and its TRAIN photos, so that queries in any language land
    in its space (frameseek.lab.multilingual)."""
    load_api()
    from frameseek import api

    for folder, what in (
        (data, "Flickr8k"),
        (multi30k, "Multi30k"),
        (msrvtt, "MSR-VTT"),
        (flickr8k_test, "Flickr8k TEST list"),
    ):
        if folder is not None and not folder.exists():
            raise api.InputError(f"{what} folder not found: {folder}")
    if out_dir.exists() and not out_dir.is_dir():
        raise api.InputError(f"--out must be a folder: {out_dir}")
    from frameseek.lab.multilingual import FitSettings

    names = tuple(name.strip() for name in encoders.split(",") if name.strip())
    from frameseek.lab.multilingual import fit_multilingual as fit

    config = fit(
        api.create_model(model),
        data,
        out_dir,
        multi30k=multi30k,
        msrvtt=msrvtt,
        limit=limit,
        fit=FitSettings(epochs=epochs, hidden=hidden, seed=seed, inputs_from=names),
        flickr8k_test=flickr8k_test,
        outside_photos=outside_photos,
    )
    if json_out:
        typer.echo(json.dumps(config))
    else:
        record = config["fit"]
        out.print(
            f"multilingual head for {config['model']} written to {out_dir}: {record['pairs']} sentences, "
            f"best epoch {record['best_epoch']}, held-out cosine {record['held_out_cosine']}"
        )
