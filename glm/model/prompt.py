"""P-tuning prompt encoder (``PromptSpell``, spec section 1.3)."""

import random

import torch
from torch import nn

SPELL_FUNCS = ("lstm", "mlp", "none")


class PromptSpell(nn.Module):
    """Produces ``spell_length`` continuous prompt vectors shared by every sample.

    ``lstm``: embeddings -> 2-layer bidirectional LSTM -> Linear(2H, H) -> ReLU -> Linear(H, H);
    ``mlp``: embeddings -> Linear(H, H) -> ReLU -> Linear(H, H); ``none``: the raw embeddings.
    Submodule names (``spell_embeddings``, ``lstm_head``, ``mlp_head``) match the original keys.
    """

    def __init__(self, spell_length, hidden_size, spell_func="lstm"):
        super().__init__()
        if spell_func not in SPELL_FUNCS:
            raise ValueError(f"spell_func must be one of {SPELL_FUNCS}, got {spell_func!r}")
        self.spell_length = spell_length
        self.hidden_size = hidden_size
        self.spell_func = spell_func
        self.spell_embeddings = nn.Embedding(spell_length, hidden_size)
        if spell_func == "lstm":
            self.lstm_head = nn.LSTM(hidden_size, hidden_size, num_layers=2, bidirectional=True, batch_first=True)
            self.mlp_head = nn.Sequential(nn.Linear(2 * hidden_size, hidden_size), nn.ReLU(),
                                          nn.Linear(hidden_size, hidden_size))
        elif spell_func == "mlp":
            self.mlp_head = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.ReLU(),
                                          nn.Linear(hidden_size, hidden_size))

    def init_embedding(self, word_embeddings=None, task_tokens=None, rng=None):
        """Initialise each prompt vector from the word embedding of a random id in [0, 5000),
        mixed at a random ratio with the embedding of a random task (verbalizer) token when
        ``task_tokens`` are given (``--prompt-init``)."""
        rng = rng or random.Random()
        weight = word_embeddings.weight if hasattr(word_embeddings, "weight") else word_embeddings
        with torch.no_grad():
            for i in range(self.spell_length):
                vector = weight[rng.randrange(min(5000, weight.size(0)))].float()
                if task_tokens:
                    ratio = rng.random()
                    vector = ratio * vector + (1 - ratio) * weight[rng.choice(task_tokens)].float()
                self.spell_embeddings.weight[i] = vector.to(self.spell_embeddings.weight.dtype)

    def forward(self):
        embeds = self.spell_embeddings.weight.unsqueeze(0)
        if self.spell_func == "lstm":
            embeds = self.mlp_head(self.lstm_head(embeds)[0])
        elif self.spell_func == "mlp":
            embeds = self.mlp_head(embeds)
        return embeds.squeeze(0)
