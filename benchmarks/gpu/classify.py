"""EfficientNet-Lite0 classification throughput (forward + softmax + the 16-category decision of
:func:`nstcore.classify.category_probabilities`), images per second:

* ``pre_decoded``: the images already decoded, preprocessed and on the device;
* ``parallel_decode``: from PNG files, decoded and preprocessed (Pillow, which releases the GIL while
  decoding) by a thread pool, batches pinned and copied asynchronously while the device runs the
  previous batch: what a classification actor can sustain end to end;
* ``decode_only``: the thread pool's decoding rate alone (the ceiling of ``parallel_decode``);
* ``parallel_decode_processes`` / ``decode_only_processes``: the same with a pool of processes (spawned,
  one torch thread each) that return the prepared images as uint8, converted to float on the device. On
  an H200 node the thread pool reached 980 img/s with 16 threads, about two threads' worth (then each
  thread's ``pil_to_tensor`` entered torch's 16-thread intra-op pool; it is numpy now).

Random weights (seed 0; the same FLOPs as the ImageNet ones, and the GPU machine has no network).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from PIL import Image

from benchmarks.gpu.timing import sync
from nstcore.backbones import create_backbone
from nstcore.classify import category_probabilities

__all__ = ["run_classify_suite"]


def _decode(path: Path, prepare) -> torch.Tensor:
    with Image.open(path) as img:
        return prepare(img.convert("RGB"))


def _one_thread() -> None:
    torch.set_num_threads(1)


def _decode_uint8(path: Path, prepare):  # noqa: ANN202 - a numpy array (plain pickling between processes)
    """A decoding process's work: the prepared image as ``[3, H, W]`` uint8 (a quarter of float32's bytes)."""
    return (_decode(path, prepare) * 255.0).round_().to(torch.uint8).numpy()


def run_classify_suite(paths: Sequence[Path], *, device: torch.device, batch: int, n_images: int, workers: int,
                       autocast: str = "bfloat16", channels_last: bool = True, log=print) -> dict:
    net = create_backbone("efficientnet_lite0", weights="random", seed=0, device=device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    prepare = net.preprocessing.prepare
    dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(autocast)
    files = list(itertools.islice(itertools.cycle(paths), n_images))

    def forward(x: torch.Tensor) -> torch.Tensor:
        x = net.normalize(x)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            logits = net.logits(x)
        return category_probabilities(logits.float().softmax(dim=1))

    with ThreadPoolExecutor(workers) as pool:
        decoded = list(pool.map(lambda p: _decode(p, prepare), files[: min(len(files), batch)]))
        # decode-only rate
        t0 = time.perf_counter()
        for _ in pool.map(lambda p: _decode(p, prepare), files):
            pass
        decode_only = len(files) / (time.perf_counter() - t0)

        # pre-decoded: one batch resident on the device, run n_images / batch times
        x = torch.stack((decoded * (batch // len(decoded) + 1))[:batch]).to(device)
        for _ in range(3):
            forward(x)
        sync(device)
        reps = max(1, n_images // batch)
        t0 = time.perf_counter()
        for _ in range(reps):
            out = forward(x)
        sync(device)
        pre_decoded = reps * batch / (time.perf_counter() - t0)

        # parallel decode, pipelined: decode batch k+1 while the device runs batch k
        chunks = [files[i : i + batch] for i in range(0, len(files), batch)]
        pin = device.type == "cuda"

        def load(chunk: list[Path]) -> torch.Tensor:
            t = torch.stack(list(pool.map(lambda p: _decode(p, prepare), chunk)))
            return t.pin_memory() if pin else t

        parallel, out = _pipelined_rate(load, chunks, lambda host: forward(host.to(device, non_blocking=True)),
                                        device=device, n_images=len(files))
    processes = _process_rates(files, chunks, prepare, forward, device=device, workers=workers, pin=pin)
    assert out.shape[1] == 16
    row = {"model": "efficientnet_lite0", "weights": "random-seed0", "batch": batch, "images": len(files),
           "workers": workers, "autocast": autocast, "channels_last": channels_last,
           "pre_decoded_images_per_s": pre_decoded, "parallel_decode_images_per_s": parallel,
           "decode_only_images_per_s": decode_only, **processes}
    log(f"classify lite0 B={batch}: pre-decoded {pre_decoded:.0f} img/s, parallel decode ({workers} threads) "
        f"{parallel:.0f} img/s, decode alone {decode_only:.0f} img/s; {workers} processes: "
        f"{processes['parallel_decode_processes_images_per_s']:.0f} img/s, decode alone "
        f"{processes['decode_only_processes_images_per_s']:.0f} img/s")
    return row


def _process_rates(files: list[Path], chunks: list[list[Path]], prepare, forward, *, device: torch.device,
                   workers: int, pin: bool) -> dict:
    """Decoding rates with ``workers`` spawned processes (uint8 to the device, float there)."""
    import functools
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import numpy as np

    decode = functools.partial(_decode_uint8, prepare=prepare)
    chunksize = max(1, min(16, len(files) // (4 * workers)))
    ctx = multiprocessing.get_context("spawn")  # never fork a process that holds a CUDA context
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_one_thread) as pool:
        list(pool.map(decode, files[: 2 * workers]))  # start-up (imports) untimed
        t0 = time.perf_counter()
        for _ in pool.map(decode, files, chunksize=chunksize):
            pass
        decode_only = len(files) / (time.perf_counter() - t0)

        def load(chunk: list[Path]) -> torch.Tensor:
            t = torch.from_numpy(np.stack(list(pool.map(decode, chunk, chunksize=chunksize))))
            return t.pin_memory() if pin else t

        parallel, out = _pipelined_rate(
            load, chunks, lambda host: forward(host.to(device, non_blocking=True).float().div_(255.0)),
            device=device, n_images=len(files))
    assert out.shape[1] == 16
    return {"process_workers": workers, "parallel_decode_processes_images_per_s": parallel,
            "decode_only_processes_images_per_s": decode_only}


def _pipelined_rate(load, chunks: list[list[Path]], run, *, device: torch.device, n_images: int
                    ) -> tuple[float, torch.Tensor]:
    """Images per second of ``run(load(chunk))`` over ``chunks`` with chunk k+1 loading (in a feeder
    thread) while the device runs chunk k; and the last output."""
    with ThreadPoolExecutor(1) as feeder:
        sync(device)
        t0 = time.perf_counter()
        pending = feeder.submit(load, chunks[0])
        for k in range(len(chunks)):
            host = pending.result()
            if k + 1 < len(chunks):
                pending = feeder.submit(load, chunks[k + 1])
            out = run(host)
        sync(device)
        return n_images / (time.perf_counter() - t0), out
