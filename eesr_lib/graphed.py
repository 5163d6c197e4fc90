"""One fold's training step and its scoring replayed from CUDA graphs (issue 18).

Why: on a GPU one training step of this small network is bound by kernel launches, not arithmetic
(benchmarks/README.md: ~33 ms a step of batch 32 on an H100, under 1 % of its peak). A CUDA graph
records the step's kernels once (forward, joint loss, backward, Adam) and replays them with one
launch from the host. What a graph needs, and how this module gives it:

- **Fixed shapes and addresses.** Each batch is copied into input tensors allocated once
  (``static``); the step's statistics are copied into one output tensor. A batch of another size
  (an epoch's last, smaller batch) runs eagerly on the same weights and optimizer: no recapture,
  and its numbers are the eager step's.
- **An optimizer that runs on the device.** ``torch.optim.Adam(capturable=True)`` keeps its step
  counts on the GPU, and the learning rate is a GPU tensor (:func:`eesr_lib.train.set_epoch_lr`
  fills it in place), so a cosine schedule needs no recapture either.
- **Warm-up before capture.** The first ``WARMUP_STEPS`` full batches run eagerly on a side
  stream (CUDA's rule: lazy initialization, cuDNN's choices and the allocator settle first). They
  are real training steps, so training is the eager recipe step for step; dropout draws from the
  same global generator, which graphs advance on each replay.
- **Autocast without its cast cache** (``autocast(..., cache=False)``, eager calls included): the cache's
  bf16 copies of the weights would outlive the capture. One consequence in bf16: a weight used several
  times in a step (on a CPU, the GRUs' weights, used at every time step) then gets its gradient summed
  in fp32 per use rather than in bf16 on the one cached copy, so the graphed recipe differs from the
  eager one in rounding (measured on a CPU: same loss, GRU gradients apart by ~2e-6, all other
  gradients identical; in fp32 the two are identical;
  ``benchmarks/run_gpu.py`` measures how far the loss curves part: ``graphs_loss_*``).

One mechanism serves every use (:class:`GraphedCall`): one fold's step (:func:`graphed_train_step`),
scoring (:func:`graphed_scorer`) and the stacked folds' vmapped step
(:func:`eesr_lib.batched.train_folds`). The capture itself is behind a small backend
(:class:`CudaGraphs`) so that the bookkeeping around it (static copies, which calls replay, what is
returned) is tested on a CPU with :class:`RerunGraphs`, whose "replay" runs the recorded function
again from the static tensors.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch

from .errors import EESRError
from .model import EESR
from .train import TrainConfig, autocast, epoch_lr, step_stats

WARMUP_STEPS = 3


def check_device(device: torch.device) -> None:
    if torch.device(device).type != "cuda":
        raise EESRError(f"CUDA graphs need a CUDA device; this run is on {device} (train with cuda_graphs=False there)")


def capturable_adam(model: EESR, cfg: TrainConfig, device: torch.device) -> torch.optim.Adam:
    """The paper's Adam with its state and learning rate on the device, as a CUDA graph can replay it."""
    lr = torch.tensor(epoch_lr(cfg, 0), device=device)
    return torch.optim.Adam(
        model.parameters(), lr=lr, betas=(cfg.beta1, cfg.beta2), weight_decay=cfg.weight_decay, capturable=True
    )


def make_capturable(opt: torch.optim.Adam, device: torch.device) -> None:
    """After ``load_state_dict`` (which restores the saved run's settings, perhaps eager ones): step counts
    and learning rate back on the device, capturable again."""
    for group in opt.param_groups:
        group["capturable"] = True
        if not torch.is_tensor(group["lr"]):
            group["lr"] = torch.tensor(float(group["lr"]), device=device)
        for p in group["params"]:
            state = opt.state.get(p, {})
            if "step" in state:
                state["step"] = state["step"].to(device=device, dtype=torch.float32)


class CudaGraphs:
    """Capture and replay with torch.cuda.graphs; warm-up on a side stream."""

    def __init__(self, device: torch.device):
        self.side = torch.cuda.Stream(device)

    @contextlib.contextmanager
    def side_stream(self) -> Iterator[None]:
        self.side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.side):
            yield
        torch.cuda.current_stream().wait_stream(self.side)

    def capture(self, body: Callable[[], None]) -> Callable[[], None]:
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            body()  # recorded, not run
        return graph.replay


