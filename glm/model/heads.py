"""Downstream heads around a ``GLMModel`` (spec sections 1.3-1.4).

State-dict prefixes follow the original so finetuned checkpoints load unchanged: the two cloze
heads that delegate (``GLMForMultiTokenCloze``, ``GLMForSingleTokenCloze``) expose the inner
model's keys without a prefix; ``GLMForMultiTokenClozeFast`` and
``GLMForSequenceClassification`` keep the ``model.`` prefix.
"""

import torch
import torch.nn.functional as F
from torch import nn


def _flatten_choices(input_ids, position_ids, attention_mask, *others):
    """``[B, C, ...]`` inputs to ``[B*C, ...]``; returns the number of choices (or None)."""
    if input_ids.dim() != 3:
        return None, (input_ids, position_ids, attention_mask, *others)
    choices = input_ids.size(1)
    flat = [input_ids.reshape(-1, input_ids.size(-1)),
            position_ids.reshape(-1, *position_ids.shape[2:]),
            attention_mask.reshape(-1, *attention_mask.shape[2:])]
    for t in others:
        flat.append(None if t is None else t.reshape(-1, *t.shape[2:]))
    return choices, tuple(flat)


class _DelegatingHead(nn.Module):
    """Checkpoint keys are those of the wrapped model (no ``model.`` prefix), as in the original."""

    def state_dict(self, *args, **kwargs):
        return self.model.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict, strict=True, assign=False):
        return self.model.load_state_dict(state_dict, strict=strict, assign=assign)

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        return self.model.named_parameters(prefix=prefix, recurse=recurse, remove_duplicate=remove_duplicate)


def _answer_scores(model, hidden, target_ids, logit_mask, take_softmax):
    """Per row, the sum over scored positions ``t`` of ``log p(target_ids[t]) * logit_mask[t]`` (or of
    the raw logit without ``take_softmax``).  Only the scored positions are projected onto the
    vocabulary: an answer has a few tokens, the sequence hundreds, and the projection plus its
    softmax over ~30k-50k ids per position would dominate the head's cost."""
    selected = logit_mask != 0
    logits = model.project(hidden[selected])
    if take_softmax:
        logits = F.log_softmax(logits.float(), dim=-1)
    token_scores = logits.gather(-1, target_ids[selected].unsqueeze(-1)).squeeze(-1)
    token_scores = token_scores * logit_mask[selected].to(token_scores.dtype)
    rows = selected.nonzero(as_tuple=True)[0]
    return token_scores.new_zeros(logit_mask.size(0)).index_add_(0, rows, token_scores)


class GLMForMultiTokenCloze(_DelegatingHead):
    """Scores each candidate answer by the summed log-probability of its tokens in Part B."""

    def __init__(self, language_model, take_softmax=True, length_penalty=0.0):
        super().__init__()
        self.model = language_model
        self.take_softmax = take_softmax
        self.length_penalty = length_penalty

    def forward(self, input_ids, position_ids, attention_mask, target_ids=None, logit_mask=None, prompt_pos=None):
        if target_ids is None:
            return self.model(input_ids, position_ids, attention_mask, prompt_pos=prompt_pos)
        choices, (input_ids, position_ids, attention_mask, target_ids, logit_mask, prompt_pos) = _flatten_choices(
            input_ids, position_ids, attention_mask, target_ids, logit_mask, prompt_pos)
        hidden, *mems = self.model(input_ids, position_ids, attention_mask, prompt_pos=prompt_pos, return_hidden=True)
        logits = _answer_scores(self.model, hidden, target_ids, logit_mask, self.take_softmax)
        if self.length_penalty > 0.0:
            logits = logits / logit_mask.sum(dim=-1).to(logits.dtype) ** self.length_penalty
        if choices is not None:
            logits = logits.view(-1, choices)
        return (logits, *mems)


class GLMForSingleTokenCloze(_DelegatingHead):
    """Reads the verbalizer logits at the ``sop`` position (index ``sep``) of each sample."""

    def __init__(self, language_model, take_softmax=False):
        super().__init__()
        self.model = language_model
        self.take_softmax = take_softmax

    def forward(self, input_ids, position_ids, attention_mask, target_ids=None, logit_mask=None, prompt_pos=None):
        if target_ids is None:
            return self.model(input_ids, position_ids, attention_mask, prompt_pos=prompt_pos)
        if input_ids.dim() != 2:
            raise ValueError(f"GLMForSingleTokenCloze expects input_ids [B, L], got {list(input_ids.shape)}")
        hidden, *mems = self.model(input_ids, position_ids, attention_mask, prompt_pos=prompt_pos, return_hidden=True)
        rows = torch.arange(input_ids.size(0), device=input_ids.device)
        target_logits = self.model.project(hidden[rows, attention_mask.reshape(-1)])   # only the [sop] positions
        scores = F.log_softmax(target_logits.float(), dim=-1) if self.take_softmax else target_logits
        output = scores.gather(-1, target_ids)
        return (output, target_logits, *mems)


