"""The network's shapes are the paper's Tables 1-3 (as we implement them), and the ablation
switches remove what they name."""

import pytest
import torch

from eesr_lib.model import EESR, ModelConfig, count_parameters, pad_same, pixel_shuffle_1d

B = 2


@pytest.fixture(scope="module")
def traced():
    """Run one forward pass and record every leaf module's input/output shapes."""
    torch.manual_seed(0)
    model = EESR(ModelConfig()).eval()
    shapes = {}

    def hook(name):
        def fn(module, inp, out):
            out = out[0] if isinstance(out, tuple) else out
            shapes[name] = (tuple(inp[0].shape), tuple(out.shape))

        return fn

    for name, module in model.named_modules():
        if isinstance(module, (torch.nn.Conv1d, torch.nn.Linear, torch.nn.GRU, torch.nn.MultiheadAttention)):
            module.register_forward_hook(hook(name))
    x = torch.rand(B, 513, 128)
    y = torch.tensor([0, 3])
    recon, logits, deep = model(x, y, torch.randn(B, 1582))
    assert deep.shape == (B, 512)  # the pooled attention feature beside the logits
    return model, shapes, recon, logits


def test_encoder_table1_shapes(traced):
    _, s, _, _ = traced
    for k in range(8):  # Conv1-1 .. Conv1-8: 513 -> 128, kernel k+1, length kept
        assert s[f"encoder.conv1s.{k}"] == ((B, 513, 128), (B, 128, 128))
    assert s["encoder.conv2"][1] == (B, 512, 128) and s["encoder.conv2"][0][1] == 1537
    assert s["encoder.conv4"][1] == (B, 512, 64)
    assert s["encoder.conv6"][1] == (B, 512, 32)
    assert s["encoder.conv8"][1] == (B, 512, 16)
    for fc in ("fc1", "fc2", "fc3", "fc4"):
        assert s[f"encoder.{fc}"] == ((B, 16, 512), (B, 16, 512))
    assert s["encoder.gru"][1] == (B, 16, 256)  # bidirectional, hidden 128
    assert s["encoder.fc5"] == ((B, 16, 768), (B, 16, 512))


def test_decoder_table2_shapes(traced):
    _, s, recon, _ = traced
    for conv, t in (("conv1", 16), ("conv3", 32), ("conv5", 64)):  # 512 -> 1024, then pixel shuffle x2
        assert s[f"decoder.{conv}"][1] == (B, 1024, t)
    for conv, t in (("conv2", 32), ("conv4", 64), ("conv6", 128)):
        assert s[f"decoder.{conv}"][1] == (B, 512, t)
    assert s["decoder.gru"][1] == (B, 128, 512)  # bidirectional, hidden 256
    assert s["decoder.fc5"] == ((B, 128, 1536), (B, 128, 512))
    assert s["decoder.fc6"] == ((B, 128, 512), (B, 128, 513))
    assert recon.shape == (B, 513, 128)


def test_classifier_table3_shapes(traced):
    model, s, _, logits = traced
    assert s["classifier.attention"][1] == (B, 16, 512)
    assert model.classifier.attention.num_heads == 1
    # FC1 takes the pooled deep feature (512 with mean pooling) + 1582 IS10 = 2094 (paper: 2478).
    assert s["classifier.head.0"] == ((B, 2094), (B, 1024))
    assert s["classifier.head.3"][1] == (B, 512)
    assert s["classifier.head.6"][1] == (B, 128)
    assert logits.shape == (B, 7)


def test_parameter_count_follows_tables(traced):
    model = traced[0]

    def conv(cin, cout, k):
        return cin * cout * k + cout

    def lin(cin, cout):
        return cin * cout + cout

    def gru(cin, h):
        return 2 * 3 * (cin * h + h * h + 2 * h)

    enc = sum(conv(513, 128, k) for k in range(1, 9)) + conv(1537, 512, 1) + 6 * conv(512, 512, 5)
    enc += 4 * lin(512, 512) + gru(512, 128) + lin(768, 512)
    dec = 3 * (conv(512, 1024, 3) + conv(512, 512, 3)) + 4 * lin(512, 512) + gru(512, 256)
    dec += lin(1536, 512) + lin(512, 513) + 5 * 7 * 512
    att = 4 * 512 * 512 + 4 * 512
    cla = att + lin(2094, 1024) + lin(1024, 512) + lin(512, 128) + lin(128, 7)
    counts = {n: count_parameters(getattr(model, n)) for n in ("encoder", "decoder", "classifier")}
    print("parameters:", counts, "total", sum(counts.values()))
    assert counts == {"encoder": enc, "decoder": dec, "classifier": cla}


