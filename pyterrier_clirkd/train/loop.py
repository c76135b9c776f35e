"""The one training loop behind every trainer: batching, AdamW, schedules, mixed precision, checkpoints, resume,
NaN detection and data-parallel training with ``torchrun``.

An *objective* holds the trainable ``module`` and computes a loss over a micro-batch of example numbers::

    class MyObjective:
        module = model                              # every trainable parameter lives here
        def __len__(self): return len(examples)
        def signature(self): return {"kind": "mine"}    # what a resumed run must agree on
        def loss(self, forward, examples):           # forward: the module's forward, wrapped by DDP when distributed
            return ...                               # mean over these examples

    losses = train(MyObjective(), TrainingConfig(steps=100), output="out/", save=lambda p: model.save_pretrained(p))

Under ``torchrun --nproc_per_node N`` each process takes ``batch_size / N`` examples of every global batch
(gloo on CPU, nccl on GPU); the parameters match a single process with the same global batch.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import random
import shutil
from pathlib import Path
from typing import Callable, Optional, Protocol

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

STATE_NAME = "state.pt"
LOG_NAME = "losses.tsv"
SCHEDULES = ("constant", "warmup", "linear")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclasses.dataclass
class TrainingConfig:
    """Settings of a training run (every field but ``verbose`` and ``checkpoint_every`` must match to resume).

    ``batch_size`` counts examples per optimizer step over all processes; each process splits its share into
    ``accumulation`` micro-batches. ``schedule``: "constant", "warmup" (linear warm-up over ``warmup_steps``, then
    constant) or "linear" (warm-up, then linear decay to zero). ``precision``: "auto" (bf16, or fp16 where the GPU
    lacks bf16, autocast on GPU; fp32 on CPU), "fp32", "bf16" or "fp16" (GPU only).

    Example::

        config = TrainingConfig(steps=1000, batch_size=32, lr=3e-5, schedule="warmup", warmup_steps=100)
    """

    steps: int = 1000
    batch_size: int = 32
    accumulation: int = 1
    lr: float = 3e-6
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_steps: int = 0
    max_grad_norm: Optional[float] = 2.0
    precision: str = "auto"
    seed: int = 12345
    checkpoint_every: int = 100
    verbose: bool = True

    def __post_init__(self):
        for name in ("steps", "batch_size", "accumulation", "checkpoint_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, not {self.lr}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, not {self.schedule!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {self.precision!r}")
        if self.warmup_steps < 0 or (self.schedule != "constant" and self.warmup_steps >= self.steps):
            raise ValueError(f"warmup_steps must be between 0 and steps - 1, not {self.warmup_steps}")


class Objective(Protocol):
    module: torch.nn.Module

    def __len__(self) -> int: ...

    def signature(self) -> dict: ...

    def loss(self, forward: Callable, examples: list[int]) -> torch.Tensor: ...


def setup_distributed() -> tuple[int, int, torch.device]:
    """``(rank, world_size, device)``: joins the ``torchrun`` process group when ``WORLD_SIZE`` > 1 (nccl on GPU,
    gloo on CPU); a single process otherwise. Call before moving models to the device.

    Example::

        rank, world, device = setup_distributed()
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), device
    return 0, 1, device


