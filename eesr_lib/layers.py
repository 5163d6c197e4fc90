"""Our network's modules next to the paper's Tables 1–3, row by row (chapter 3).

Each row of the paper's layer tables (``eesr_lib.paper.TABLE1_ENCODER``, ``TABLE2_DECODER``,
``TABLE3_CLASSIFIER``: name, text as printed, in, out, kernel, stride) is paired here with the module of
:class:`eesr_lib.model.EESR` that implements it, so that a page can put the printed sizes, ours and the
shape each module outputs side by side and mark every row that differs. The pairing is knowledge about
the model, kept in one place; the chapter records the shapes (forward hooks) and shows the table.
"""

from __future__ import annotations

import pandas as pd
import torch

from . import paper
from .model import count_parameters


def _rows() -> list[tuple[str, tuple, str]]:
    enc, dec, cls = paper.TABLE1_ENCODER, paper.TABLE2_DECODER, paper.TABLE3_CLASSIFIER
    return (
        [("encoder", enc[k], f"encoder.conv1s.{k}") for k in range(8)]
        + [("encoder", enc[8 + k], f"encoder.conv{k + 2}") for k in range(7)]
        + [("encoder", enc[15 + k], f"encoder.fc{k + 1}") for k in range(5)]
        + [("encoder", enc[20], "encoder.drop"), ("encoder", enc[21], "encoder.gru")]
        + [("decoder", dec[k], f"decoder.conv{k + 1}") for k in range(6)]
        + [("decoder", dec[6 + k], f"decoder.fc{k + 1}") for k in range(6)]
        + [("decoder", dec[12 + k], f"decoder.emb.{k}") for k in range(5)]
        + [("decoder", dec[17], "decoder.gru"), ("classifier", cls[0], "classifier.attention")]
        + [("classifier", cls[1 + k], f"classifier.head.{i}") for k, i in enumerate((0, 3, 6, 8))]
        + [("classifier", cls[5], "classifier.head.2")]
    )


# (network, the paper's row, our module's path), in the order of Tables 1-3
TABLE_ROWS: list[tuple[str, tuple, str]] = _rows()


def module_sizes(m: torch.nn.Module) -> tuple:
    """(in, out, kernel, stride, extra) of one of our modules, in the terms of the paper's tables."""
    if isinstance(m, torch.nn.Conv1d):
        return m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0], ""
    if isinstance(m, torch.nn.Linear):
        return m.in_features, m.out_features, None, 1, ""
    if isinstance(m, torch.nn.GRU):
        return m.input_size, m.hidden_size, None, 1, "bidirectional" if m.bidirectional else ""
    if isinstance(m, torch.nn.Embedding):
        return m.num_embeddings, m.embedding_dim, None, 1, ""
    if isinstance(m, torch.nn.MultiheadAttention):
        return m.embed_dim, m.embed_dim, None, 1, f"num_heads {m.num_heads}"
    if isinstance(m, torch.nn.Dropout):
        return None, None, None, 1, f"p={m.p}"
    return None, None, None, 1, type(m).__name__


def layer_table(model: torch.nn.Module, shapes: dict[str, list[tuple]], n_classes: int) -> pd.DataFrame:
    """One row per row of Tables 1–3: the paper's layer as printed, our module and its sizes, the
    output shapes ``shapes[path]`` recorded on a batch, its parameter count, and whether it matches."""
    modules = dict(model.named_modules())
    table = []
    for net, (layer, printed, p_in, p_out, p_k, p_s), path in TABLE_ROWS:
        m = modules[path]
        o_in, o_out, o_k, o_s, extra = module_sizes(m)
        p_in, p_out = (n_classes if v == "K" else v for v in (p_in, p_out))
        if isinstance(m, torch.nn.Dropout):
            same = printed == extra
        elif isinstance(m, torch.nn.MultiheadAttention):
            same = extra in printed
        else:
            same = (p_in, p_out, p_k, p_s) == (o_in, o_out, o_k, o_s)
        sizes = f"{o_in} → {o_out}" if o_in is not None else ""
        if o_k:
            sizes += f", kernel {o_k}" + (f", stride {o_s}" if o_s > 1 else "")
        seen = shapes.get(path, [])
        table.append(
            {
                "network": net,
                "paper layer": layer,
                "paper (as printed)": printed,
                "our module": path,
                "our sizes": (sizes + (" " + extra if extra else "")).strip(),
                "output on the batch": " / ".join(sorted({str(s) for s in seen}))
                + (f" (×{len(seen)})" if len(seen) > 1 else ""),
                "params": count_parameters(m),
                "match": "✓" if same else "✗ differs",
            }
        )
    return pd.DataFrame(table)


def differences_markdown(layers: pd.DataFrame) -> str:
    """The rows of :func:`layer_table` that differ from the printed tables, as a Markdown list."""
    diff = layers[layers["match"] != "✓"]
    lines = [
        f"* **{r['network']} {r['paper layer']}**: paper `{r['paper (as printed)']}`, ours `{r['our sizes']}`"
        for _, r in diff.iterrows()
    ]
    return f"**{len(diff)} of {len(layers)} rows differ from the printed tables:**\n\n" + "\n".join(lines)
