"""Contrastive training of the dual encoder: frozen backbones on cached features, or full fine-tuning.

Data-parallel over several processes when launched so (``torchrun --nproc-per-node N -m frameseek train``,
``frameseek train --nproc N``, or ``launch_training``): every process draws the same global batches (same
seed) and takes its contiguous slice of each; the loss gathers the embeddings so negatives come from the
global batch and DDP averages the gradients, which makes a step that of one process on the global batch.

One file because the Trainer's pieces (parameter groups, tails, frozen features, resume state, the
epoch loop, rank-0 writing) share one state and one lifetime; the process-group helpers live in
``frameseek.lab.distributed`` and the losses in ``frameseek.lab.losses``.
Rank 0 alone caches features first (the others wait, then read them), evaluates, and writes checkpoints,
logs, curves and the report; its selection numbers are broadcast so every process steps the LR schedule
and stops early in lock-step.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from frameseek.errors import InputError
from frameseek.lab import distributed
from frameseek.lab.data.captions import CaptionSample, group_by_image, load_dataset
from frameseek.lab.features import (
    cached_image_features,
    cached_image_trunk,
    cached_text_features,
    cached_text_trunk,
    load_image,
)
from frameseek.lab.losses import build_loss
from frameseek.lab.retrieval_eval import recall_report
from frameseek.models.dual_encoder import DualEncoder
from frameseek.models.factory import build_preset, create_model
from frameseek.models.registry import PRESETS
from frameseek.system.atomic import atomic_path, write_text_atomic
from frameseek.system.devices import resolve_device


@dataclass
class TrainConfig:
    """Every knob of a training run; saved beside the checkpoint as ``train_config.json``."""

    data: str
    out: str
    model: str = "lite"
    dataset: str = "flickr8k"
    train_split: str = "train"
    eval_split: str = "dev"
    # Model selection (best checkpoint, LR schedule) uses images held out of TRAIN, so the eval split
    # stays a clean test set. "dev" selects on the eval split instead (then its numbers are optimistic).
    select_on: str = "holdout"
    holdout_images: int = 500
    holdout_seed: int | None = None  # seed of the holdout draw (None: seed); fix it to compare seeds
    mode: str = "frozen"  # "frozen": heads on cached backbone features; "finetune": backbones train too
    epochs: int = 25
    batch_size: int = 128
    lr_heads: float = 1e-3
    lr_image_backbone: float = 1e-4
    lr_text_backbone: float = 1e-5
    weight_decay: float = 1e-3
    loss: str = "infonce"
    temperature: float | None = None
    head_dropout: float | None = None
    input_dropout: float | None = None
    flip: bool = True  # augmentation (random mirror) in training, mirror averaging at evaluation
    plateau_patience: int = 1
    plateau_factor: float = 0.5
    early_stop: int = 5  # stop after this many epochs without a better selection R@1 (0: never)
    seed: int = 0
    max_steps: int | None = None  # cap optimizer steps per epoch (smoke runs)
    resume: bool = False
    # Partial fine-tuning in frozen mode: the backbones' trunks stay frozen and their outputs are cached
    # once per image (and mirror) / caption; the tails train on the caches together with the heads, and
    # the checkpoint stores only the tail tensors (config.backbone_weight_prefixes) besides the heads.
    # image_tail_blocks: EfficientNet-Lite0's last N MBConv blocks + its head conv (0: head conv only).
    # text_tail_layers: the text transformer's last N layers. None: off (the backbone stays frozen).
    image_tail_blocks: int | None = None
    text_tail_layers: int | None = None
    lr_image_tail: float | None = None  # None: lr_image_backbone
    lr_text_tail: float | None = None  # None: lr_text_backbone
    tail_weight_decay: float = 0.0
    threads: int | None = None  # torch.set_num_threads for the run (None: leave torch's default)
    # Where training runs: auto | cpu | cuda[:N] | mps (devices.resolve_device). It also picks the backend
    # across processes: NCCL on CUDA (each process on its LOCAL_RANK's GPU), gloo on the CPU.
    device: str = "auto"
    weights_dtype: str | None = None  # checkpoint storage precision ("float16" halves it); None: model's
    # > 0: fuse the zero-shot class channel (heads.ClassChannelHead) with weight β into the best checkpoint
    # after training (the heads train without it); an ensemble gets it once, after the merge.
    class_channel: float = 0.0
    class_top_k: int = 20
    class_text_start: int = 0  # the channel's text space: text features [start, start + dim) (dim 0: all)
    class_text_dim: int = 0
    # > 0: then project the embeddings to this many dimensions (heads.ProjectedHead), fitted on the
    # training split's own image and caption embeddings (never on the selection or evaluation split).
    project_dim: int = 0
    log: list[dict[str, Any]] = field(default_factory=list, repr=False)


@dataclass
class SplitData:
    """One split grouped by image: image paths, all captions, caption → image index."""

    images: list[Path]
    captions: list[str]
    caption_to_image: list[int]

    @classmethod
    def from_samples(cls, samples: Sequence[CaptionSample]) -> SplitData:
        images, captions, c2i = group_by_image(samples)
        return cls(images, captions, c2i)

    def subset(self, image_ids: Sequence[int]) -> SplitData:
        keep = {old: new for new, old in enumerate(image_ids)}
        pairs = [(c, keep[i]) for c, i in zip(self.captions, self.caption_to_image, strict=True) if i in keep]
        return SplitData([self.images[i] for i in image_ids], [c for c, _ in pairs], [i for _, i in pairs])


def split_holdout(data: SplitData, n_holdout: int, seed: int) -> tuple[SplitData, SplitData]:
    """Hold ``n_holdout`` images (with all their captions) out of training, chosen by a seeded shuffle."""
    n = len(data.images)
    if not 0 < n_holdout < n:
        raise InputError(f"holdout_images must be between 1 and {n - 1}, got {n_holdout}")
    order = list(range(n))
    random.Random(seed).shuffle(order)
    held = sorted(order[:n_holdout])
    kept = sorted(order[n_holdout:])
    return data.subset(kept), data.subset(held)


def epoch_batches(
    caption_to_image: Sequence[int], batch_size: int, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """One epoch over every caption, in rounds that use each image once, so no batch repeats an image."""
    by_image: dict[int, list[int]] = {}
    for caption, image in enumerate(caption_to_image):
        by_image.setdefault(image, []).append(caption)
    pools = {image: list(rng.permutation(caps)) for image, caps in by_image.items()}
    while pools:
        images = rng.permutation(list(pools))
        round_captions = np.array([pools[int(i)].pop() for i in images])
        pools = {i: c for i, c in pools.items() if c}
        chunks = [round_captions[s : s + batch_size] for s in range(0, len(round_captions), batch_size)]
        if len(chunks) > 1 and len(chunks[-1]) == 1:  # a lone last caption joins the round's previous batch
            chunks[-2:] = [np.concatenate(chunks[-2:])]
        for batch in chunks:
            if len(batch) >= 2:  # only an image left alone in its round has no partner
                yield batch


def _unfreeze_tail(
    model: DualEncoder, side: str, count: int, size_attribute: str, minimum: int
) -> tuple[int, list[str]]:
    """Make the last ``count`` blocks/layers of one backbone trainable: (split point, state-dict prefixes)."""
    option = "image_tail_blocks" if side == "image" else "text_tail_layers"
    backbone = getattr(model, f"{side}_backbone")
    if not hasattr(backbone, "tail_modules"):
        kind = getattr(model.config, side).backbone
        raise InputError(f"{side} backbone {kind!r} has no trainable tail")
    n = int(getattr(backbone, size_attribute))
    if not minimum <= count <= n:
        raise InputError(f"{option} must be between {minimum} and {n}, got {count}")
    split = n - count
    prefixes = []
    for prefix, module in backbone.tail_modules(split).items():
        module.requires_grad_(True)
        prefixes.append(f"{side}_backbone.{prefix}")
    return split, prefixes


class Trainer:
    """Runs a training job; ``run()`` returns the final report (best epoch, selection and eval numbers)."""

    def __init__(self, config: TrainConfig, on_epoch: Callable[[dict[str, Any]], None] | None = None):
        self.config = config
        self.out = Path(config.out)
        self.on_epoch = on_epoch  # called with each epoch's log row (on rank 0 only)
        self.device = training_device(config.device)
        distributed.init(str(self.device))  # joins torchrun's process group if launched so; no-op alone
        self.world, self.rank = distributed.world_size(), distributed.rank()
        if config.threads:
            torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        np.random.seed(config.seed)
        random.seed(config.seed)
        # the data first (seeded splits of their own, no global random state): a data error costs no model
        train = SplitData.from_samples(load_dataset(config.dataset, Path(config.data), config.train_split))
        self.eval_data = SplitData.from_samples(
            load_dataset(config.dataset, Path(config.data), config.eval_split)
        )
        if config.select_on == "holdout":
            holdout_seed = config.seed if config.holdout_seed is None else config.holdout_seed
            self.train_data, self.select_data = split_holdout(train, config.holdout_images, holdout_seed)
            self.select_name = f"{config.train_split}-holdout"
        elif config.select_on == "dev":
            self.train_data, self.select_data = train, self.eval_data
            self.select_name = config.eval_split
        else:
            raise InputError(f"select_on must be 'holdout' or 'dev', got {config.select_on!r}")
        self._check_disjoint()
        self.model = self._build_model()
        self.model.engine = "torch"  # weights change every epoch: no ONNX export per evaluation
        self.loss_fn = build_loss(config.loss, config.temperature).to(self.device)
        if self.world > 1:  # same weights everywhere (DDP also broadcasts them); own dropout streams
            torch.manual_seed(config.seed + self.rank)
        self._replica: nn.Module | None = None  # the DDP wrapper during run(), with several processes
        self.optimizer = torch.optim.AdamW(self._param_groups())
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="max", factor=config.plateau_factor, patience=config.plateau_patience
        )
        self.start_epoch = 1
        self.best: dict[str, Any] = {"epoch": 0, "R@1": -1.0}
        self.history: list[dict[str, Any]] = []

    # ---- setup --------------------------------------------------------------------------------
    def _build_model(self) -> DualEncoder:
        name = self.config.model
        if name in PRESETS:
            model = build_preset(name, seed=self.config.seed)
        else:
            model = create_model(name, device="cpu")
        model.place(self.device)
        head = model.config.head
        if self.config.head_dropout is not None or self.config.input_dropout is not None:
            for module in (model.image_head, model.text_head):
                dropout = getattr(module, "dropout", None)
                input_dropout = getattr(module, "input_dropout", None)
                if self.config.head_dropout is not None and isinstance(dropout, nn.Dropout):
                    dropout.p = self.config.head_dropout
                    head.dropout = self.config.head_dropout
                if self.config.input_dropout is not None and isinstance(input_dropout, nn.Dropout):
                    input_dropout.p = self.config.input_dropout
                    head.input_dropout = self.config.input_dropout
        frozen = self.config.mode == "frozen"
        if self.config.mode not in ("frozen", "finetune"):
            raise InputError(f"mode must be 'frozen' or 'finetune', got {self.config.mode!r}")
        for module in (model.image_backbone, model.text_backbone):
            module.requires_grad_(not frozen)
        model.config.backbone_weights_included = not frozen
        self.image_split, self.text_split = self._setup_tails(model)
        if self.config.weights_dtype is not None:
            model.config.weights_dtype = self.config.weights_dtype
            model.config.validate()
        return model

    def _setup_tails(self, model: DualEncoder) -> tuple[int | None, int | None]:
        """Unfreeze the requested backbone tails; returns the split points (None: no tail)."""
        c = self.config
        image_split = text_split = None
        prefixes: list[str] = []
        if (c.image_tail_blocks is not None or c.text_tail_layers is not None) and c.mode != "frozen":
            raise InputError("image_tail_blocks / text_tail_layers need mode 'frozen' (cached trunks)")
        if c.image_tail_blocks is not None:
            image_split, found = _unfreeze_tail(model, "image", c.image_tail_blocks, "num_blocks", 0)
            prefixes += found
        if c.text_tail_layers is not None:
            text_split, found = _unfreeze_tail(model, "text", c.text_tail_layers, "num_layers", 1)
            prefixes += found
        if prefixes:
            model.config.backbone_weight_prefixes = prefixes
        return image_split, text_split

    def _tail_parameters(self, side: str) -> list[torch.nn.Parameter]:
        backbone = self.model.image_backbone if side == "image" else self.model.text_backbone
        split = self.image_split if side == "image" else self.text_split
        if split is None:
            return []
        return [p for m in backbone.tail_modules(split).values() for p in m.parameters()]  # type: ignore[operator]

    def _check_disjoint(self) -> None:
        train = set(self.train_data.images)
        for name, split in ((self.select_name, self.select_data), (self.config.eval_split, self.eval_data)):
            overlap = train.intersection(split.images)
            if overlap:
                raise InputError(f"{len(overlap)} {name} images are also in the training data")

    def _param_groups(self) -> list[dict[str, Any]]:
        c = self.config
        heads = [*self.model.image_head.parameters(), *self.model.text_head.parameters()]
        groups: list[dict[str, Any]] = [
            {"params": heads, "lr": c.lr_heads, "weight_decay": c.weight_decay, "name": "heads"},
            {
                "params": list(self.loss_fn.parameters()),
                "lr": c.lr_heads,
                "weight_decay": 0.0,
                "name": "temperature",
            },
        ]
        for side, lr in (
            ("image", c.lr_image_tail or c.lr_image_backbone),
            ("text", c.lr_text_tail or c.lr_text_backbone),
        ):
            params = self._tail_parameters(side)
            if params:
                groups.append(
                    {"params": params, "lr": lr, "weight_decay": c.tail_weight_decay, "name": f"{side}-tail"}
                )
        if c.mode == "finetune":
            groups.append(
                {
                    "params": list(self.model.image_backbone.parameters()),
                    "lr": c.lr_image_backbone,
                    "name": "image",
                }
            )
            groups.append(
                {
                    "params": list(self.model.text_backbone.parameters()),
                    "lr": c.lr_text_backbone,
                    "name": "text",
                }
            )
        return groups

    # ---- data ---------------------------------------------------------------------------------
    def _image_inputs(self, paths: Sequence[Path], flip: bool) -> torch.Tensor:
        """Cached per-image inputs of the trainable part: pooled features, or trunk maps with a tail."""
        if self.image_split is None:
            return cached_image_features(self.model, paths, flip=flip)
        n = int(self.model.image_backbone.num_blocks)  # type: ignore[arg-type]
        also = [s for s in (n, n - 1, n - 2) if s >= 0]  # neighbouring tails share the one pass
        return cached_image_trunk(self.model, paths, self.image_split, flip=flip, also=also)

    def _text_inputs(self, captions: Sequence[str]) -> torch.Tensor | PackedStates:
        if self.text_split is None:
            return cached_text_features(self.model, captions)
        return PackedStates(*cached_text_trunk(self.model, captions, self.text_split))

    def _image_features_from(self, inputs: torch.Tensor) -> torch.Tensor:
        inputs = inputs.to(self.device, non_blocking=True)  # cached inputs live on the CPU
        if self.image_split is None:
            return inputs
        return self.model.image_backbone.tail(inputs.float(), self.image_split)  # type: ignore[operator]

    def _text_features_from(self, inputs: torch.Tensor | PackedStates, rows: torch.Tensor) -> torch.Tensor:
        if isinstance(inputs, PackedStates):
            hidden, mask = inputs.batch(rows)
            hidden, mask = hidden.to(self.device), mask.to(self.device)
            return self.model.text_backbone.tail(hidden, mask, self.text_split)  # type: ignore[operator]
        return inputs[rows].to(self.device, non_blocking=True)

    def _frozen_features(self) -> None:
        self.train_image = [self._image_inputs(self.train_data.images, flip=False)]
        if self.config.flip:
            self.train_image.append(self._image_inputs(self.train_data.images, flip=True))
        self.train_text = self._text_inputs(self.train_data.captions)

    def _frozen_step_inputs(
        self, batch: np.ndarray, rng: np.random.Generator, rows: slice = slice(None)
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings of ``batch[rows]`` (this process's slice of the global batch)."""
        image_ids = torch.as_tensor(np.asarray(self.train_data.caption_to_image)[batch])
        views = rng.integers(0, len(self.train_image), size=len(batch))  # for the whole global batch
        batch, image_ids, views = batch[rows], image_ids[rows], views[rows]
        feats = torch.stack([self.train_image[v][i] for v, i in zip(views, image_ids.tolist(), strict=True)])
        image_emb = self.model.project_images(self._image_features_from(feats))
        text_emb = self.model.project_texts(self._text_features_from(self.train_text, torch.as_tensor(batch)))
        return image_emb, text_emb

    def _embed_frozen(self, split: SplitData, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings of a split from the caches (tails run on cached trunk outputs)."""
        views = [self._image_inputs(split.images, flip=False)]
        if self.config.flip:
            views.append(self._image_inputs(split.images, flip=True))
        image_emb = None
        for view in views:
            emb = torch.cat(
                [
                    self.model.project_images(self._image_features_from(view[s : s + chunk]))
                    for s in range(0, len(view), chunk)
                ]
            )
            image_emb = emb if image_emb is None else image_emb + emb
        assert image_emb is not None
        texts = self._text_inputs(split.captions)
        n_texts = len(split.captions)
        text_emb = torch.cat(
            [
                self.model.project_texts(
                    self._text_features_from(texts, torch.arange(s, min(s + chunk, n_texts)))
                )
                for s in range(0, n_texts, chunk)
            ]
        )
        return F.normalize(image_emb, dim=-1).cpu().numpy(), text_emb.cpu().numpy()

    def _finetune_step_inputs(
        self, batch: np.ndarray, rng: np.random.Generator, rows: slice = slice(None)
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings of ``batch[rows]`` (this process's slice of the global batch)."""
        flip = bool(self.config.flip and rng.integers(0, 2))  # one draw per global batch
        batch = batch[rows]
        image_ids = [self.train_data.caption_to_image[i] for i in batch]
        images = [load_image(self.train_data.images[i]) for i in image_ids]
        pixels = self.model.preprocess(images, flip=flip)
        texts = [self.train_data.captions[i] for i in batch]
        return self.model(pixels, texts)

    # ---- evaluation ---------------------------------------------------------------------------
    @torch.inference_mode()
    def embed(self, split: SplitData) -> tuple[np.ndarray, np.ndarray]:
        """Unit embeddings of a split's images (mirror-averaged with ``flip``) and captions."""
        self.model.eval()
        if self.config.mode == "frozen":
            return self._embed_frozen(split)
        pil = [load_image(p) for p in split.images]
        images = self.model.encode_images(pil, flip_tta=self.config.flip)
        return images, self.model.encode_texts(split.captions)

    def evaluate(self, split: SplitData) -> dict[str, Any]:
        images_np, texts_np = self.embed(split)
        return recall_report(images_np, texts_np, split.captions, split.caption_to_image)

    # ---- loop ---------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        c = self.config
        main = distributed.is_main()
        if main:
            self.out.mkdir(parents=True, exist_ok=True)
        if c.resume:
            self._load_resume_state()
        if c.mode == "frozen":
            with distributed.main_first():  # rank 0 computes and caches the features, the others read them
                self._frozen_features()
        self._replica = self._data_parallel()
        rng = np.random.default_rng(c.seed + self.start_epoch)
        since_best = 0
        for epoch in range(self.start_epoch, c.epochs + 1):
            started = time.perf_counter()
            train_loss = self._train_epoch(epoch, rng)
            # rank 0 evaluates; its numbers drive the schedule, the selection and early stopping everywhere
            select = distributed.broadcast_object(self.evaluate(self.select_data) if main else None)
            assert select is not None
            r1 = select["standard"]["text_to_image"]["R@1"]
            self.scheduler.step(r1)
            row = {
                "epoch": epoch,
                "train_loss": round(train_loss, 5),
                f"{self.select_name}_R@1": r1,
                f"{self.select_name}_R@5": select["standard"]["text_to_image"]["R@5"],
                f"{self.select_name}_R@10": select["standard"]["text_to_image"]["R@10"],
                "lr_heads": self.optimizer.param_groups[0]["lr"],
                "seconds": round(time.perf_counter() - started, 2),
            }
            self.history.append(row)
            if r1 > self.best["R@1"]:
                self.best = {"epoch": epoch, "R@1": r1}
                if main:
                    self.model.save_pretrained(self.out / "best")
                since_best = 0
            else:
                since_best += 1
            if main:
                self._write_logs()
                self._save_resume_state(epoch)
                if self.on_epoch:
                    self.on_epoch(row)
            if c.early_stop and since_best >= c.early_stop:
                break
        self._replica = None
        return self._final_report()

    def _data_parallel(self) -> nn.Module | None:
        """With several processes: DDP over the model and the loss (its temperature trains too)."""
        if self.world <= 1:
            return None
        from torch.nn.parallel import DistributedDataParallel

        finetune = self.config.mode == "finetune"
        cuda = self.device.type == "cuda"
        return DistributedDataParallel(
            _Replica(self.model, self.loss_fn),
            device_ids=[self.device.index or 0] if cuda else None,
            forward_sync_buffers=finetune,  # frozen: no buffer changes (backbones stay in eval mode)
            # finetune: a hub backbone may hold weights the embeddings never use; the graph is the same every
            # step, which lets DDP handle those without searching the graph each step
            static_graph=finetune,
        )

    def _train_epoch(self, epoch: int, rng: np.random.Generator) -> float:
        c = self.config
        self.model.train()
        if c.mode == "frozen":  # frozen backbones stay in eval mode (BatchNorm statistics, dropout)
            self.model.image_backbone.eval()
            self.model.text_backbone.eval()
        batches = list(epoch_batches(self.train_data.caption_to_image, c.batch_size, rng))
        if self.world > 1:  # every process needs a row (with 2 processes none is dropped: batches have 2+)
            batches = [batch for batch in batches if len(batch) >= self.world]
        if c.max_steps is not None:
            batches = batches[: c.max_steps]
        running, seen = 0.0, 0
        shown, shown_rows = 0.0, 0  # the bar's loss: over this process's rows (alone: the running loss)
        bar = tqdm(
            batches,
            desc=f"epoch {epoch}/{c.epochs}",
            unit="step",
            leave=False,
            disable=not distributed.is_main(),
        )
        step_inputs = self._frozen_step_inputs if c.mode == "frozen" else self._finetune_step_inputs
        for batch in bar:
            if self._replica is None:
                image_emb, text_emb = step_inputs(batch, rng)
                loss = self.loss_fn(image_emb, text_emb)
                local_rows = len(batch)
            else:  # this process's rows; the mean of the processes' losses is the global batch's loss
                sizes = distributed.shard_sizes(len(batch), self.world)
                rows = distributed.shard(len(batch), self.world, self.rank)
                loss = self._replica(self._sharded_loss, step_inputs, batch, rng, rows, sizes)
                local_rows = sizes[self.rank]
            if not torch.isfinite(loss):
                raise InputError(
                    f"training diverged at epoch {epoch} (loss {loss.item()}); lower the learning rates"
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            running += loss.item() * len(batch)
            seen += len(batch)
            shown += loss.item() * len(batch) / self.world
            shown_rows += local_rows
            bar.set_postfix(loss=f"{shown / shown_rows:.4f}")
        self.model.invalidate_fingerprint()
        if self.world > 1:
            running = distributed.all_reduce_sum(running) / self.world
        return running / max(seen, 1)

    def _sharded_loss(
        self,
        step_inputs: Callable[[np.ndarray, np.random.Generator, slice], tuple[torch.Tensor, torch.Tensor]],
        batch: np.ndarray,
        rng: np.random.Generator,
        rows: slice,
        sizes: list[int],
    ) -> torch.Tensor:
        """One process's loss on its rows against the whole batch (run inside DDP's forward)."""
        image_emb, text_emb = step_inputs(batch, rng, rows)
        loss: torch.Tensor = self.loss_fn(image_emb, text_emb, gather=distributed.RowGather(sizes))
        return loss

    # ---- outputs ------------------------------------------------------------------------------
    def _write_logs(self) -> None:
        write_text_atomic(self.out / "log.json", json.dumps(self.history, indent=2) + "\n")
        with atomic_path(self.out / "log.csv") as tmp, tmp.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(self.history[0]))
            writer.writeheader()
            writer.writerows(self.history)
        plot_curves(self.history, self.select_name, self.out / "curves.png")

    def _final_report(self) -> dict[str, Any]:
        """Rank 0 evaluates the best checkpoint and writes the report; every process returns it (the others
        load the checkpoint once rank 0 has finished writing)."""
        report = self._evaluate_best() if distributed.is_main() else None
        report = distributed.broadcast_object(report)
        if not distributed.is_main():
            self._load_best()
        assert report is not None
        return report

    def _load_best(self) -> None:
        best_model = create_model(str(self.out / "best"), device=str(self.device))
        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        self.model = best_model

    def _evaluate_best(self) -> dict[str, Any]:
        self._load_best()
        if self.config.class_channel > 0:
            self.model = _install_class_channel(self.model, self.config, self.out / "best")
        if self.config.project_dim > 0:
            self.model = _install_projection(self, self.out / "best", self.config.project_dim)
        evaluated = self.evaluate(self.eval_data)
        selected = self.evaluate(self.select_data)
        report = {
            "model": self.config.model,
            "dataset": self.config.dataset,
            "best_epoch": self.best["epoch"],
            "epochs_run": len(self.history),
            "processes": self.world,
            "train_images": len(self.train_data.images),
            "train_captions": len(self.train_data.captions),
            "selection": {"split": self.select_name, "images": len(self.select_data.images), **selected},
            "evaluation": {
                "split": self.config.eval_split,
                "images": len(self.eval_data.images),
                **evaluated,
            },
            "config": {k: v for k, v in asdict(self.config).items() if k != "log"},
        }
        report["calibration"] = _fit_calibration(self, self.out / "best")
        write_text_atomic(self.out / "report.json", json.dumps(report, indent=2) + "\n")
        return report

    def _save_resume_state(self, epoch: int) -> None:
        tensors: dict[str, torch.Tensor] = {
            f"model.{k}": v.detach().cpu().contiguous()
            for k, v in self.model.state_dict().items()
            if self.config.mode == "finetune"
            or k.startswith(("image_head.", "text_head.", *self.model.config.backbone_weight_prefixes))
        }
        tensors.update(
            {f"loss.{k}": v.detach().cpu().contiguous() for k, v in self.loss_fn.state_dict().items()}
        )
        opt = self.optimizer.state_dict()
        for pid, state in opt["state"].items():
            for name, value in state.items():
                tensors[f"opt.{pid}.{name}"] = torch.as_tensor(value).cpu().contiguous()
        meta = {
            "epoch": epoch,
            "best": self.best,
            "history": self.history,
            "lrs": [g["lr"] for g in self.optimizer.param_groups],
            "scheduler": {k: v for k, v in self.scheduler.state_dict().items() if isinstance(v, int | float)},
        }
        with atomic_path(self.out / "resume.safetensors") as tmp:
            save_file(tensors, str(tmp))
        write_text_atomic(self.out / "resume.json", json.dumps(meta, indent=2) + "\n")

    def _load_resume_state(self) -> None:
        meta_path, tensor_path = self.out / "resume.json", self.out / "resume.safetensors"
        if not (meta_path.is_file() and tensor_path.is_file()):
            raise InputError(f"nothing to resume in {self.out} (no resume.json / resume.safetensors)")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        tensors = load_file(str(tensor_path))
        self.model.load_state_dict(
            {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=False
        )
        self.loss_fn.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("loss.")})
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("opt."):
                _, pid, name = key.split(".", 2)
                state.setdefault(int(pid), {})[name] = value
        opt = self.optimizer.state_dict()
        opt["state"] = state
        for group, lr in zip(opt["param_groups"], meta["lrs"], strict=True):
            group["lr"] = lr
        self.optimizer.load_state_dict(opt)
        sched = self.scheduler.state_dict()
        sched.update(meta["scheduler"])
        self.scheduler.load_state_dict(sched)
        self.start_epoch = int(meta["epoch"]) + 1
        self.best = meta["best"]
        self.history = meta["history"]


