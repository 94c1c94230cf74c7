"""``GLMModel``: word embeddings, the GLM transformer and the tied output projection (spec 1.1).

This module owns the model's top-level forward (embeddings, prompts, memory or key/value cache,
logits); it must not touch tokenizers, input layouts (``glm.inputs``), files or training state.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .. import mpu
from ..mpu.layers import normal_init
from .flops import count_parameters, flops_per_token
from .prompt import PromptSpell
from .transformer import GLMTransformer


class GLMModel(nn.Module):
    """The General Language Model.

    Arguments keep the original names and order (``glm.model.GLMModel`` in entry_points.md).
    ``forward(input_ids, position_ids, attention_mask, *mems, return_memory=False,
    detach_memory=True, prompt_pos=None, kv_cache=None)`` returns ``(logits_or_hidden, *mems)``:

    * ``input_ids`` ``[B, L]``; ``position_ids`` ``[B, 2, L]`` (position, block position) with
      block position encoding, ``[B, L]`` otherwise (ignored by the relative encoding);
    * ``attention_mask``: a separator (1 or ``B`` elements) or a 0/1 matrix ``[B, 1, L, M+L]``;
    * logits over this rank's vocabulary shard (``parallel_output=True``) or the full vocabulary;
    * ``num_layers + 1`` memory tensors when ``max_memory_length > 0`` or ``return_memory``;
      with ``kv_cache`` (new) the ``2 * num_layers`` tensors of the grown key/value cache instead.

    New keyword-only arguments: ``group`` (the model-parallel process group, default the one
    from ``mpu.initialize_model_parallel``) and ``attention_backend`` (an ``--attention-backend``
    value, ``auto``/``sdpa``/``reference``/``flex``, or an :class:`~.attention.AttentionSpec`), turned
    into the model's attention spec once, here.
    """

    def __init__(self, num_layers, vocab_size, hidden_size, num_attention_heads, embedding_dropout_prob,
                 attention_dropout_prob, output_dropout_prob, max_sequence_length, max_memory_length,
                 checkpoint_activations, checkpoint_num_layers=1, parallel_output=True, relative_encoding=False,
                 block_position_encoding=False, output_predict=True, spell_length=None, spell_func="lstm",
                 attention_scale=1.0, *, group=None, attention_backend="auto"):
        super().__init__()
        self.group = mpu.get_model_parallel_group() if group is None else group
        self.parallel_output = parallel_output
        self.output_predict = output_predict
        self.hidden_size = hidden_size
        self.config = dict(num_layers=num_layers, vocab_size=vocab_size, hidden_size=hidden_size,
                           num_attention_heads=num_attention_heads, max_sequence_length=max_sequence_length,
                           max_memory_length=max_memory_length, relative_encoding=relative_encoding,
                           block_position_encoding=block_position_encoding, spell_length=spell_length,
                           spell_func=spell_func, attention_scale=attention_scale)
        self.word_embeddings = mpu.VocabParallelEmbedding(vocab_size, hidden_size, init_method=normal_init(0.02),
                                                          group=self.group)
        self.transformer = GLMTransformer(
            num_layers, hidden_size, num_attention_heads, max_sequence_length, max_memory_length,
            embedding_dropout_prob, attention_dropout_prob, output_dropout_prob, checkpoint_activations,
            checkpoint_num_layers, relative_encoding=relative_encoding,
            block_position_encoding=block_position_encoding, attention_scale=attention_scale, group=self.group,
            attention_backend=attention_backend)
        self.spell_length = None
        if spell_length is not None:
            self.add_prompt_spell(spell_length, spell_func)

    def add_prompt_spell(self, spell_length, spell_func="lstm"):
        """(Re)build the P-tuning prompt encoder of ``spell_length`` embeddings."""
        self.spell_length = spell_length
        self.prompt_spell = PromptSpell(spell_length, self.hidden_size, spell_func)

    def freeze_transformer(self, tune_prefix_layers=None):
        """Freeze embeddings and transformer; optionally keep the first N layers trainable."""
        for module in (self.word_embeddings, self.transformer):
            module.requires_grad_(False)
        if tune_prefix_layers:
            for layer in self.transformer.layers[:tune_prefix_layers]:
                layer.requires_grad_(True)

    def forward(self, input_ids, position_ids, attention_mask, *mems, return_memory=False, detach_memory=True,
                prompt_pos=None, return_hidden=False, logit_positions=None, kv_cache=None):
        """``return_hidden`` (new): return the final hidden states instead of the logits, for callers
        that project only some positions onto the vocabulary (:meth:`project`).

        ``logit_positions`` (new): a boolean ``[B, L]`` selecting the positions to project; the logits
        then come back as ``[N, vocab]`` for the ``N`` selected positions in row-major order.  Losses
        read only part of the sequence (Part B in blank infilling), and the vocabulary projection with
        its cross entropy is otherwise the largest single matmul of a step for every position.  The
        selection happens inside ``forward`` so wrappers that hook it (DDP, DeepSpeed) see it.  The last
        transformer layer then also computes only the positions from the first selected column on (the
        others serve as its keys and values): nothing reads its output elsewhere.

        ``kv_cache`` (new): decode through a key/value cache instead of the hidden-state memory: a
        list ``[K_0, V_0, K_1, V_1, ...]`` (each ``[B, M, hidden / model-parallel size]``, empty to
        start one); the grown cache comes back in place of the memory.  The same numbers as the
        hidden-state memory, with one token's worth of projections per step (absolute positions only)."""
        embeddings = self.word_embeddings(input_ids)
        if prompt_pos is not None:
            embeddings = embeddings.clone()
            prompts = self.prompt_spell().to(embeddings.dtype)
            rows = torch.arange(input_ids.size(0), device=input_ids.device).unsqueeze(1)
            embeddings[rows, prompt_pos] = prompts
        projecting_some = self.output_predict and not return_hidden and logit_positions is not None
        hidden, new_mems = self.transformer(embeddings, position_ids, attention_mask, *mems,
                                            return_memory=return_memory, detach_memory=detach_memory,
                                            kv_cache=kv_cache,
                                            output_from=first_selected(logit_positions) if projecting_some else 0)
        if self.output_predict and not return_hidden:
            if logit_positions is not None:
                hidden = hidden[logit_positions[:, logit_positions.size(1) - hidden.size(1):]]
            return (self.project(hidden), *new_mems)
        return (hidden, *new_mems)

    def project(self, hidden):
        """Logits of final hidden states ``[..., hidden]`` through the tied word embeddings: this
        rank's vocabulary shard, or the whole vocabulary unless ``parallel_output``."""
        hidden = mpu.copy_to_model_parallel_region(hidden, self.group)
        logits = F.linear(hidden, self.word_embeddings.weight)
        if not self.parallel_output:
            logits = mpu.gather_from_model_parallel_region(logits, self.group)
        return logits

    # -- accounting -----------------------------------------------------------------------------
    def num_parameters(self, exclude_embeddings=False):
        """Parameters of the full (unsharded) model."""
        return count_parameters(self.config, exclude_embeddings=exclude_embeddings)

    def flops_per_token(self, seq_length):
        """Dense training FLOPs per token (forward + backward), see ``glm.model.flops``."""
        c = self.config
        return flops_per_token(c["num_layers"], c["hidden_size"], c["vocab_size"], seq_length)


def first_selected(positions):
    """The first column of the boolean ``[B, L]`` selection that any row selects (0 when none does): the
    transformer's last layer need not compute the positions before it (one host synchronisation)."""
    columns = positions.any(dim=0).nonzero()
    return int(columns[0]) if columns.numel() else 0


def glm_get_params_for_weight_decay_optimization(module):
    """Two parameter groups: LayerNorm parameters and biases without weight decay, the rest with it.
    Frozen parameters are left out."""
    decay = {"params": []}
    no_decay = {"params": [], "weight_decay": 0.0}
    for submodule in module.modules():
        for name, param in submodule.named_parameters(recurse=False):
            if not param.requires_grad:
                continue
            if isinstance(submodule, nn.LayerNorm) or name == "bias":
                no_decay["params"].append(param)
            else:
                decay["params"].append(param)
    return decay, no_decay
