"""``frameseek train``, ``frameseek eval`` and ``frameseek calibrate``: the training lab's commands (the only
command module that imports ``frameseek.lab``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated, Any

import typer

from frameseek.cli.options import DEFAULT_MODEL, DeviceOpt, JsonOpt, ModelOpt, load_api, sampling
from frameseek.cli.output import err, out


def train(
    data: Annotated[Path, typer.Option(help="Dataset folder or file (e.g. ../shared/data/flickr8k).")],
    out_dir: Annotated[
        Path, typer.Option("--out", help="Run folder: best/ checkpoint, logs, curves, report.")
    ],
    dataset: Annotated[str, typer.Option(help="flickr8k, flickr30k, coco, csv or jsonl.")] = "flickr8k",
    model: ModelOpt = "lite",
    device: DeviceOpt = None,
    mode: Annotated[
        str, typer.Option(help="frozen (cached features) or finetune (backbones train too).")
    ] = "frozen",
    epochs: int = 25,
    batch_size: int = 128,
    lr_heads: float = 1e-3,
    lr_image_backbone: float = 1e-4,
    lr_text_backbone: float = 1e-5,
    weight_decay: float = 1e-3,
    loss: Annotated[
        str, typer.Option(help="infonce (CLIP) or soft (the original's soft targets).")
    ] = "infonce",
    temperature: Annotated[float | None, typer.Option(help="Initial temperature (learnable).")] = None,
    head_dropout: float | None = None,
    input_dropout: float | None = None,
    flip: Annotated[
        bool, typer.Option(help="Mirror augmentation in training and mirror averaging at eval.")
    ] = True,
    select_on: Annotated[str, typer.Option(help="holdout (images held out of TRAIN) or dev.")] = "holdout",
    holdout_images: int = 500,
    holdout_seed: Annotated[
        int | None, typer.Option(help="Seed of the holdout draw (default: --seed).")
    ] = None,
    image_tail_blocks: Annotated[
        int | None,
        typer.Option(
            help="Frozen mode: also train EfficientNet-Lite0's last N blocks + head conv (0: head conv)."
        ),
    ] = None,
    text_tail_layers: Annotated[
        int | None, typer.Option(help="Frozen mode: also train the text transformer's last N layers.")
    ] = None,
    lr_image_tail: float | None = None,
    lr_text_tail: float | None = None,
    tail_weight_decay: float = 0.0,
    threads: Annotated[int | None, typer.Option(help="torch threads for the run.")] = None,
    weights_dtype: Annotated[
        str | None, typer.Option(help="Checkpoint storage: float32, float16 or bfloat16.")
    ] = None,
    early_stop: int = 5,
    seed: int = 0,
    ensemble_seeds: Annotated[
        str | None,
        typer.Option(help="Train one run per seed (e.g. 0,1,2) and merge their heads into an ensemble."),
    ] = None,
    max_steps: Annotated[int | None, typer.Option(help="Cap steps per epoch (smoke runs).")] = None,
    class_channel: Annotated[
        float,
        typer.Option(
            help="Fuse the backbones' zero-shot ImageNet class channel with this weight into the best "
            "checkpoint (0: off).",
            min=0.0,
        ),
    ] = 0.0,
    class_top_k: Annotated[int, typer.Option(help="Classes per image in the class channel.", min=1)] = 20,
    class_text_start: Annotated[
        int, typer.Option(help="Class channel: first text feature of its text space.", min=0)
    ] = 0,
    class_text_dim: Annotated[
        int, typer.Option(help="Class channel: text features it reads from there (0: to the end).", min=0)
    ] = 0,
    project_dim: Annotated[
        int,
        typer.Option(
            help="Then project embeddings to this many dimensions, fitted on the training split's own "
            "embeddings (0: off).",
            min=0,
        ),
    ] = 0,
    resume: bool = False,
    nproc: Annotated[
        int | None,
        typer.Option(
            help="Train data-parallel in N local processes (each takes a slice of every batch; "
            "negatives come from the whole batch). Under torchrun leave it out.",
            min=1,
        ),
    ] = None,
    install_as: Annotated[
        Path | None, typer.Option(help="Also copy the best checkpoint to this folder.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Train the projection heads (and optionally the backbones) with a contrastive loss.

    Several processes: `--nproc N`, or `torchrun --nproc-per-node N -m frameseek train ...`.
    """
    load_api()
    from frameseek import api
    from frameseek.lab import distributed
    from frameseek.lab.training import TrainConfig, launch_training, run_training

    config = TrainConfig(
        data=str(data), out=str(out_dir), model=model, dataset=dataset, mode=mode, epochs=epochs,
        batch_size=batch_size, lr_heads=lr_heads, lr_image_backbone=lr_image_backbone,
        lr_text_backbone=lr_text_backbone, weight_decay=weight_decay, loss=loss, temperature=temperature,
        head_dropout=head_dropout, input_dropout=input_dropout, flip=flip, select_on=select_on,
        holdout_images=holdout_images, early_stop=early_stop, seed=seed, max_steps=max_steps, resume=resume,
        holdout_seed=holdout_seed, image_tail_blocks=image_tail_blocks, text_tail_layers=text_tail_layers,
        lr_image_tail=lr_image_tail, lr_text_tail=lr_text_tail, tail_weight_decay=tail_weight_decay,
        threads=threads, weights_dtype=weights_dtype, class_channel=class_channel, class_top_k=class_top_k,
        class_text_start=class_text_start, class_text_dim=class_text_dim, device=device or "auto",
        project_dim=project_dim,
    )  # fmt: skip

    def on_epoch(row: dict[str, Any]) -> None:
        if not json_out:
            err.print("  ".join(f"{k}={v}" for k, v in row.items()))

    seeds: list[int] | None = None
    if ensemble_seeds:
        try:
            seeds = [int(part) for part in ensemble_seeds.split(",") if part.strip()]
        except ValueError:
            raise api.InputError(
                f"--ensemble-seeds takes comma-separated integers, got {ensemble_seeds!r}"
            ) from None
    if nproc is not None and nproc > 1:
        report = launch_training(config, nproc, seeds, progress=not json_out)
        _finish_training(report, out_dir, install_as, json_out, dataset, model)
        return
    with distributed.exit_without_teardown():  # one of torchrun's processes: see there
        report = run_training(config, seeds, on_epoch=on_epoch)  # or a single process
        if distributed.is_main():  # under torchrun, rank 0 alone installs the checkpoint and prints
            _finish_training(report, out_dir, install_as, json_out, dataset, model)


