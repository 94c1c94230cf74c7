"""GLM (blank-infilling General Language Model) for ``transformers``, written by the GLM project.

Standalone: copied into the exported folder and loaded with ``trust_remote_code=True``; it needs only
``torch`` and ``transformers``.  The parameter names are the original ``GLMModel``'s (``word_embeddings``,
``transformer.layers.{i}.attention.query_key_value``, ...), under ``glm.`` in the task models, so the
hub repositories' weights and our exported weights load unchanged.  The GLM project's tests check that
these models give the logits, generated tokens, losses and choice scores of its own ``GLMModel``.

The maths (spec of the original): pre-LayerNorm blocks (eps 1e-5), fused QKV (rows: all queries, all keys,
all values), scores ``q (k^T / sqrt(d))`` masked as ``scores * m - 65504 (1 - m)``, tanh GELU, 4H MLP,
2D positions ``position_embeddings[p] + block_position_embeddings[b]``, logits tied to the word
embeddings.

``attention_mask`` may be: a separator ``sep`` (one value, or one per row: rows attend to every key
before ``sep`` and causally after it, GLM's part A / part B), a ``[B, L]`` 0/1 padding mask (the whole
row is part A, padded keys hidden), or a full 0/1 matrix ``[B, 1, L, L]`` / ``[B, L, L]``; ``None``
means the whole row is part A.  ``position_ids`` ``[B, 2, L]`` (``None``: positions ``0..L-1``, block
positions 0).
"""

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutput, ModelOutput, SequenceClassifierOutput

try:
    from .configuration_glm import GLMConfig
except ImportError:  # loaded as a plain module (not through transformers' dynamic modules)
    from configuration_glm import GLMConfig

MASK_FILL = -65504.0  # what the original adds to hidden scores (the fp16 minimum)
IGNORE_INDEX = -100


# ---------------------------------------------------------------------------------------------------
# Masks

def attention_matrix(attention_mask, batch, length, device):
    """Any accepted ``attention_mask`` as a 0/1 float matrix ``[B or 1, 1, L, L]``."""
    if attention_mask is None:
        return torch.ones(1, 1, length, length, device=device)
    attention_mask = torch.as_tensor(attention_mask, device=device)
    if attention_mask.numel() in (1, batch) and attention_mask.dim() <= 1:
        sep = attention_mask.reshape(-1, 1, 1).long()
        query = torch.arange(length, device=device).view(1, -1, 1)
        key = torch.arange(length, device=device).view(1, 1, -1)
        return ((key <= query) | (key < sep)).float().unsqueeze(1)
    if attention_mask.dim() == 2:  # [B, L] padding mask: everything is part A, padded keys hidden
        return attention_mask[:, None, None, :].float().expand(-1, 1, length, -1)
    if attention_mask.dim() == 3:
        attention_mask = attention_mask.unsqueeze(1)
    return attention_mask[..., -length:].float()


# ---------------------------------------------------------------------------------------------------
# Layers

class GLMSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.attention_scale = config.attention_scale
        self.query_key_value = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.attention_dropout = nn.Dropout(config.attention_dropout_prob)
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.output_dropout = nn.Dropout(config.output_dropout_prob)

    def _heads(self, x):
        batch, length = x.shape[:2]
        return x.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, hidden_states, mask):
        query, key, value = (self._heads(t) for t in torch.chunk(self.query_key_value(hidden_states), 3, dim=-1))
        scale = self.attention_scale
        if scale > 1.0:  # the original's fp16-friendly variant, same softmax
            scores = torch.matmul(query / math.sqrt(scale), key.transpose(-1, -2) / math.sqrt(self.head_dim * scale))
        else:
            scores = torch.matmul(query, key.transpose(-1, -2) / math.sqrt(self.head_dim))
        mask = mask.to(scores.dtype)
        scores = scores * mask + MASK_FILL * (1.0 - mask)
        if scale > 1.0:
            scores = (scores - scores.max(dim=-1, keepdim=True)[0]) * scale
        probs = self.attention_dropout(torch.softmax(scores, dim=-1))
        context = torch.matmul(probs, value).transpose(1, 2).reshape(hidden_states.shape)
        return self.output_dropout(self.dense(context))


class GLMMLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense_h_to_4h = nn.Linear(config.hidden_size, 4 * config.hidden_size)
        self.dense_4h_to_h = nn.Linear(4 * config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.output_dropout_prob)

    def forward(self, x):
        return self.dropout(self.dense_4h_to_h(F.gelu(self.dense_h_to_4h(x), approximate="tanh")))