class RerunGraphs:
    """A CPU stand-in with the semantics the module relies on: capture records and runs nothing; replay
    runs the recorded body, which reads only the static tensors."""

    side_stream = staticmethod(contextlib.nullcontext)

    def capture(self, body: Callable[[], None]) -> Callable[[], None]:
        return body


def graph_backend(device: torch.device, backend=None):
    """``backend`` if given (the tests' :class:`RerunGraphs`), else CUDA's, which needs a CUDA device."""
    if backend is not None:
        return backend
    check_device(device)
    return CudaGraphs(device)


class GraphedCall:
    """``call(*inputs)`` returns what ``fn(*inputs)`` returns (a tensor or a tuple of tensors), replaying a
    CUDA graph of ``fn`` whenever ``replayable(*inputs)`` holds (the shapes it was captured with);
    other calls run ``fn`` eagerly. ``fn`` must read nothing but its inputs, parameters and buffers that
    are updated in place, and must not wait for the device.

    Before the capture, ``WARMUP_STEPS`` replayable calls run eagerly on a side stream: for a training
    step these are real steps (which set the gradients to None first, so that the captured backward
    allocates them in the graph's memory pool). Outputs are returned as copies: the
    graph overwrites its own on the next replay. State is real here (static tensors, the graph, the
    counts), hence a class."""

    def __init__(self, fn: Callable, replayable: Callable[..., bool], backend):
        self.fn, self.replayable, self.backend = fn, replayable, backend
        self.eager_calls = self.warmups = self.replays = 0  # eager_calls: not replayable (warm-ups apart)
        self._replay: Callable[[], None] | None = None
        self._inputs: list[torch.Tensor | None] = []
        self._outputs = None

    def _body(self) -> None:
        """What the graph records. With a CUDA graph this runs once, inside the capture, and its outputs
        are the graph's; the CPU stand-in runs it at every replay, so it copies into the first outputs."""
        out = self.fn(*self._inputs)
        if self._outputs is None:
            self._outputs = out
        else:
            for mine, new in zip(_as_tuple(self._outputs), _as_tuple(out)):
                mine.copy_(new)

    def __call__(self, *inputs):
        if not self.replayable(*inputs):
            self.eager_calls += 1
            return self.fn(*inputs)
        if self._replay is None:
            if self.warmups < WARMUP_STEPS:
                self.warmups += 1
                with self.backend.side_stream():
                    return self.fn(*inputs)
            self._inputs = [None if a is None else a.clone() for a in inputs]
            self._replay = self.backend.capture(self._body)
        else:
            for mine, new in zip(self._inputs, inputs):
                if mine is not None:
                    mine.copy_(new)
        self._replay()
        self.replays += 1
        out = _as_tuple(self._outputs)
        copies = tuple(t.clone() for t in out)
        return copies if isinstance(self._outputs, tuple) else copies[0]


def _as_tuple(out) -> tuple:
    return out if isinstance(out, tuple) else (out,)


def graphed_train_step(model: EESR, opt, cfg: TrainConfig, device: torch.device, backend=None) -> GraphedCall:
    """:func:`eesr_lib.train.step_stats` (forward, joint loss, backward, Adam) replayed for every full batch
    of ``cfg.batch_size`` crops; an epoch's last, smaller batch runs eagerly (no recapture)."""

    def step(x, y, is10):
        return step_stats(model, opt, x, y, is10, cfg, device, cache=False)

    return GraphedCall(
        step,
        replayable=lambda x, *_: len(x) == cfg.batch_size,
        backend=graph_backend(torch.device(device), backend),
    )


def graphed_scorer(
    model: EESR, cfg: TrainConfig, device: torch.device, batch_size: int | None = None, backend=None
) -> GraphedCall:
    """``scorer(x, is10)`` = ``model.classify(x, is10)`` under the scoring precision (no labels, no decoder),
    replayed for batches of ``batch_size`` windows (default ``cfg.eval_batch_size``); for
    :func:`eesr_lib.train.predict_utterances`. The graph reads the weights where they live, so it stays
    valid while training updates them in place; it is captured in the mode the model is in when the
    capture happens (score in eval mode, as predict_utterances does)."""
    device = torch.device(device)
    size = batch_size or cfg.eval_batch_size

    def classify(x, is10):
        with torch.no_grad(), autocast(device, cfg.precision, cache=False):
            return model.classify(x, is10)

    return GraphedCall(classify, replayable=lambda x, *_: len(x) == size, backend=graph_backend(device, backend))