class _Replica(nn.Module):
    """What DDP keeps in step across processes: the model and the loss (its learnable temperature).

    ``forward(step, *args)`` runs ``step(*args)``, the training step, so that it runs inside DDP's forward.
    """

    def __init__(self, model: DualEncoder, loss_fn: nn.Module):
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, step: Callable[..., torch.Tensor], *args: Any) -> torch.Tensor:
        return step(*args)


def training_device(spec: str) -> torch.device:
    """The device this process trains on: ``spec`` resolved (``devices.resolve_device``); with several
    processes on CUDA, each takes the GPU of its ``LOCAL_RANK`` (as torchrun numbers them)."""
    device = resolve_device(spec)
    if device.kind == "cuda" and distributed.launched():
        local_rank = distributed.env_world()[2]
        if local_rank >= torch.cuda.device_count():
            raise InputError(
                f"process {local_rank} has no GPU of its own: this machine has {torch.cuda.device_count()}"
                " CUDA GPU(s); start at most that many processes per node"
            )
        return torch.device("cuda", local_rank)
    return cast(torch.device, device.torch)


class PackedStates:
    """Cached token states of many texts, packed without padding: (tokens, H) + lengths (n,)."""

    def __init__(self, states: torch.Tensor, lengths: torch.Tensor):
        self.states = states
        self.lengths = lengths
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)])

    def __len__(self) -> int:
        return len(self.lengths)

    def batch(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded float32 states (b, L, H) and the attention mask (b, L) of some texts."""
        lengths = self.lengths[rows]
        width = int(lengths.max()) if len(rows) else 0
        hidden = torch.zeros(len(rows), width, self.states.shape[1])
        mask = torch.zeros(len(rows), width, dtype=torch.int64)
        for j, (row, n) in enumerate(zip(rows.tolist(), lengths.tolist(), strict=True)):
            start = int(self.offsets[row])
            hidden[j, :n] = self.states[start : start + n].float()
            mask[j, :n] = 1
        return hidden, mask


def plot_curves(history: Sequence[dict[str, Any]], select_name: str, path: Path) -> None:
    """Loss and selection-split R@1 per epoch, as a PNG (written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    fig, loss_ax = plt.subplots(figsize=(7, 4))
    loss_ax.plot(epochs, [row["train_loss"] for row in history], "o-", color="tab:blue", label="train loss")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("train loss", color="tab:blue")
    recall_ax = loss_ax.twinx()
    recall_ax.plot(epochs, [row[f"{select_name}_R@1"] for row in history], "s-", color="tab:orange")
    recall_ax.set_ylabel(f"{select_name} text→image R@1 (%)", color="tab:orange")
    loss_ax.set_title("frameseek training")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def train_ensemble(
    config: TrainConfig, seeds: Sequence[int], on_epoch: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """Train one model per seed (same holdout), merge their heads into an ensemble in ``out/best``.

    Each seed's run lives in ``out/seed-<n>``; the report has every seed's numbers and the ensemble's.
    """
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise InputError(f"an ensemble needs at least two different seeds, got {list(seeds)}")
    out = Path(config.out)
    holdout_seed = config.seed if config.holdout_seed is None else config.holdout_seed
    runs: list[dict[str, Any]] = []
    trainer: Trainer | None = None
    for seed in seeds:
        run_config = replace(
            config,
            seed=seed,
            holdout_seed=holdout_seed,
            out=str(out / f"seed-{seed}"),
            class_channel=0.0,
            project_dim=0,
        )
        trainer = Trainer(run_config, on_epoch=on_epoch)
        runs.append(trainer.run())
    assert trainer is not None
    report = _ensemble_report(config, seeds, runs, trainer) if distributed.is_main() else None
    report = distributed.broadcast_object(report)  # rank 0 merges, evaluates and writes; everyone returns it
    if not distributed.is_main():
        trainer.model = create_model(str(out / "best"), device=str(trainer.device))
    assert report is not None
    return report


def _ensemble_report(
    config: TrainConfig, seeds: Sequence[int], runs: list[dict[str, Any]], trainer: Trainer
) -> dict[str, Any]:
    from frameseek.lab.ensemble import merge_heads

    out = Path(config.out)
    device = str(trainer.device)
    merged = merge_heads(
        [create_model(str(out / f"seed-{s}" / "best"), device=device) for s in seeds], name=trainer.model.name
    )
    merged.save_pretrained(out / "best")
    trainer.model = create_model(str(out / "best"), device=device)
    if config.class_channel > 0:
        trainer.model = _install_class_channel(trainer.model, config, out / "best")
    if config.project_dim > 0:  # the last seed's trainer: its own config has no projection
        trainer.model = _install_projection(trainer, out / "best", config.project_dim)
    selected = trainer.evaluate(trainer.select_data)
    evaluated = trainer.evaluate(trainer.eval_data)
    report = {
        "model": config.model,
        "dataset": config.dataset,
        "ensemble_seeds": list(seeds),
        "seeds": [_seed_summary(s, r) for s, r in zip(seeds, runs, strict=True)],
        "best_epoch": [r["best_epoch"] for r in runs],
        "epochs_run": sum(r["epochs_run"] for r in runs),
        "selection": {"split": trainer.select_name, "images": len(trainer.select_data.images), **selected},
        "evaluation": {"split": config.eval_split, "images": len(trainer.eval_data.images), **evaluated},
        "config": {k: v for k, v in asdict(config).items() if k != "log"},
    }
    report["calibration"] = _fit_calibration(trainer, out / "best")
    write_text_atomic(out / "report.json", json.dumps(report, indent=2) + "\n")
    return report


def _fit_calibration(trainer: Trainer, folder: Path) -> dict[str, Any]:
    """The best checkpoint's confidence calibration, fitted on the selection split (never trained on), its
    bank from the TRAIN photos, saved beside its weights; what it was fitted on, for the report."""
    from frameseek.lab.calibration import CaptionGroups, calibrate_checkpoint

    held = trainer.select_data
    if len(held.images) < 2:
        return {"skipped": f"the selection split has {len(held.images)} photo(s); calibration needs 2"}
    groups = CaptionGroups(list(held.images), list(held.captions), list(held.caption_to_image))
    calibration = calibrate_checkpoint(
        trainer.model, folder, trainer.train_data.images, groups, seed=trainer.config.seed
    )
    return {"split": trainer.select_name, "visual": calibration.visual.as_dict(), **calibration.info}


def _install_class_channel(model: DualEncoder, config: TrainConfig, folder: Path) -> DualEncoder:
    """The checkpoint in ``folder`` with the class channel fused in, saved there and loaded back."""
    from frameseek.lab.class_channel import install

    install(
        model,
        config.class_channel,
        config.class_top_k,
        text_start=config.class_text_start,
        text_dim=config.class_text_dim,
    )
    return _saved_and_reloaded(model, folder)


def _install_projection(trainer: Trainer, folder: Path, dim: int) -> DualEncoder:
    """The checkpoint in ``folder`` with the compact projection fitted on the training split's embeddings
    (as many captions as images), saved there and loaded back."""
    from frameseek.lab.projection import install
    from frameseek.lab.subspace import balanced_sample

    images, texts = trainer.embed(trainer.train_data)
    install(trainer.model, balanced_sample(images, texts, seed=trainer.config.seed), dim)
    return _saved_and_reloaded(trainer.model, folder)


def _saved_and_reloaded(model: DualEncoder, folder: Path) -> DualEncoder:
    """``model`` saved to ``folder`` and loaded back from it (as the report's evaluation will see it)."""
    model.save_pretrained(folder)
    loaded = create_model(str(folder), device=str(model.device))
    loaded.engine = "torch"
    return loaded


def _seed_summary(seed: int, report: dict[str, Any]) -> dict[str, Any]:
    keys = ("best_epoch", "selection", "evaluation")
    return {"seed": seed, **{k: report[k] for k in keys}}


# ---- entry points for one or several processes ---------------------------------------------------------
def run_training(
    config: TrainConfig,
    seeds: Sequence[int] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """A training job (an ensemble when ``seeds`` are given) in this process, or, launched by torchrun,
    as one of its processes (the group is joined for the job and left after it)."""
    with distributed.session(str(training_device(config.device))):  # NCCL on CUDA, gloo on the CPU
        if seeds:
            return train_ensemble(config, seeds, on_epoch=on_epoch)
        return Trainer(config, on_epoch=on_epoch).run()


def launch_training(
    config: TrainConfig, nproc: int, seeds: Sequence[int] | None = None, progress: bool = True
) -> dict[str, Any]:
    """``run_training`` in ``nproc`` local processes (torchrun's agent, gloo on CPU); rank 0's report.

    ``progress``: rank 0 prints each epoch's log row on stderr. Without ``config.threads`` each process
    gets an equal share of the cores. A worker's FrameseekError is re-raised here with its message.
    """
    if nproc == 1:
        return run_training(config, seeds, on_epoch=print_epoch_row if progress else None)
    return distributed.launch(nproc, _training_worker, config, list(seeds) if seeds else None, progress)


def _training_worker(config: TrainConfig, seeds: list[int] | None, progress: bool) -> dict[str, Any]:
    if not os.environ.get("FRAMESEEK_DEBUG"):  # as the command line: no library warnings on stderr
        logging.captureWarnings(True)
        logging.getLogger().addHandler(logging.NullHandler())
    if config.threads is None:
        torch.set_num_threads(distributed.default_threads(distributed.env_world()[1]))
    return run_training(config, seeds, on_epoch=print_epoch_row if progress else None)


def print_epoch_row(row: dict[str, Any]) -> None:
    """One epoch's log row as ``key=value`` pairs on stderr."""
    print("  ".join(f"{k}={v}" for k, v in row.items()), file=sys.stderr, flush=True)