class GLMBlock(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.input_layernorm = nn.LayerNorm(config.hidden_size, eps=1e-5)
        self.attention = GLMSelfAttention(config)
        self.post_attention_layernorm = nn.LayerNorm(config.hidden_size, eps=1e-5)
        self.mlp = GLMMLP(config)

    def forward(self, hidden_states, mask):
        x = hidden_states + self.attention(self.input_layernorm(hidden_states), mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class GLMTransformer(nn.Module):
    def __init__(self, config):
        super().__init__()
        rows = config.max_sequence_length + (1 if config.block_position_encoding else 0)
        self.position_embeddings = nn.Embedding(rows, config.hidden_size)
        if config.block_position_encoding:
            self.block_position_embeddings = nn.Embedding(rows, config.hidden_size)
        self.block_position_encoding = config.block_position_encoding
        self.embedding_dropout = nn.Dropout(config.embedding_dropout_prob)
        self.layers = nn.ModuleList([GLMBlock(config) for _ in range(config.num_layers)])
        self.final_layernorm = nn.LayerNorm(config.hidden_size, eps=1e-5)

    def forward(self, embeddings, position_ids, mask):
        if self.block_position_encoding:
            hidden = (embeddings + self.position_embeddings(position_ids[:, 0])
                      + self.block_position_embeddings(position_ids[:, 1]))
        else:
            hidden = embeddings + self.position_embeddings(position_ids if position_ids.dim() == 2 else position_ids[:, 0])
        hidden = self.embedding_dropout(hidden)
        for layer in self.layers:
            hidden = layer(hidden, mask)
        return self.final_layernorm(hidden)


# ---------------------------------------------------------------------------------------------------
# Models

class GLMPreTrainedModel(PreTrainedModel):
    config_class = GLMConfig
    base_model_prefix = "glm"
    supports_gradient_checkpointing = False
    _no_split_modules = ["GLMBlock"]

    def _init_weights(self, module):
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


@dataclass
class GLMOutput(ModelOutput):
    last_hidden_state: Optional[torch.FloatTensor] = None
    logits: Optional[torch.FloatTensor] = None


class GLMModel(GLMPreTrainedModel):
    """Word embeddings, the transformer and the tied output projection (``logits``, unless the
    config says ``output_predict: false``)."""

    def __init__(self, config):
        super().__init__(config)
        if config.relative_encoding:
            raise NotImplementedError("this folder's model uses the Transformer-XL relative encoding, which the "
                                      "Hugging Face GLM code does not implement; use the GLM project directly")
        if config.spell_length is not None:
            raise NotImplementedError("P-tuning prompts (spell_length) are not supported by the Hugging Face GLM code")
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.transformer = GLMTransformer(config)
        self.post_init()

    def get_input_embeddings(self):
        return self.word_embeddings

    def set_input_embeddings(self, value):
        self.word_embeddings = value

    def forward(self, input_ids=None, position_ids=None, attention_mask=None, return_dict=None, **kwargs):
        batch, length = input_ids.shape
        if position_ids is None:
            position_ids = torch.stack([torch.arange(length, device=input_ids.device).expand(batch, -1),
                                        torch.zeros_like(input_ids)], dim=1)
        mask = attention_matrix(attention_mask, batch, length, input_ids.device)
        hidden = self.transformer(self.word_embeddings(input_ids), position_ids, mask)
        logits = self.project(hidden) if self.config.output_predict else None
        return GLMOutput(last_hidden_state=hidden, logits=logits)

    def project(self, hidden):
        """Logits through the tied word embeddings."""
        return F.linear(hidden, self.word_embeddings.weight)

    def logits(self, input_ids, position_ids=None, attention_mask=None):
        """Vocabulary logits whatever ``output_predict`` says (the task models need them)."""
        output = self(input_ids, position_ids, attention_mask)
        return output.logits if output.logits is not None else self.project(output.last_hidden_state)


class GLMForConditionalGeneration(GLMPreTrainedModel, GenerationMixin):
    """Blank filling: ``generate`` fills every ``[MASK]``/``[sMASK]``/``[gMASK]`` of the context left to
    right; ``labels`` give the training loss (cross entropy over the positions whose label is not -100)."""

    def __init__(self, config):
        super().__init__(config)
        self.glm = GLMModel(config)
        self.post_init()

    def get_input_embeddings(self):
        return self.glm.word_embeddings

    def forward(self, input_ids=None, position_ids=None, attention_mask=None, labels=None, return_dict=None,
                real_vocabulary_only=False, **kwargs):
        """``real_vocabulary_only`` (set by ``generate``): the padded vocabulary rows (ids ``>= num_tokens``,
        no token) get ``-inf`` logits, so they are never generated and the log-probabilities that beam
        search adds up are normalised over the real tokens, as our decoding does."""
        logits = self.glm.logits(input_ids, position_ids, attention_mask)
        if real_vocabulary_only and self.config.num_tokens:
            logits = logits.clone()
            logits[..., self.config.num_tokens:] = -float("inf")
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), labels.view(-1), ignore_index=IGNORE_INDEX)
        return CausalLMOutput(loss=loss, logits=logits)

    # -- generation -------------------------------------------------------------------------------
    def prepare_inputs_for_generation(self, input_ids, position_ids=None, generation_attention_mask=None, **kwargs):
        """The whole sequence so far (no cache: each step recomputes it), with its positions and mask."""
        if position_ids is None or generation_attention_mask is None:
            raise ValueError("GLM generates from the output of tokenizer.build_inputs_for_generation(...): pass its "
                             "input_ids, position_ids and generation_attention_mask")
        length = input_ids.size(1)
        if length > position_ids.size(-1):
            raise ValueError(f"the sequence reached {length} tokens but build_inputs_for_generation prepared "
                             f"{position_ids.size(-1)}: raise its max_gen_length")
        return {"input_ids": input_ids, "position_ids": position_ids[..., :length],
                "attention_mask": generation_attention_mask[..., :length, :length], "real_vocabulary_only": True}

    @torch.no_grad()
    def generate(self, input_ids=None, position_ids=None, generation_attention_mask=None, **kwargs):
        if input_ids is None or position_ids is None or generation_attention_mask is None:
            return super().generate(input_ids=input_ids, position_ids=position_ids,
                                    generation_attention_mask=generation_attention_mask, **kwargs)
        context_length = int((position_ids[0, 1] == 0).sum()) if position_ids.dim() == 3 else input_ids.size(1) - 1
        blanks = [self._blank_positions(row[:context_length]) for row in input_ids]
        beams = int(kwargs.get("num_beams") or self.generation_config.num_beams or 1)
        if beams > 1 and kwargs.get("do_sample"):
            raise ValueError("beam sampling is not supported by the GLM code: use num_beams > 1 with do_sample=False")
        if beams > 1 or any(len(b) > 1 for b in blanks):
            if kwargs.get("num_return_sequences", 1) != 1:
                raise ValueError("num_return_sequences > 1 is not supported with beam search or several blanks")
        else:
            return super().generate(input_ids=input_ids, position_ids=position_ids,
                                    generation_attention_mask=generation_attention_mask, **kwargs)
        budget = kwargs.pop("max_new_tokens", None)
        max_length = kwargs.pop("max_length", None)
        if budget is None:
            budget = (max_length or self.generation_config.max_length or 20) - input_ids.size(1)
        rows = []
        for row, row_blanks in enumerate(blanks):
            context_mask = generation_attention_mask[row, 0, 0, :context_length]
            rows.append(self._fill_blanks(input_ids[row, :context_length], context_mask, row_blanks, budget,
                                          kwargs))
        pad = self.generation_config.pad_token_id or 0
        longest = max(len(r) for r in rows)
        return torch.tensor([r + [pad] * (longest - len(r)) for r in rows], device=input_ids.device)

    def _blank_positions(self, context_ids):
        marks = torch.tensor(self.config.mask_token_ids or [], dtype=context_ids.dtype, device=context_ids.device)
        return torch.isin(context_ids, marks).nonzero().view(-1).tolist()

    def _end_ids(self, kwargs):
        ends = kwargs.get("eos_token_id", self.generation_config.eos_token_id)
        return set([ends] if isinstance(ends, int) else list(ends or []))

    def _fill_blanks(self, context, context_mask, blank_positions, budget, kwargs):
        """One context: blank after blank, each a ``generate`` call that sees the context and the earlier
        blanks (fed as ``[sop] + tokens``, without their end token, as the original's memory holds them)."""
        device = context.device
        sop = self.config.sop_token_id
        ends = self._end_ids(kwargs)
        filled = []  # (mask position, generated ids without the end token)
        output = context.tolist()
        for position in blank_positions:
            tokens = context.tolist()
            positions, blocks = list(range(len(tokens))), [0] * len(tokens)
            for done_position, ids in filled:
                tokens += [sop] + ids
                positions += [done_position] * (len(ids) + 1)
                blocks += list(range(1, len(ids) + 2))
            prefix = len(tokens)
            tokens.append(sop)
            total = prefix + 1 + budget
            positions += [position] * (budget + 1)
            blocks += list(range(1, budget + 2))
            attention = torch.zeros(total, total, device=device)
            attention[:, :len(context)] = context_mask.float()
            start = len(context)
            for _, ids in filled:  # each earlier block: causal inside, visible to everything after it
                size = len(ids) + 1
                attention[start:start + size, start:start + size] = torch.tril(torch.ones(size, size, device=device))
                attention[start + size:, start:start + size] = 1.0
                start += size
            attention[prefix:, prefix:] = torch.tril(torch.ones(total - prefix, total - prefix, device=device))
            result = self._generate_block(
                torch.tensor([tokens], device=device), torch.tensor([[positions, blocks]], device=device),
                attention[None, None], budget, kwargs)[len(tokens):]
            generated = []
            for token in result:
                if token in ends:
                    break
                generated.append(token)
            end = result[len(generated):len(generated) + 1]  # the end token, when one was generated
            output += [sop] + generated + end
            filled.append((position, generated))
        return output

    def _generate_block(self, input_ids, position_ids, attention, budget, kwargs):
        """The tokens of one row (``input_ids [1, L]`` ending with ``sop``) followed by one generated block."""
        if int(kwargs.get("num_beams") or self.generation_config.num_beams or 1) > 1:
            return self._beam_search(input_ids, position_ids, attention, budget, kwargs)
        return super().generate(input_ids=input_ids, position_ids=position_ids, generation_attention_mask=attention,
                                max_new_tokens=budget, **kwargs)[0].tolist()

    def _beam_search(self, input_ids, position_ids, attention, budget, kwargs):
        """Beam search of one block as the GLM project decodes (glm/generation/beam_search.py), not as
        transformers does: ``2 * num_beams`` candidates per step, a candidate ending in an end id among the
        first ``num_beams`` finishes a hypothesis scored ``sum log p / (1 + n) ** length_penalty`` (``n``
        tokens, ``sop`` counted), a row stops when it has ``num_beams`` hypotheses and the worst of them
        scores at least the step's best candidate (end tokens included) normalised at the length before
        the step (the original's rule); among equal scores the hypothesis found last wins;
        log-probabilities are normalised over the real vocabulary.
        Returns the row's ids followed by the best hypothesis and its end token (if it ended on one)."""
        unsupported = [k for k in ("min_length", "min_new_tokens", "no_repeat_ngram_size", "temperature", "top_k",
                                   "top_p") if kwargs.get(k) not in (None, 0, 1.0)]
        if unsupported:
            raise ValueError(f"{', '.join(unsupported)} not supported with beam search by the GLM code")
        k = int(kwargs.get("num_beams") or self.generation_config.num_beams)
        penalty = float(kwargs.get("length_penalty", 0.0) or 0.0)
        ends = self._end_ids(kwargs)
        prefix = input_ids.size(1)
        sequences = input_ids.expand(k, -1)
        beam_scores = torch.full((k,), -1e9, device=input_ids.device)
        beam_scores[0] = 0.0
        finished = []  # (score, ids, end token)

        def normalise(total, length):
            return total / (max(length + 1, 1) ** penalty)

        def add(ids, total, end):
            if total == -float("inf"):
                return
            score = normalise(total, len(ids))
            if len(finished) < k or score > min(f[0] for f in finished):
                finished.append((score, ids, end))
                if len(finished) > k:
                    finished.remove(min(finished, key=lambda f: f[0]))

        done = False
        for step in range(budget):
            length = sequences.size(1)
            logits = self(input_ids=sequences, position_ids=position_ids[..., :length].expand(k, -1, -1),
                          attention_mask=attention[..., :length, :length].expand(k, -1, -1, -1),
                          real_vocabulary_only=True).logits[:, -1].float()
            vocab = logits.size(-1)
            scores = (torch.log_softmax(logits, dim=-1) + beam_scores[:, None]).view(-1)
            top_scores, top_index = torch.topk(scores, min(2 * k, scores.numel()))
            chosen = []
            for rank, (score, index) in enumerate(zip(top_scores.tolist(), top_index.tolist())):
                if score == -float("inf"):
                    break
                source, token = divmod(index, vocab)
                if token in ends:
                    if rank < k:
                        add(sequences[source, prefix:].tolist(), score, token)
                    continue
                chosen.append((token, score, source))
                if len(chosen) == k:
                    break
            while len(chosen) < k:  # too few live candidates: dead beams
                chosen.append((self.generation_config.pad_token_id or 0, -float("inf"), 0))
            best_live = max(score for _, score, _ in chosen)
            done = best_live == -float("inf") or (
                len(finished) >= k and min(f[0] for f in finished) >= normalise(top_scores[0].item(), step))
            sources = torch.tensor([source for _, _, source in chosen], device=sequences.device)
            tokens = torch.tensor([[token] for token, _, _ in chosen], device=sequences.device)
            sequences = torch.cat([sequences[sources], tokens], dim=1)
            beam_scores = torch.tensor([score for _, score, _ in chosen], device=sequences.device)
            if done:
                break
        if not done:
            for row in range(k):
                add(sequences[row, prefix:].tolist(), float(beam_scores[row]), None)
        if not finished:
            return input_ids[0].tolist()
        _, ids, end = max(reversed(finished), key=lambda f: f[0])
        return input_ids[0].tolist() + ids + ([end] if end is not None else [])