class GLMForMultiTokenClozeFast(nn.Module):
    """Multi-token cloze that encodes the context once and decodes every choice against its
    memory.  The decoder part is causal and sees memory positions ``< sep`` only."""

    def __init__(self, language_model, take_softmax=True, length_penalty=0.0):
        super().__init__()
        self.model = language_model
        self.take_softmax = take_softmax
        self.length_penalty = length_penalty

    def forward(self, input_ids, position_ids, attention_mask, dec_input_ids, dec_position_ids, dec_attention_mask,
                dec_target_ids, dec_logit_mask):
        _, *mems = self.model(input_ids, position_ids, attention_mask, return_memory=True, detach_memory=False)
        batch, choices, dec_length = dec_input_ids.shape
        enc_length = input_ids.size(-1)
        mems = [m.unsqueeze(1).expand(-1, choices, -1, -1).reshape(batch * choices, *m.shape[1:]) for m in mems]

        sep = dec_attention_mask.reshape(-1, 1, 1)
        memory_visible = torch.arange(enc_length, device=sep.device).view(1, 1, -1) < sep
        memory_visible = memory_visible.expand(-1, dec_length, -1)
        causal = torch.ones(dec_length, dec_length, dtype=torch.bool, device=sep.device).tril()
        mask = torch.cat([memory_visible, causal.expand(batch * choices, -1, -1)], dim=-1).unsqueeze(1)

        hidden, *_ = self.model(dec_input_ids.reshape(-1, dec_length),
                                dec_position_ids.reshape(-1, *dec_position_ids.shape[2:]),
                                mask.long(), *mems, return_hidden=True)
        target = dec_target_ids.reshape(-1, dec_length)
        logit_mask = dec_logit_mask.reshape(-1, dec_length)
        logits = _answer_scores(self.model, hidden, target, logit_mask, self.take_softmax)
        if self.length_penalty > 0.0:
            logits = logits / logit_mask.sum(dim=-1).to(logits.dtype) ** self.length_penalty
        return (logits.view(-1, choices),)


class GLMForSequenceClassification(nn.Module):
    """Pooled hidden state -> tanh(Linear) -> dropout -> Linear(num_class).

    ``pool_token``: ``cls`` (position 0), ``start`` (position ``sep``) or ``pad``
    (position ``sep - 1``).  With ``[B, C, L]`` inputs ``num_class`` must be 1 and the output is
    ``[B, C]`` (multiple choice).
    """

    POOL_TOKENS = ("cls", "start", "pad")

    def __init__(self, language_model, hidden_size, hidden_dropout, pool_token, num_class=1):
        super().__init__()
        if pool_token not in self.POOL_TOKENS:
            raise ValueError(f"pool_token must be one of {self.POOL_TOKENS}, got {pool_token!r}")
        self.model = language_model
        self.pool_token = pool_token
        self.num_class = num_class
        self.pool_layer = nn.Linear(hidden_size, hidden_size)
        self.multichoice_dropout = nn.Dropout(hidden_dropout)
        self.multichoice_head = nn.Linear(hidden_size, num_class)

    def forward(self, input_ids, position_ids, attention_mask):
        choices, (input_ids, position_ids, attention_mask) = _flatten_choices(input_ids, position_ids, attention_mask)
        if choices is not None and self.num_class != 1:
            raise ValueError("multiple-choice inputs [B, C, L] need num_class == 1")
        outputs, *mems = self.model(input_ids, position_ids, attention_mask)
        rows = torch.arange(input_ids.size(0), device=input_ids.device)
        sep = attention_mask.reshape(-1)
        if self.pool_token == "start":
            pooled = outputs[rows, sep]
        elif self.pool_token == "pad":
            pooled = outputs[rows, sep - 1]
        else:
            pooled = outputs[:, 0]
        logits = self.multichoice_head(self.multichoice_dropout(torch.tanh(self.pool_layer(pooled))))
        if choices is not None:
            logits = logits.view(-1, choices)
        return (logits, *mems)
