"""The one training loop every stage uses, on ``accelerate`` (CPU, one GPU, many GPUs/nodes).

Distribution, mixed precision (bf16 autocast, also on CPU) and gradient clipping come from
``accelerate``; this file adds EMA, a CSV log, a wall-clock budget and resumable
safetensors state. A stage is just ``step_fn(batch) -> (loss, parts)``.

Multi-process (``accelerate launch --num_processes N``): a step calls the model through several
methods (``encode_conditions``, ``encode_context``, ``forward``), not only the wrapped module's
``forward``, so a DistributedDataParallel wrapper would not see them. Data parallelism is
therefore explicit: every process holds the whole model, computes the loss of its slice of the
global batch, and the gradients are averaged with one bucketed all-reduce before clipping —
the same update as one process on the whole batch. Sharding engines (DeepSpeed, FSDP) get the
model through ``accelerator.prepare`` and reduce gradients themselves. Only the main process
writes the log and the state; the others wait for it.
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from accelerate import Accelerator, PartialState
from accelerate.utils import DistributedType
from diffusers.training_utils import EMAModel

from .checkpoint import has_state, load_state, save_state

logger = logging.getLogger(__name__)


@dataclass
class LoopSettings:
    steps: int
    lr: float
    bf16: bool = True
    ema_decay: float | None = 0.995
    grad_clip: float = 1.0
    log_every: int = 20
    save_every: int = 100
    max_minutes: float | None = None


class CsvLog:
    """Appends one row per log step; survives resumes (rows keep accumulating)."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, row: dict) -> None:
        new = not self.path.exists()
        with self.path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)


def make_accelerator(bf16: bool) -> Accelerator:
    return Accelerator(mixed_precision="bf16" if bf16 else "no", cpu=not torch.cuda.is_available())


def training_device() -> torch.device:
    """This process's device under accelerate (its GPU in a multi-GPU launch), known before ``train``."""
    return PartialState(cpu=not torch.cuda.is_available()).device


def process_slot() -> tuple[int, int]:
    """(this process's index, number of processes) of the launch; (0, 1) for a plain run."""
    state = PartialState(cpu=not torch.cuda.is_available())
    return state.process_index, state.num_processes


def is_main_process() -> bool:
    return process_slot()[0] == 0


def wait_for_everyone() -> None:
    PartialState(cpu=not torch.cuda.is_available()).wait_for_everyone()


def average_gradients(parameters: list[torch.nn.Parameter], world: int) -> None:
    """Mean of every parameter's gradient over the processes: one all-reduce of a flat buffer."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
        offset += grad.numel()


def _prepare(accelerator: Accelerator, model: torch.nn.Module, optimizer) -> tuple[torch.nn.Module, object, bool]:
    """(model, optimizer, whether ``train`` must average gradients itself) for this launch."""
    if accelerator.num_processes == 1 or accelerator.distributed_type in (
        DistributedType.DEEPSPEED,
        DistributedType.FSDP,
    ):
        model, optimizer = accelerator.prepare(model, optimizer)
        return model, optimizer, False
    return model.to(accelerator.device), accelerator.prepare(optimizer), True


def train(
    name: str,
    folder: Path,
    model: torch.nn.Module,
    parameters: list[torch.nn.Parameter] | list[dict],
    batches: Iterator,
    step_fn: Callable[[object], tuple[torch.Tensor, dict]],
    settings: LoopSettings,
) -> torch.nn.Module:
    """Train ``parameters`` of ``model`` for ``settings.steps``; returns the model with EMA weights.

    ``parameters`` may be optimizer parameter groups (dicts with ``params`` and their own ``lr``).
    """
    accelerator = make_accelerator(settings.bf16)
    optimizer = torch.optim.AdamW(parameters, lr=settings.lr, weight_decay=0.0)
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    for param in model.parameters():
        param.requires_grad_(False)
    for param in parameters:
        param.requires_grad_(True)
    model, optimizer, sync_gradients = _prepare(accelerator, model, optimizer)
    main = accelerator.is_main_process
    ema = EMAModel(parameters, decay=settings.ema_decay) if settings.ema_decay else None
    state_dir = folder / "state"
    step = load_state(state_dir, model, optimizer, ema) if has_state(state_dir) else 0
    if step:
        logger.info("%s: resuming at step %d", name, step)
    log, started = CsvLog(folder / "log.csv") if main else None, time.monotonic()
    while step < settings.steps:
        with accelerator.autocast():
            loss, parts = step_fn(next(batches))
        accelerator.backward(loss)
        if sync_gradients:
            average_gradients(parameters, accelerator.num_processes)
        accelerator.clip_grad_norm_(parameters, settings.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if ema is not None:
            ema.step(parameters)
        step += 1
        minutes = (time.monotonic() - started) / 60
        out_of_time = settings.max_minutes is not None and minutes >= settings.max_minutes
        if accelerator.num_processes > 1:  # every process stops at the same step
            out_of_time = bool(accelerator.reduce(torch.tensor(float(out_of_time), device=accelerator.device), "sum"))
        if step % settings.log_every == 0 or step == settings.steps or out_of_time:
            mean_loss = accelerator.reduce(loss.detach().float(), "mean").item()  # over the whole global batch
            if main:
                row = {"step": step, "loss": round(mean_loss, 6), **{k: round(v, 6) for k, v in parts.items()}}
                log.write({**row, "minutes": round(minutes, 2)})
                logger.info("%s step %d loss %.4f (%.1f min)", name, step, mean_loss, minutes)
        if step % settings.save_every == 0 or step == settings.steps or out_of_time:
            if main:
                save_state(state_dir, model, optimizer, ema, step, {"minutes": minutes})
            accelerator.wait_for_everyone()
        if out_of_time:
            logger.warning("%s: wall-clock budget of %.0f min reached at step %d", name, settings.max_minutes, step)
            break
    if ema is not None:
        ema.copy_to(parameters)
    return accelerator.unwrap_model(model)