@dataclass
class GLMMultipleChoiceOutput(ModelOutput):
    loss: Optional[torch.FloatTensor] = None
    logits: Optional[torch.FloatTensor] = None
    lm_logits: Optional[torch.FloatTensor] = None


class GLMForMultipleChoice(GLMPreTrainedModel):
    """Scores each choice by the summed log-probability of its tokens (the inputs of
    ``tokenizer.build_inputs_for_multiple_choice``); ``logits`` ``[B, C]``, ``labels`` give a cross entropy."""

    def __init__(self, config):
        super().__init__(config)
        self.glm = GLMModel(config)
        self.post_init()

    def forward(self, input_ids=None, position_ids=None, attention_mask=None, choice_ids=None, choice_indices=None,
                labels=None, return_dict=None, **kwargs):
        lm_logits = self.glm.logits(input_ids, position_ids, attention_mask)
        log_probs = torch.log_softmax(lm_logits.float(), dim=-1)
        scores = []
        for row, choices, indices in zip(log_probs, choice_ids, choice_indices):
            scores.append(torch.stack([row[index.to(row.device), choice.to(row.device)].sum()
                                       for choice, index in zip(choices, indices)]))
        width = max(len(s) for s in scores)
        logits = torch.stack([F.pad(s, (0, width - len(s)), value=-float("inf")) for s in scores])
        loss = F.cross_entropy(logits, labels.view(-1)) if labels is not None else None
        return GLMMultipleChoiceOutput(loss=loss, logits=logits, lm_logits=lm_logits)


