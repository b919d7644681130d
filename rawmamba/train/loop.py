"""The training loop, top to bottom: one process or many under ``torchrun`` (DistributedDataParallel).

    rawmamba train --config configs/synthetic_image.yaml --epochs=2
    torchrun --nproc_per_node=4 -m rawmamba.cli train --config configs/cam_image.yaml

Each process reads ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` from the environment that ``torchrun`` sets
(absent: a single process). Process 0 alone logs, previews and saves. The learning rate follows the
paper's step schedule (x0.1 every 20 epochs), a pure function of the epoch.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from rawmamba.errors import RawMambaError
from rawmamba.losses import derender_loss
from rawmamba.metrics import psnr
from rawmamba.models import create_model
from rawmamba.train.checkpoint import load_matching_weights, load_weights, save_checkpoint
from rawmamba.train.config import TrainConfig, save_config
from rawmamba.train.datasets import build_train_datasets
from rawmamba.train.epoch_seeding import EpochIndexSampler, EpochSeededItems


def lr_at(epoch: int, config: TrainConfig) -> float:
    """Step schedule of the paper (section 4.1): ``lr * gamma ** (epoch // step)``."""
    return config.lr * config.lr_gamma ** (epoch // config.lr_step_epochs)


def forward_batch(model: torch.nn.Module, batch: dict, device: torch.device) -> torch.Tensor:
    """Run the network on one collated batch (dataset-item contract of docs/CONVENTIONS.md)."""
    optional = {key: batch[key].to(device) for key in ("meta_mask", "flow") if key in batch}
    return model(
        batch["srgb"].to(device),
        batch["meta_srgb"].to(device),
        batch["meta_raw"].to(device),
        meta_mask=optional.get("meta_mask"),
        flow=optional.get("flow"),
    )


def interleave(loaders: list) -> Iterator[dict]:
    """Batches of several loaders in turn (image, video, image, ...), each loader read to its end once."""
    iterators = [iter(loader) for loader in loaders]
    while iterators:
        for iterator in list(iterators):
            batch = next(iterator, None)
            if batch is None:
                iterators.remove(iterator)
            else:
                yield batch


def _device(config: TrainConfig, local_rank: int) -> torch.device:
    if config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RawMambaError("device=cuda was asked for, but CUDA is not available")
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def _init_distributed(device: torch.device) -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def _preview(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """First clip's first frame, prediction above ground truth, gamma 1/2.2 for viewing (3, 2H, W)."""
    images = torch.cat([pred[0, 0, :3], target[0, 0, :3]], dim=1).detach().float().cpu()
    return images.clamp(0, 1) ** (1 / 2.2)


def train(config: TrainConfig, resume: bool = False) -> Path:
    """Train a model as ``config`` says; returns the path of the final checkpoint's weights."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = _device(config, local_rank)
    rank, world = _init_distributed(device)
    if config.batch_size % world:
        raise RawMambaError(f"batch_size {config.batch_size} is not divisible by the {world} processes")
    main_process = rank == 0
    out_dir = Path(config.out_dir)
    last = out_dir / "checkpoints" / "last"
    if main_process:
        if not resume and last.with_suffix(".json").exists():
            raise RawMambaError(f"{out_dir} already holds a run: pass --resume to continue it, or another out_dir")
        out_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, out_dir / "config.yaml")

    torch.manual_seed(config.seed)  # identical initial weights on every process
    model_args = {"raw_channels": config.raw_channels, **config.model_args}
    model = create_model(config.model, **model_args).to(device)
    if config.init_from and not resume:
        loaded, kept = load_matching_weights(model, config.init_from, skip=tuple(config.init_skip))
        if main_process:
            print(f"initialised {len(loaded)} tensors from {config.init_from}; {len(kept)} keep their fresh values")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr_at(0, config))
    step, start_epoch = 0, 0
    if resume:
        if not last.with_suffix(".state.pt").exists():
            raise RawMambaError(f"--resume: no checkpoint to resume in {out_dir / 'checkpoints'}")
        state = torch.load(last.with_suffix(".state.pt"), map_location="cpu", weights_only=False)
        if "model" in state:  # the weights of the same save as the optimiser (a kill between files cannot split them)
            model.load_state_dict(state["model"])
        else:
            load_weights(model, last)
        optimizer.load_state_dict(state["optimizer"])
        step, start_epoch = state["step"], state["epoch"]
        if "rng" in state:  # dropout / drop-path continue as they would have
            torch.set_rng_state(state["rng"])
            if device.type == "cuda" and "cuda_rng" in state:
                torch.cuda.set_rng_state(state["cuda_rng"], device)
    if world > 1:
        model = DistributedDataParallel(model, device_ids=[local_rank] if device.type == "cuda" else None)

    # One process or many draw the same global batches: a DistributedSampler (also for one process) shuffles with
    # (seed, epoch), rank r takes every world-th item; augmentation is a function of (seed, epoch, index) only
    # (epoch_seeding.py), so a resumed run sees the data the uninterrupted one would.
    datasets = build_train_datasets(config)
    samplers = [
        EpochIndexSampler(
            DistributedSampler(dataset, num_replicas=world, rank=rank, seed=config.seed, drop_last=True),
            len(dataset),
        )
        for dataset in datasets
    ]
    loaders = [
        DataLoader(
            EpochSeededItems(dataset, seed=config.seed * len(datasets) + index),
            batch_size=config.batch_size // world,
            sampler=sampler,
            num_workers=config.num_workers,
            drop_last=True,
            pin_memory=device.type == "cuda",
            persistent_workers=config.num_workers > 0,
        )
        for index, (dataset, sampler) in enumerate(zip(datasets, samplers, strict=True))
    ]
    for dataset, loader in zip(datasets, loaders, strict=True):
        if len(loader) == 0:
            raise RawMambaError(f"a training set has {len(dataset)} items, fewer than one batch of {config.batch_size}")
    steps_per_epoch = sum(len(loader) for loader in loaders)
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16) if config.precision == "bf16" else nullcontext()
    )
    writer = _tensorboard(out_dir) if main_process else None
    describe = {"model_name": config.model, "model_args": model_args}

    def save(epoch: int) -> None:
        info = {"config": dataclasses.asdict(config), "step": step, "epoch": epoch}
        weights = {name: t.detach().cpu() for name, t in getattr(model, "module", model).state_dict().items()}
        train_state = {"optimizer": optimizer.state_dict(), "step": step, "epoch": epoch, "model": weights,
                       "rng": torch.get_rng_state()}
        if device.type == "cuda":
            train_state["cuda_rng"] = torch.cuda.get_rng_state(device)
        save_checkpoint(last, model, **describe, info=info, train_state=train_state)

    total_steps = config.max_steps or config.epochs * steps_per_epoch
    started = time.monotonic()
    done = step >= total_steps
    time_bound = config.max_minutes > 0 and not config.max_steps  # then the step count is no useful total
    progress = tqdm(total=None if time_bound else total_steps, initial=step, desc="train", disable=not main_process,
                    dynamic_ncols=True)
    model.train()
    for epoch in range(start_epoch, config.epochs):
        if done:
            break
        for sampler in samplers:
            sampler.set_epoch(epoch)  # the same order and augmentation again after a resume
        for group in optimizer.param_groups:
            group["lr"] = lr_at(epoch, config)
        skip = step - epoch * steps_per_epoch  # batches of this epoch already done before a resume
        for index, batch in enumerate(interleave(loaders)):
            if index < skip:
                continue
            with autocast:
                pred = forward_batch(model, batch, device)
            target = batch["raw"].to(device)
            loss = derender_loss(pred.float(), target, ssim_weight=config.ssim_weight)  # eq. 18
            if not torch.isfinite(loss):
                raise RawMambaError(f"the loss became {loss.item()} at step {step}; lower lr or check the data")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # DDP averages gradients across processes here (sync point)
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            step += 1
            progress.update(1)
            done = step >= total_steps or (step % config.log_every == 0 and _time_is_up(started, config, device))
            logged = step % config.log_every == 0
            mean_loss = _mean_over_processes(loss.detach()) if logged and world > 1 else loss.detach()
            if main_process:
                progress.set_postfix(loss=f"{loss.item():.4f}", epoch=epoch)
                if logged:
                    record = {
                        "step": step,
                        "epoch": epoch,
                        "loss": mean_loss.item(),  # of the global batch
                        "psnr": float(psnr(pred.detach().float().clamp(0, 1), target).mean()),
                        "lr": optimizer.param_groups[0]["lr"],
                        "seconds": round(time.monotonic() - started, 2),
                    }
                    with open(out_dir / "log.jsonl", "a") as log:
                        log.write(json.dumps(record) + "\n")
                    if writer:
                        for key in ("loss", "psnr", "lr"):
                            writer.add_scalar(f"train/{key}", record[key], step)
                if config.preview_every and step % config.preview_every == 0 and writer:
                    writer.add_image("train/pred_over_target", _preview(pred, target), step)
                if step % config.save_every == 0:
                    save(epoch)
            if done:
                break
        if main_process:
            save(epoch + 1 if step >= (epoch + 1) * steps_per_epoch else epoch)
    progress.close()
    if writer:
        writer.close()
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return last.with_suffix(".safetensors")


def _mean_over_processes(value: torch.Tensor) -> torch.Tensor:
    """The mean of ``value`` over the torchrun processes (sync point): the loss of the whole global batch."""
    total = value.clone()
    dist.all_reduce(total)
    return total / dist.get_world_size()


def _time_is_up(started: float, config: TrainConfig, device: torch.device) -> bool:
    """Whether ``max_minutes`` has passed; under torchrun every process takes process 0's answer."""
    if config.max_minutes <= 0:
        return False
    up = torch.tensor(float(time.monotonic() - started > 60 * config.max_minutes), device=device)
    if dist.is_initialized():
        dist.broadcast(up, src=0)  # sync point: all processes stop at the same step
    return bool(up.item())


def _tensorboard(out_dir: Path):
    """A TensorBoard writer, or None with a notice when the tensorboard package is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        print("tensorboard is not installed: training runs without TensorBoard logs (pip install tensorboard)")
        return None
    return SummaryWriter(str(out_dir / "tensorboard"))

