"""llama.cpp's recurrent state: what Mamba, Mamba-2 and LFM2-style layers keep per sequence instead of a KV cache.

Read from llama.cpp's source (llama-memory-recurrent.cpp, llama-hparams.cpp): each recurrent layer holds, in f32, a
convolution state of n_embd_r elements and an SSM state of n_embd_s elements for each of max(1, n_seq_max) sequences;
it does not grow with the context. n_embd_r = (d_conv − 1) × (d_inner + 2 × n_group × d_state) (LFM2:
hidden × (l_cache − 1)); n_embd_s = d_state × d_inner. llama.cpp logs it as the "RS buffer"; tests compare the two.
"""

from __future__ import annotations

from selfhost.models.spec import ModelSpec

__all__ = ["recurrent_state_per_layer", "recurrent_state_bytes"]

F32 = 4


def recurrent_state_per_layer(spec: ModelSpec, n_seq_max: int) -> list[int]:
    r = spec.recurrent
    if r is None:
        return [0] * spec.n_layers
    per_layer = (r.r_elements + r.s_elements) * F32 * max(1, n_seq_max)
    return [per_layer if recurrent else 0 for recurrent in r.layers]


def recurrent_state_bytes(spec: ModelSpec, n_seq_max: int) -> int:
    return sum(recurrent_state_per_layer(spec, n_seq_max))