class GLMForSequenceClassification(GLMPreTrainedModel):
    """A classification head on the final hidden state of the first token (``pool_token: cls``):
    ``tanh(pool_layer)``, dropout, ``multichoice_head``."""

    def __init__(self, config):
        super().__init__(config)
        if config.pool_token != "cls":
            raise NotImplementedError(f"pool_token {config.pool_token!r}: only 'cls' is supported here")
        self.glm = GLMModel(config)
        self.pool_layer = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.output_dropout_prob)
        self.multichoice_head = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, position_ids=None, attention_mask=None, labels=None, return_dict=None,
                **kwargs):
        shape = input_ids.shape
        if input_ids.dim() == 3:  # [B, C, L]: one score per choice
            input_ids = input_ids.reshape(-1, shape[-1])
            position_ids = None if position_ids is None else position_ids.reshape(-1, *position_ids.shape[2:])
            if attention_mask is not None and torch.as_tensor(attention_mask).dim() > 1:
                attention_mask = attention_mask.reshape(-1, *attention_mask.shape[2:])
            elif attention_mask is not None:
                attention_mask = attention_mask.reshape(-1)
        hidden = self.glm(input_ids, position_ids, attention_mask).last_hidden_state
        logits = self.multichoice_head(self.dropout(torch.tanh(self.pool_layer(hidden[:, 0]))))
        if len(shape) == 3:
            logits = logits.view(shape[0], shape[1])
        loss = F.cross_entropy(logits, labels.view(-1)) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)
