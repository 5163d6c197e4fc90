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

The capture itself is behind a small backend (:class:`CudaGraphs`) so that the bookkeeping around
it (static copies, which batches replay, what is returned) is tested on a CPU with
:class:`RerunGraphs`, whose "replay" runs the recorded step again from the static tensors.
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
        raise EESRError(f"CUDA graphs need a CUDA device; this run is on {device} (drop --cuda-graphs there)")


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


def _backend(device: torch.device, backend):
    if backend is not None:
        return backend
    check_device(device)
    return CudaGraphs(device)


class GraphedTrainStep:
    """``step(x, y, is10)`` does what :func:`eesr_lib.train.step_stats` does and returns the same tensor
    (a copy of the graph's output), replaying a CUDA graph for batches of ``cfg.batch_size``.

    State is real here (static tensors, the graph, the warm-up count), hence a class."""

    def __init__(self, model: EESR, opt: torch.optim.Optimizer, cfg: TrainConfig, device: torch.device, backend=None):
        self.model, self.opt, self.cfg, self.device = model, opt, cfg, torch.device(device)
        self.backend = _backend(self.device, backend)
        self.eager_steps = 0  # warm-up and odd-sized batches
        self.replays = 0
        self._replay: Callable[[], None] | None = None
        self._static: dict[str, torch.Tensor | None] = {}

    def _eager(self, x, y, is10) -> torch.Tensor:
        self.eager_steps += 1
        return step_stats(self.model, self.opt, x, y, is10, self.cfg, self.device)

    def _body(self) -> None:
        s = self._static
        stats = step_stats(self.model, self.opt, s["x"], s["y"], s["is10"], self.cfg, self.device, cache=False)
        s["out"].copy_(stats)

    def _fill(self, x, y, is10) -> None:
        if not self._static:
            self._static = {
                "x": torch.empty_like(x),
                "y": torch.empty_like(y),
                "is10": None if is10 is None else torch.empty_like(is10),
                "out": torch.zeros(3, device=x.device),
            }
        self._static["x"].copy_(x)
        self._static["y"].copy_(y)
        if is10 is not None:
            self._static["is10"].copy_(is10)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, is10: torch.Tensor | None) -> torch.Tensor:
        if len(y) != self.cfg.batch_size:
            return self._eager(x, y, is10)
        if self._replay is None:
            if self.eager_steps < WARMUP_STEPS:
                with self.backend.side_stream():
                    return self._eager(x, y, is10)
            self._fill(x, y, is10)
            self.opt.zero_grad(set_to_none=True)  # gradients are then allocated inside the graph's pool
            self._replay = self.backend.capture(self._body)
        else:
            self._fill(x, y, is10)
        self._replay()
        self.replays += 1
        return self._static["out"].clone()


class GraphedScorer:
    """``scorer(x, is10)`` is ``model.classify(x, is10)`` under the scoring precision (no labels, no
    decoder), replayed from a CUDA graph for batches of ``batch_size`` windows; other sizes run eagerly.
    The graph reads the model's weights where they live, so it stays valid while training updates them in
    place. Capture with the model in eval mode (dropout off, batch norm's running statistics), as
    :func:`eesr_lib.train.predict_utterances` scores."""

    def __init__(
        self, model: EESR, cfg: TrainConfig, device: torch.device, batch_size: int | None = None, backend=None
    ):
        self.model, self.cfg, self.device = model, cfg, torch.device(device)
        self.batch_size = batch_size or cfg.eval_batch_size
        self.backend = _backend(self.device, backend)
        self.eager_calls = self.replays = 0
        self._replay: Callable[[], None] | None = None
        self._static: dict[str, torch.Tensor | None] = {}

    def _classify(self, x, is10, cache: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad(), autocast(self.device, self.cfg.precision, cache):
            return self.model.classify(x, is10)

    def _body(self) -> None:
        s = self._static
        logits, deep = self._classify(s["x"], s["is10"], cache=False)
        s["logits"].copy_(logits)
        s["deep"].copy_(deep)

    def __call__(self, x: torch.Tensor, is10: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        if len(x) != self.batch_size or (self._replay is None and self.eager_calls < WARMUP_STEPS):
            self.eager_calls += 1
            if len(x) != self.batch_size:
                return self._classify(x, is10)
            with self.backend.side_stream():
                return self._classify(x, is10)
        if self._replay is None:
            logits, deep = self._classify(x, is10)  # output shapes and dtypes for the static outputs
            self._static = {
                "x": x.clone(),
                "is10": None if is10 is None else is10.clone(),
                "logits": torch.empty_like(logits),
                "deep": torch.empty_like(deep),
            }
            self._replay = self.backend.capture(self._body)
        self._static["x"].copy_(x)
        if is10 is not None:
            self._static["is10"].copy_(is10)
        self._replay()
        self.replays += 1
        return self._static["logits"].clone(), self._static["deep"].clone()
