"""The torch engine's decode step without Hugging Face's per-call work.

Sampling feeds one token per row per forward. On a small model Hugging Face's forward is
mostly Python around a few small matrix products: it rebuilds the attention mask from the
2-D padding mask, grows every layer's KV cache with ``torch.cat``, goes through output
capturing and config-default decorators, and calls a dozen modules per layer, each through
``nn.Module.__call__``. `Decoder` runs the same arithmetic as the model's own forward, in
the same order and with the same kernels, for the families whose forward it mirrors
(``llama`` and ``qwen2`` with SDPA attention, full attention in every layer):

- the keys and values live in buffers allocated once per batch (prompt plus
  `max_new_tokens` columns), written in place, and attention reads a view of the filled
  part;
- the attention mask is one boolean (B, 1, 1, P + T) tensor made once and sliced, the 4-D
  mask Hugging Face would build for a one-token query (True where a row may attend);
- norms, the rotary embedding's cos and sin, the activation and attention are the model's
  own modules' ``forward``, the modeling module's own ``rotate_half`` and transformers'
  ``sdpa_attention_forward``, only not through ``__call__``; the linear layers are
  ``F.linear`` on their weights, q, k and v as one product of the three stacked (stacked
  once per batch), and the rotation is applied to q and k in one go (it is elementwise);
- the cos and sin of every decode position are computed in one call at the start when the
  rotary type does not depend on the length seen (not "dynamic" or "longrope").

The logits are those of the model's forward (bit for bit on this CPU in float32;
`tests/test_trainer_engine.py` compares them), so sampling draws from the same distribution
with the same random numbers. `Decoder.build` returns None for any model it does not mirror
(another architecture, hooks, adapters, eager or flash attention, sliding windows), and
`matches_model` checks a built one against the model's forward on a small input before the
engine relies on it; either way the engine then calls the model's forward as before.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from trainer.hf import with_cache

if TYPE_CHECKING:
    import torch

__all__ = ["Decoder", "matches_model", "model_forward"]

MIRRORED = ("llama", "qwen2")  # model types whose decoder layer `Decoder.step` mirrors


class Decoder:
    """One-token forwards of a Llama-shaped model over preallocated KV buffers."""

    def __init__(self, model: Any, rotate_half: Callable[..., Any]) -> None:
        self.model = model
        self.inner = model.model
        self.layers = list(self.inner.layers)
        self.rotate_half = rotate_half  # the modeling module's own
        attention = self.layers[0].self_attn
        self.heads = int(model.config.num_attention_heads)
        self.kv_heads = int(model.config.num_key_value_heads)
        self.head_dim = int(attention.head_dim)
        self.qkv: list[tuple[torch.Tensor, torch.Tensor | None]] = []  # fused per layer
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.mask: torch.Tensor | None = None  # (B, 1, 1, P + T), True where rows attend
        self.filled = 0  # columns of the buffers holding keys and values
        self.taken = 0  # decode steps since `start`
        self.positions: torch.Tensor | None = None  # (B, T) position of each decode step
        # cos and sin of every decode step's positions, (B, T, d) each; None when the
        # rotary embedding changes with the length seen ("dynamic" and "longrope" types)
        self.rotations: tuple[torch.Tensor, torch.Tensor] | None = None
        rope = str(getattr(self.inner.rotary_emb, "rope_type", "default"))
        self.static_rope = "dynamic" not in rope and rope != "longrope"

    @classmethod
    def build(cls, model: Any) -> Decoder | None:
        """A decoder for `model`, or None when its forward is not one this class mirrors."""
        import torch

        config = getattr(model, "config", None)
        inner = getattr(model, "model", None)
        if config is None or inner is None or config.model_type not in MIRRORED:
            return None
        if config._attn_implementation != "sdpa":
            return None
        if any(kind != "full_attention" for kind in getattr(config, "layer_types", None) or ()):
            return None  # sliding-window layers need another mask
        if any(m._forward_hooks or m._forward_pre_hooks for m in model.modules()):
            return None  # offloading or adapter hooks: only __call__ runs them
        linears = [model.lm_head]
        for layer in inner.layers:
            attention, mlp = layer.self_attn, layer.mlp
            linears += [attention.q_proj, attention.k_proj, attention.v_proj, attention.o_proj]
            linears += [mlp.gate_proj, mlp.up_proj, mlp.down_proj]
        if any(type(m) is not torch.nn.Linear for m in linears):
            return None  # quantised or adapter-wrapped layers
        if type(inner.embed_tokens) is not torch.nn.Embedding:
            return None
        modeling = sys.modules[type(inner.layers[0].self_attn).__module__]
        rotate_half = getattr(modeling, "rotate_half", None)
        return None if rotate_half is None else cls(model, rotate_half)

    def start(
        self,
        cache: Any,
        repeat: int,
        prompt_mask: torch.Tensor,
        last_position: torch.Tensor,
        max_new_tokens: int,
    ) -> None:
        """Copy a prefill's cache (G rows) into buffers of `repeat` rows per prompt.

        `cache` is the ``DynamicCache`` of the prefill of G prompts of width P;
        `prompt_mask` (B, P) their padding mask and `last_position` (B, 1) the position of
        their last token, both already repeated to B = G * repeat rows.
        """
        import torch

        batch, width = prompt_mask.shape
        steps = torch.arange(1, max_new_tokens + 1, device=last_position.device)
        self.positions = last_position + steps  # (B, T)
        self.taken = 0
        self.rotations = None
        if self.static_rope:  # elementwise in the position: all steps at once, same values
            probe = self.inner.embed_tokens.weight[:0]  # gives the rotary its dtype, device
            self.rotations = self.inner.rotary_emb.forward(probe, self.positions)
        self.qkv = []
        for layer in self.layers:
            parts = (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj)
            weight = torch.cat([part.weight for part in parts])
            biases = [part.bias for part in parts]
            bias = None if biases[0] is None else torch.cat(biases)
            self.qkv.append((weight, bias))
        self.keys, self.values = [], []
        for layer in cache.layers:
            for source, out in ((layer.keys, self.keys), (layer.values, self.values)):
                buffer = source.new_empty(
                    batch, self.kv_heads, width + max_new_tokens, self.head_dim
                )
                buffer[:, :, :width] = source.repeat_interleave(repeat, dim=0)
                out.append(buffer)
        self.mask = torch.ones(
            batch, 1, 1, width + max_new_tokens, dtype=torch.bool, device=prompt_mask.device
        )
        self.mask[:, 0, 0, :width] = prompt_mask.bool()
        self.filled = width

    def release(self) -> None:
        """Drop the buffers (they hold a whole batch's keys and values)."""
        self.keys, self.values, self.mask, self.filled = [], [], None, 0
        self.positions, self.rotations, self.qkv = None, None, []

    def step(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits (B, V) after feeding the next token of each row, `ids` (B, 1)."""
        import torch.nn.functional as F
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        assert self.mask is not None and self.positions is not None, "start() first"
        column, end, taken = self.filled, self.filled + 1, self.taken
        batch = ids.shape[0]
        mask = self.mask[..., :end]  # (B, 1, 1, L)
        hidden = F.embedding(ids, self.inner.embed_tokens.weight)  # (B, 1, H)
        if self.rotations is not None:
            cos, sin = (r[:, None, taken : taken + 1] for r in self.rotations)  # (B, 1, 1, d)
        else:
            positions = self.positions[:, taken : taken + 1]  # (B, 1)
            cos, sin = (r[:, None] for r in self.inner.rotary_emb.forward(hidden, positions))
        for index, layer in enumerate(self.layers):
            attention = layer.self_attn
            residual = hidden
            hidden = layer.input_layernorm.forward(hidden)
            # q, k and v in one product; rotary on q and k together (elementwise: the same
            # values as apply_rotary_pos_emb on each)
            weight, bias = self.qkv[index]
            qkv = F.linear(hidden, weight, bias).view(batch, 1, -1, self.head_dim)
            qkv = qkv.transpose(1, 2)  # (B, h + 2 kv, 1, d)
            qk, value = qkv[:, : self.heads + self.kv_heads], qkv[:, self.heads + self.kv_heads :]
            qk = qk * cos + self.rotate_half(qk) * sin  # (B, h + kv, 1, d)
            query, key = qk[:, : self.heads], qk[:, self.heads :]
            self.keys[index][:, :, column:end] = key
            self.values[index][:, :, column:end] = value
            out, _ = sdpa_attention_forward(
                attention,
                query,
                self.keys[index][:, :, :end],
                self.values[index][:, :, :end],
                mask,
                dropout=0.0,
                scaling=attention.scaling,
            )  # (B, 1, h, d)
            out = out.reshape(batch, 1, -1).contiguous()
            hidden = residual + F.linear(out, attention.o_proj.weight, attention.o_proj.bias)
            residual = hidden
            hidden = layer.post_attention_layernorm.forward(hidden)
            mlp = layer.mlp  # LlamaMLP / Qwen2MLP: down(act(gate(x)) * up(x))
            gate = F.linear(hidden, mlp.gate_proj.weight, mlp.gate_proj.bias)
            up = F.linear(hidden, mlp.up_proj.weight, mlp.up_proj.bias)
            hidden = residual + F.linear(
                mlp.act_fn.forward(gate) * up, mlp.down_proj.weight, mlp.down_proj.bias
            )
        self.filled, self.taken = end, taken + 1
        hidden = self.inner.norm.forward(hidden)
        head = self.model.lm_head
        logits: torch.Tensor = F.linear(hidden[:, -1, :], head.weight, head.bias)  # (B, V)
        return logits


def model_forward(
    model: Any, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: Any
) -> torch.Tensor:
    """The model's own forward: logits (rows, V) of the last position, `cache` grown."""
    logits: torch.Tensor = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions,
        **with_cache(model, cache),
        use_cache=True,
        logits_to_keep=1,
    ).logits[:, -1, :]
    return logits


def matches_model(decoder: Decoder, tolerance: float = 1e-4) -> bool:
    """Whether `decoder` gives the model's own logits on a small made-up batch.

    Two left-padded rows of different lengths, three decoding steps; the model's forward
    with a ``DynamicCache`` is the reference. Run once per engine, not per batch.
    """
    import torch
    from transformers import DynamicCache

    model = decoder.model
    device = next(model.parameters()).device
    vocab = int(model.config.vocab_size)
    ids = torch.tensor([[0, 1, 2, 3, 4], [0, 0, 5, 6, 7]], device=device) % vocab  # (2, 5)
    mask = torch.tensor([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]], device=device)  # (2, 5)
    positions = (mask.cumsum(1) - 1).clamp(min=0)  # (2, 5)
    with torch.inference_mode():
        cache = DynamicCache()
        model_forward(model, ids, mask, positions, cache)
        decoder.start(cache, 1, mask, positions[:, -1:], 3)
        for step in range(3):
            token = (ids[:, -1:] + step + 1) % vocab  # (2, 1)
            positions = positions[:, -1:] + 1  # (2, 1)
            mask = torch.cat([mask, mask.new_ones(2, 1)], dim=1)
            expected = model_forward(model, token, mask, positions, cache)
            got = decoder.step(token)
            if not torch.allclose(got.float(), expected.float(), rtol=tolerance, atol=tolerance):
                return False
    return True