def test_pixel_shuffle_and_padding():
    x = torch.arange(2 * 4 * 3, dtype=torch.float32).view(2, 4, 3)
    out = pixel_shuffle_1d(x, 2)
    assert out.shape == (2, 2, 6)
    # channel pair (c, c + C) interleaves in time: out[b, c, 2t + r] = x[b, 2c + r, t]
    assert out[1, 1, 3] == x[1, 3, 1] and out[0, 0, 4] == x[0, 0, 2]
    for k in range(1, 9):
        assert pad_same(torch.rand(1, 3, 20), k).shape[-1] == 20 + k - 1


def _decoder_depends_on_label(cfg: ModelConfig) -> bool:
    torch.manual_seed(0)
    model = EESR(cfg).eval()
    z = torch.randn(1, 512, 16)
    with torch.no_grad():
        a = model.decoder(z, torch.tensor([0]))
        b = model.decoder(z, torch.tensor([1]))
    return not torch.allclose(a, b)


def test_emotion_embedding_switch():
    assert _decoder_depends_on_label(ModelConfig(emotion_embedding=True))
    assert not _decoder_depends_on_label(ModelConfig(emotion_embedding=False))


def test_instance_norm_switch():
    def kinds(norm):
        return {type(m).__name__ for m in EESR(ModelConfig(norm=norm)).modules()}

    assert "InstanceNorm1d" in kinds("instance")
    assert "InstanceNorm1d" not in kinds("batch") and "BatchNorm1d" in kinds("batch")
    assert not {"InstanceNorm1d", "BatchNorm1d"} & kinds("none")


def test_is10_switch():
    torch.manual_seed(0)
    model = EESR(ModelConfig(use_is10=False)).eval()
    assert model.classifier.head[0].in_features == 512
    x = torch.rand(2, 513, 128)
    a, _ = model.classify(x, torch.randn(2, 1582))
    b, _ = model.classify(x, None)
    assert torch.equal(a, b)
    with_os = EESR(ModelConfig(use_is10=True)).eval()
    c, _ = with_os.classify(x, torch.zeros(2, 1582))
    d, _ = with_os.classify(x, torch.ones(2, 1582))
    assert not torch.allclose(c, d)


def test_is10_scale_multiplies_the_fused_is10_vector():
    torch.manual_seed(0)
    scaled = EESR(ModelConfig(is10_scale=0.5)).eval()
    plain = EESR(ModelConfig()).eval()
    plain.load_state_dict(scaled.state_dict())
    x, v = torch.rand(2, 513, 128), torch.randn(2, 1582)
    assert torch.allclose(scaled.classify(x, v)[0], plain.classify(x, 0.5 * v)[0], atol=1e-6)
    assert not torch.allclose(scaled.classify(x, v)[0], plain.classify(x, v)[0])


@pytest.mark.parametrize("pooling,width", [("mean", 512), ("max", 512), ("meanmax", 1024), ("flatten", 8192)])
def test_pooling_sets_deep_width(pooling, width):
    cfg = ModelConfig(pooling=pooling)
    assert cfg.deep_dim == width
    model = EESR(cfg).eval()
    logits, deep = model.classify(torch.rand(2, 513, 128), torch.randn(2, 1582))
    assert deep.shape == (2, width) and logits.shape == (2, 7)


def test_bad_config_is_rejected():
    from eesr_lib.errors import EESRError

    with pytest.raises(EESRError, match="norm"):
        ModelConfig(norm="layer")
    with pytest.raises(EESRError, match="pooling"):
        ModelConfig(pooling="attention")
    with pytest.raises(EESRError, match="is10_scale"):
        ModelConfig(is10_scale=0)