def _finish_training(
    report: dict[str, Any], out_dir: Path, install_as: Path | None, json_out: bool, dataset: str, model: str
) -> None:
    """After training: install the best checkpoint (``--install-as``) and print the report."""
    from frameseek import api

    if install_as is not None:
        with api.atomic_dir(install_as) as tmp:
            shutil.copytree(out_dir / "best", tmp, dirs_exist_ok=True)
            for doc in install_as.glob("*.md") if install_as.is_dir() else []:
                shutil.copy2(doc, tmp / doc.name)  # keep the model card beside the new weights
    if json_out:
        typer.echo(json.dumps(report))
        return
    from frameseek.lab.evaluation import format_table

    out.print(f"best epoch {report['best_epoch']} of {report['epochs_run']}; checkpoint {out_dir / 'best'}")
    out.print(format_table({**report["selection"], "dataset": dataset, "model": model}))
    out.print(format_table({**report["evaluation"], "dataset": dataset, "model": model}))


def eval_(
    dataset: Annotated[str, typer.Option(help="flickr8k, flickr30k, coco, csv, jsonl, msrvtt or multi30k.")],
    data: Annotated[Path, typer.Option(help="Dataset folder or file.")],
    split: Annotated[str, typer.Option(help="test, dev (val), train or all.")] = "test",
    model: ModelOpt = DEFAULT_MODEL,
    device: DeviceOpt = None,
    flip_tta: Annotated[bool, typer.Option(help="Average each image with its mirror image.")] = True,
    fps: Annotated[float, typer.Option(help="MSR-VTT: frames sampled per second of each clip.")] = 1.0,
    images: Annotated[
        Path | None,
        typer.Option(
            help="multi30k: the Flickr8k folder whose photos the captions describe (--data: Multi30k)."
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Recall@1/5/10 and ranks: standard and original protocols (images), text→video (MSR-VTT), or
    text→image per language (multi30k: English, German, French, Czech). Captions in any language are
    embedded as queries are: English by the model, others by its multilingual tower."""
    load_api()
    from frameseek import api

    if device is not None:
        api.resolve_device(device)  # a GPU that is not there fails before the data are read
    if dataset.lower() == "multi30k":
        if images is None:
            raise api.InputError("--dataset multi30k needs --images (the Flickr8k folder)")
        from frameseek.lab.multilingual_eval import evaluate_multi30k

        report = evaluate_multi30k(
            api.create_model(model, device=device), images, data, split, flip_tta=flip_tta
        )
        if json_out:
            typer.echo(json.dumps(report))
        else:
            from frameseek.cli.languages import print_languages

            print_languages(report)
        return
    if dataset.lower() == "msrvtt":
        report = _eval_msrvtt(data, split, model, fps, json_out, device)
    else:
        from frameseek.lab.data.captions import load_dataset
        from frameseek.lab.retrieval_eval import evaluate_samples

        encoder = api.create_model(model, device=device)
        report = evaluate_samples(
            encoder, load_dataset(dataset, data, split), dataset, split, flip_tta=flip_tta
        )
    if json_out:
        typer.echo(json.dumps(report))
    else:
        from frameseek.lab.evaluation import format_table

        out.print(format_table(report))


def _eval_msrvtt(
    data: Path, split: str, model: str, fps: float, quiet: bool, device: str | None
) -> dict[str, Any]:
    from frameseek import api
    from frameseek.lab.data.msrvtt import discover_msrvtt
    from frameseek.lab.video_eval import evaluate_msrvtt

    clips = discover_msrvtt(data, split)
    searcher = api.Searcher(model, sampling=sampling(fps), device=device)
    return evaluate_msrvtt(searcher, clips, split, progress=not quiet)


def calibrate(
    data: Annotated[Path, typer.Option(help="Flickr8k folder (DEV pairs, TRAIN photos for the bank).")],
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for calibration.json + calibration-bank.safetensors.")
    ],
    model: ModelOpt = "lite",
    msrvtt: Annotated[
        Path | None, typer.Option(help="MSR-VTT folder: its captions calibrate the text tracks.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the DEV halves, the bank sample and the pairs.")] = 0,
    bank_size: Annotated[int, typer.Option(help="Reference photos in the bank.", min=20)] = 1500,
    fit_images: Annotated[
        int | None, typer.Option(help="Fit on only N photos of the FIT half (quick, rougher).", min=20)
    ] = None,
    device: DeviceOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Fit a model's confidence calibration on data it was not trained on (Flickr8k DEV's FIT half)."""
    load_api()
    from frameseek import api

    if not data.is_dir():
        raise api.InputError(f"calibration data folder not found: {data}")
    if msrvtt is not None and not msrvtt.is_dir():
        raise api.InputError(f"MSR-VTT folder not found: {msrvtt}")
    if out_dir.exists() and not out_dir.is_dir():
        raise api.InputError(f"--out must be a folder: {out_dir}")
    from frameseek.lab.calibration import calibrate_flickr

    encoder = api.create_model(model, device=device)
    calibration = calibrate_flickr(
        encoder, data, msrvtt, seed=seed, bank_size=bank_size, fit_images=fit_images
    )
    calibration.save(out_dir)  # each file written to a temporary name, then renamed
    if json_out:
        typer.echo(
            json.dumps({"out": str(out_dir), "visual": calibration.visual.as_dict(), **calibration.info})
        )
    else:
        out.print(f"calibration of {encoder.name} written to {out_dir} ({len(calibration.bank)} bank photos)")