def train(objective: Objective, config: TrainingConfig, output: str | os.PathLike,
          save: Callable[[Path], None], checkpoint_dir: Optional[str | os.PathLike] = None) -> list[float]:
    """Train ``objective.module`` for ``config.steps`` optimizer steps, then ``save(output)`` (on rank 0).

    Checkpoints (trainable weights, optimizer, scheduler, loss scaler and every process's RNG state) go to
    ``checkpoint_dir`` (default: ``{output}.checkpoint``) every ``config.checkpoint_every`` steps, atomically; a
    run started again with the same settings resumes from the last one and reproduces the same losses. The
    checkpoint folder is removed after the final save, whose folder gets the per-step losses as ``losses.tsv``.
    Returns the loss of every step (rank 0; other ranks return an empty list). A loss that is not finite stops
    training with a ``FloatingPointError`` before the weights change.

    Example::

        losses = train(objective, TrainingConfig(steps=200), "student/", save=model.save_pretrained)
    """
    rank, world, device = setup_distributed()
    if config.batch_size % world:
        raise ValueError(f"batch_size {config.batch_size} does not split evenly over {world} processes")
    local_batch = config.batch_size // world
    if local_batch < config.accumulation:
        raise ValueError(f"each process gets {local_batch} examples a step, fewer than accumulation="
                         f"{config.accumulation} micro-batches")
    if len(objective) < 1:
        raise ValueError("no training examples")
    output = Path(output)
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else output.with_name(output.name + ".checkpoint")
    signature = _signature(objective, config, world)
    module = objective.module
    named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError("the objective's module has no trainable parameters")
    optimizer = torch.optim.AdamW([p for _, p in named], lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(config))
    dtype = _autocast_dtype(config.precision, device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    forward = module
    if world > 1:
        forward = torch.nn.parallel.DistributedDataParallel(
            module, device_ids=[device.index] if device.type == "cuda" else None, broadcast_buffers=False)

    start = _resume(checkpoint_dir, signature, named, optimizer, scheduler, scaler, rank, world, config.seed)
    log = _open_log(checkpoint_dir, start) if rank == 0 else None
    sampler = _Sampler(len(objective), config.batch_size, config.seed)
    module.train()
    bar = tqdm(total=config.steps, initial=start, desc="training", unit="step",
               disable=not config.verbose or rank != 0, dynamic_ncols=True)
    running = None
    try:
        for step in range(start, config.steps):
            local = sampler.batch(step)[rank * local_batch:(rank + 1) * local_batch]
            chunks = np.array_split(np.asarray(local), config.accumulation)
            total = torch.zeros((), device=device)
            for m, chunk in enumerate(chunks):
                sync = forward.no_sync() if world > 1 and m < len(chunks) - 1 else contextlib.nullcontext()
                with sync:
                    with _autocast(device, dtype):
                        loss = objective.loss(forward, chunk.tolist()) * (len(chunk) / local_batch)
                    scaler.scale(loss).backward()
                total += loss.detach().float()
            if world > 1:
                dist.all_reduce(total)
                total /= world
            value = total.item()
            if not math.isfinite(value):
                raise FloatingPointError(f"the training loss is {value} at step {step + 1}: stopped before updating "
                                         f"the weights (try a lower learning rate, or precision='fp32'); the last "
                                         f"checkpoint is in {checkpoint_dir}")
            if config.max_grad_norm is not None:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_([p for _, p in named], config.max_grad_norm)
            lr = scheduler.get_last_lr()[0]
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if log is not None:
                log.write(f"{step + 1}\t{value!r}\t{lr!r}\n")
                log.flush()
            running = value if running is None else 0.95 * running + 0.05 * value
            bar.set_postfix(loss=f"{running:.4g}")
            bar.update(1)
            if (step + 1) % config.checkpoint_every == 0 and step + 1 < config.steps:
                _save_checkpoint(checkpoint_dir, signature, step + 1, named, optimizer, scheduler, scaler, rank, world)
    finally:
        bar.close()
        if log is not None:
            log.close()
    module.eval()
    losses = []
    if rank == 0:
        save(output)
        shutil.copyfile(checkpoint_dir / LOG_NAME, output / LOG_NAME)
        losses = read_losses(output / LOG_NAME)
        shutil.rmtree(checkpoint_dir)
    if world > 1:
        dist.barrier()
    return losses


def read_losses(path: str | os.PathLike) -> list[float]:
    """The per-step losses of a ``losses.tsv`` written by :func:`train`.

    Example::

        read_losses("student/losses.tsv")[-10:]
    """
    return [float(line.split("\t")[1]) for line in Path(path).read_text().splitlines() if line.strip()]


class _Sampler:
    """Global batches of example numbers: a fresh seeded permutation each epoch, so step ``s`` always gets the same
    examples (what makes resuming exact without saving the sampler)."""

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self._epoch, self._order = -1, None

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._order = epoch, torch.randperm(self.n, generator=generator).numpy()
        return self._order

    def batch(self, step: int) -> list[int]:
        out = []
        position = step * self.batch_size
        while len(out) < self.batch_size:
            epoch, offset = divmod(position, self.n)
            take = min(self.batch_size - len(out), self.n - offset)
            out.extend(self._permutation(epoch)[offset:offset + take].tolist())
            position += take
        return out


def _schedule(config: TrainingConfig) -> Callable[[int], float]:
    warmup, steps, kind = config.warmup_steps, config.steps, config.schedule

    def factor(step: int) -> float:
        if kind == "constant":
            return 1.0
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if kind == "warmup":
            return 1.0
        return max(0.0, (steps - step) / max(1, steps - warmup))
    return factor


def _autocast_dtype(precision: str, device: torch.device) -> Optional[torch.dtype]:
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("precision='fp16' needs a GPU; use 'fp32' (or 'bf16') on CPU")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def _autocast(device: torch.device, dtype: Optional[torch.dtype]):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def _signature(objective: Objective, config: TrainingConfig, world: int) -> dict:
    settings = {k: v for k, v in dataclasses.asdict(config).items() if k not in ("verbose", "checkpoint_every")}
    return json.loads(json.dumps({"config": settings, "objective": objective.signature(), "world_size": world,
                                  "examples": len(objective)}))


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def _save_checkpoint(folder: Path, signature: dict, step: int, named, optimizer, scheduler, scaler,
                     rank: int, world: int) -> None:
    rng = [None] * world
    if world > 1:
        dist.all_gather_object(rng, _rng_state())
    else:
        rng[0] = _rng_state()
    if rank == 0:
        state = {"signature": signature, "step": step, "rng": rng,
                 "weights": {n: p.detach().cpu() for n, p in named},
                 "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                 "scaler": scaler.state_dict()}
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{STATE_NAME}.tmp-{os.getpid()}"
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, folder / STATE_NAME)
    if world > 1:
        dist.barrier()


def _resume(folder: Path, signature: dict, named, optimizer, scheduler, scaler, rank: int, world: int,
            seed: int) -> int:
    """Load the checkpoint in ``folder`` if there is one (returns its step), else seed every RNG (returns 0)."""
    path = folder / STATE_NAME
    if not path.exists():
        _seed_everything(seed + rank)
        return 0
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state["signature"] != signature:
        differ = sorted(_differences(state["signature"], signature))
        raise ValueError(f"{folder} holds a checkpoint of a different run (it differs in {', '.join(differ)}); "
                         f"delete it to start afresh, or give a different output")
    with torch.no_grad():
        for name, p in named:
            p.copy_(state["weights"][name].to(p.device))
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    _set_rng_state(state["rng"][rank])
    return state["step"]


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key} ({a!r} -> {b!r})")
    return out


def _open_log(folder: Path, start: int):
    """The per-step loss log, cut back to the resumed step (steps after the last checkpoint are done again)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOG_NAME
    kept = []
    if start and path.exists():
        kept = [line for line in path.read_text().splitlines() if line and int(line.split("\t")[0]) <= start]
    path.write_text("".join(line + "\n" for line in kept))
    return open(path, "a")
