"""The network of Zhang & Xue (2021), §III, in one file: encoder, emotion-embedding decoder,
attention + IS10 classifier. Shapes in comments are for one 128-frame crop, batch B.

The layer sizes are the paper's Tables 1-3. Where the tables leave a detail open, we
follow the voice-conversion autoencoder they come from (Chou et al., 2018: "Multi-target
voice conversion without parallel data by adversarially learning disentangled audio
representations"): reflect padding that keeps the length, leaky ReLU (slope 0.2), the
conv-block / dense-block structure with residuals, pixel-shuffle upsampling in the
decoder. Every such choice is a field of :class:`ModelConfig`, and ``docs_choices`` in the
book lists them in one place.

The paper's words next to the code:

    "x' = decoder(encoder(x), y)"                          (eq. 1)  -> EESR.forward
    "L_Total = L_AE + λ L_EC"                              (eq. 4)  -> eesr_lib.train.joint_loss
    "we replace BN with instance normalization (IN)"               -> ModelConfig.norm
    "Emb1-5 ... map an emotion to a 512-dimensional latent"        -> Decoder.emb
    "we concatenate the deep attention emotion feature ... and acoustic features" -> Classifier
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import EESRError

NORMS = ("instance", "batch", "none")
POOLINGS = ("mean", "max", "meanmax", "flatten")


@dataclass(frozen=True)
class ModelConfig:
    n_classes: int = 7
    n_bins: int = 513  # spectrogram bins (n_fft/2 + 1)
    crop_frames: int = 128
    is10_dim: int = 1582
    use_is10: bool = True  # False: the paper's "-OS" rows (no openSMILE features)
    emotion_embedding: bool = True  # False: the same decoder with no embeddings added
    norm: str = "instance"  # "instance" (the paper), "batch" or "none" (ablations without IN)
    leaky_slope: float = 0.2  # Chou et al.'s value; the paper gives none
    dropout: float = 0.5  # Table 1 "Dropout1-6 p=0.5", Table 3 "Dropout1-2 p=0.5"
    attention_heads: int = 1  # Table 3: "num_heads 1 (Best Performance)"
    pooling: str = "mean"  # how the 16 attended frames become one vector (the paper is silent)
    classifier_dropout: float = 0.5
    # Multiplier on the standardized IS10 vector before fusion (the paper does not say how IS10
    # is scaled). Under Adam a smaller scale slows the IS10 weights relative to the deep ones.
    is10_scale: float = 1.0
    # A linear classifier on the deep feature alone, trained only when TrainConfig.aux_loss > 0
    # (a departure from the paper; never used to classify). Set by eesr_lib.variants.configs.
    aux_head: bool = False

    def __post_init__(self):
        if self.norm not in NORMS:
            raise EESRError(f"norm must be one of {NORMS}, got '{self.norm}'")
        if self.pooling not in POOLINGS:
            raise EESRError(f"pooling must be one of {POOLINGS}, got '{self.pooling}'")
        if self.is10_scale <= 0:
            raise EESRError(f"is10_scale must be positive, got {self.is10_scale}")
        if self.n_classes < 2:
            raise EESRError(f"n_classes must be at least 2, got {self.n_classes}")

    @property
    def latent_frames(self) -> int:
        return self.crop_frames // 8  # three stride-2 blocks: 128 -> 64 -> 32 -> 16

    @property
    def deep_dim(self) -> int:
        """Width of the pooled attention feature. The paper's FC1 takes 2478 = 1582 + 896
        inputs; 896 follows from none of its stated shapes (512 channels x 16 frames), so we
        let the pooling decide: mean or max -> 512, mean+max -> 1024, flatten -> 8192."""
        return {"mean": 512, "max": 512, "meanmax": 1024, "flatten": 512 * self.latent_frames}[self.pooling]


# ------------------------------------------------------------------ building blocks


def pad_same(x: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Reflect-pad ``(B, C, T)`` so a stride-1 conv of ``kernel_size`` keeps T (even k: one less right)."""
    left = kernel_size // 2
    right = left - 1 if kernel_size % 2 == 0 else left
    return F.pad(x, (left, right), mode="reflect") if kernel_size > 1 else x


def pixel_shuffle_1d(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """``(B, factor*C, T) -> (B, C, factor*T)``: channels become time steps (sub-pixel upsampling)."""
    b, c, t = x.shape
    return x.view(b, c // factor, factor, t).permute(0, 1, 3, 2).reshape(b, c // factor, t * factor)


def make_norm(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm1d(channels)  # per sample, per channel, over time; no affine (Chou et al.)
    if kind == "batch":
        return nn.BatchNorm1d(channels)
    return nn.Identity()


class Conv(nn.Conv1d):
    """Conv1d with length-preserving reflect padding (stride 2 halves the length)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(pad_same(x, self.kernel_size[0]))


def per_frame(linear: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """Apply a Linear to every frame of ``(B, C, T)``."""
    return linear(x.transpose(1, 2)).transpose(1, 2)


# ------------------------------------------------------------------ encoder (Table 1, Fig. 3)


class Encoder(nn.Module):
    """``(B, 513, 128)`` log-magnitude crop -> ``(B, 512, 16)`` latent sequence."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c_in, c_bank, c = cfg.n_bins, 128, 512
        self.act = nn.LeakyReLU(cfg.leaky_slope)
        self.conv1s = nn.ModuleList([Conv(c_in, c_bank, k) for k in range(1, 9)])  # Conv1-1..Conv1-8
        self.conv2 = Conv(8 * c_bank + c_in, c, 1)  # 1537 -> 512
        self.conv3, self.conv4 = Conv(c, c, 5), Conv(c, c, 5, stride=2)
        self.conv5, self.conv6 = Conv(c, c, 5), Conv(c, c, 5, stride=2)
        self.conv7, self.conv8 = Conv(c, c, 5), Conv(c, c, 5, stride=2)
        self.fc1, self.fc2, self.fc3, self.fc4 = (nn.Linear(c, c) for _ in range(4))
        self.gru = nn.GRU(c, 128, batch_first=True, bidirectional=True)
        self.fc5 = nn.Linear(c + 2 * 128, c)  # 768 -> 512
        self.norms = nn.ModuleList([make_norm(cfg.norm, c) for _ in range(5)])
        self.drop = nn.Dropout(cfg.dropout)  # Dropout1-6: one module, applied six times

    def conv_block(self, x, conv_a, conv_b, norm):
        out = self.act(conv_b(self.act(conv_a(x))))  # (B, 512, T/2)
        out = self.drop(norm(out))
        return out + F.avg_pool1d(x, 2)  # residual: the block input, 2x average-pooled

    def dense_block(self, x, fc_a, fc_b, norm):
        out = self.act(per_frame(fc_b, self.act(per_frame(fc_a, x))))
        return self.drop(norm(out)) + x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bank = [conv(x) for conv in self.conv1s]  # 8 x (B, 128, 128)
        out = self.act(torch.cat(bank + [x], dim=1))  # (B, 1537, 128)
        out = self.act(self.conv2(out))  # (B, 512, 128)
        out = self.conv_block(out, self.conv3, self.conv4, self.norms[0])  # (B, 512, 64)
        out = self.conv_block(out, self.conv5, self.conv6, self.norms[1])  # (B, 512, 32)
        out = self.conv_block(out, self.conv7, self.conv8, self.norms[2])  # (B, 512, 16)
        out = self.dense_block(out, self.fc1, self.fc2, self.norms[3])  # (B, 512, 16)
        out = self.dense_block(out, self.fc3, self.fc4, self.norms[4])  # (B, 512, 16)
        rnn, _ = self.gru(out.transpose(1, 2))  # (B, 16, 256)
        out = torch.cat([out, rnn.transpose(1, 2)], dim=1)  # (B, 768, 16)
        return self.drop(self.act(per_frame(self.fc5, out)))  # (B, 512, 16)


# ------------------------------------------------------------------ decoder (Table 2, Fig. 4)


class Decoder(nn.Module):
    """``(B, 512, 16)`` latent + emotion label -> ``(B, 513, 128)`` reconstruction.

    The emotion-embedding path: five ``Embedding(n_classes, 512)`` tables (Emb1-5). Each
    conv block adds its embedding before the upsampling conv and again after the pixel
    shuffle; the dense blocks add Emb4 before each Linear; Emb5 is added before the GRU
    and concatenated after it. With ``emotion_embedding=False`` nothing is added (the
    ablation), and the concatenated Emb5 slot is zeros so the shapes stay those of Table 2.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c = 512
        self.use_emb = cfg.emotion_embedding
        self.act = nn.LeakyReLU(cfg.leaky_slope)
        self.conv1, self.conv2 = Conv(c, 2 * c, 3), Conv(c, c, 3)
        self.conv3, self.conv4 = Conv(c, 2 * c, 3), Conv(c, c, 3)
        self.conv5, self.conv6 = Conv(c, 2 * c, 3), Conv(c, c, 3)
        self.fc1, self.fc2, self.fc3, self.fc4 = (nn.Linear(c, c) for _ in range(4))
        self.gru = nn.GRU(c, 256, batch_first=True, bidirectional=True)
        self.fc5 = nn.Linear(c + 2 * 256 + c, c)  # 1536 -> 512
        self.fc6 = nn.Linear(c, cfg.n_bins)  # 512 -> 513
        self.norms = nn.ModuleList([make_norm(cfg.norm, c) for _ in range(5)])
        self.emb = nn.ModuleList([nn.Embedding(cfg.n_classes, c) for _ in range(5)])  # Emb1-5

    def embed(self, k: int, y: torch.Tensor) -> torch.Tensor:
        """Emb(k+1)(y) as ``(B, 512, 1)`` to broadcast over time, or 0 without the EE path."""
        if not self.use_emb:
            return torch.zeros((), device=y.device)
        return self.emb[k](y).unsqueeze(-1)

    def conv_block(self, x, conv_a, conv_b, norm, e):
        out = self.act(conv_a(x + e))  # (B, 1024, T)
        out = pixel_shuffle_1d(out, 2) + e  # (B, 512, 2T)
        out = norm(self.act(conv_b(out)))
        return out + F.interpolate(x, scale_factor=2, mode="nearest")  # residual: upsampled input

    def dense_block(self, x, fc_a, fc_b, norm, e):
        out = self.act(per_frame(fc_a, x + e))
        out = self.act(per_frame(fc_b, out + e))
        return norm(out) + x

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = self.conv_block(z, self.conv1, self.conv2, self.norms[0], self.embed(0, y))  # (B, 512, 32)
        out = self.conv_block(out, self.conv3, self.conv4, self.norms[1], self.embed(1, y))  # (B, 512, 64)
        out = self.conv_block(out, self.conv5, self.conv6, self.norms[2], self.embed(2, y))  # (B, 512, 128)
        e4 = self.embed(3, y)
        out = self.dense_block(out, self.fc1, self.fc2, self.norms[3], e4)
        out = self.dense_block(out, self.fc3, self.fc4, self.norms[4], e4)  # (B, 512, 128)
        e5 = self.embed(4, y)
        rnn, _ = self.gru((out + e5).transpose(1, 2))  # (B, 128, 512)
        e5_slot = e5.expand_as(out) if self.use_emb else torch.zeros_like(out)
        out = torch.cat([out, rnn.transpose(1, 2), e5_slot], dim=1)  # (B, 1536, 128)
        out = self.act(per_frame(self.fc5, out))  # (B, 512, 128)
        return per_frame(self.fc6, out)  # (B, 513, 128)


# ------------------------------------------------------------------ classifier (Table 3, Fig. 5)


def classifier_head(in_dim: int, cfg: ModelConfig) -> nn.Sequential:
    """FC1-FC4 of Table 3 with Dropout1-2 after FC1 and FC2."""
    return nn.Sequential(
        nn.Linear(in_dim, 1024),  # FC1
        nn.LeakyReLU(cfg.leaky_slope),
        nn.Dropout(cfg.classifier_dropout),  # Dropout1
        nn.Linear(1024, 512),  # FC2
        nn.LeakyReLU(cfg.leaky_slope),
        nn.Dropout(cfg.classifier_dropout),  # Dropout2
        nn.Linear(512, 128),  # FC3
        nn.LeakyReLU(cfg.leaky_slope),
        nn.Linear(128, cfg.n_classes),  # FC4
    )


class Classifier(nn.Module):
    """Self-attention over the 16 latent frames, pooled, concatenated with IS10, then FC1-4.

    Returns ``(logits, deep)`` where ``deep`` is the pooled attention feature (the
    "deep emotion feature" that the t-SNE chapter plots).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.pooling = cfg.pooling
        self.use_is10 = cfg.use_is10
        self.is10_scale = cfg.is10_scale
        self.attention = nn.MultiheadAttention(512, cfg.attention_heads, batch_first=True)
        fc1_in = cfg.deep_dim + (cfg.is10_dim if cfg.use_is10 else 0)  # paper: 2478; ours: see deep_dim
        self.head = classifier_head(fc1_in, cfg)
        self.aux = nn.Linear(cfg.deep_dim, cfg.n_classes) if cfg.aux_head else None  # see TrainConfig.aux_loss

    def pool(self, h: torch.Tensor) -> torch.Tensor:
        if self.pooling == "mean":
            return h.mean(dim=1)
        if self.pooling == "max":
            return h.amax(dim=1)
        if self.pooling == "meanmax":
            return torch.cat([h.mean(dim=1), h.amax(dim=1)], dim=1)
        return h.flatten(1)

    def forward(self, z: torch.Tensor, is10: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        seq = z.transpose(1, 2)  # (B, 16, 512)
        attended, _ = self.attention(seq, seq, seq, need_weights=False)  # (B, 16, 512)
        deep = self.pool(attended)  # (B, 512) with mean pooling
        feats = torch.cat([deep, self.is10_scale * is10], dim=1) if self.use_is10 else deep  # (B, 512 + 1582)
        return self.head(feats), deep


# ------------------------------------------------------------------ the whole model (Fig. 1)
class Outputs(NamedTuple):
    recon: torch.Tensor  # x', (B, 513, 128)
    logits: torch.Tensor  # (B, K)
    deep: torch.Tensor  # the pooled attention feature, (B, 512)


class EESR(nn.Module):
    """Autoencoder with emotion embedding + classifier. ``forward`` returns all three outputs
    needed by the joint loss; ``classify`` is the test-time path (no decoder, no label)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.classifier = Classifier(cfg)

    def forward(
        self, x: torch.Tensor, y: torch.Tensor, is10: torch.Tensor | None = None, detach_latent: bool = False
    ) -> Outputs:
        """Eq. 1, x' = decoder(encoder(x), y), and the classifier on the same latent: everything the
        joint loss (eq. 4) needs in one pass. ``detach_latent`` stops L_EC at the latent (the reading
        of eq. 3 in which the classification loss does not train the encoder)."""
        z = self.encoder(x)
        recon = self.decoder(z, y)
        logits, deep = self.classifier(z.detach() if detach_latent else z, is10)
        return Outputs(recon, logits, deep)

    @torch.no_grad()
    def classify(self, x: torch.Tensor, is10: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits, deep feature)`` for crops ``x``; the label is never seen."""
        return self.classifier(self.encoder(x), is10)

    def emotion_embeddings(self) -> torch.Tensor:
        """The decoder's Emb1-5 tables: ``(5, n_classes, 512)``."""
        return torch.stack([e.weight.detach() for e in self.decoder.emb])


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
