"""Configuration of a GLM (blank-infilling General Language Model) folder written by the GLM project.

Standalone: copied into the exported folder and loaded by ``transformers`` with
``trust_remote_code=True``.  The field names are those of the ``THUDM/glm-*`` hub repositories'
``GLMConfig`` (the original ``GLMModel`` constructor arguments), so their ``config.json`` files load
too.  ``model_type`` is ``glm_blank``: ``glm`` now names transformers' built-in GLM-4 architecture,
a different model.
"""

from transformers import PretrainedConfig


class GLMConfig(PretrainedConfig):
    model_type = "glm_blank"
    attribute_map = {"num_hidden_layers": "num_layers", "max_position_embeddings": "max_sequence_length"}

    def __init__(self, num_layers=24, vocab_size=30592, hidden_size=1024, num_attention_heads=16,
                 embedding_dropout_prob=0.1, attention_dropout_prob=0.1, output_dropout_prob=0.1,
                 max_sequence_length=512, checkpoint_activations=False, checkpoint_num_layers=1,
                 parallel_output=True, relative_encoding=False, block_position_encoding=True, output_predict=False,
                 spell_length=None, spell_func="lstm", attention_scale=1.0, initializer_range=0.02,
                 pool_token="cls", num_tokens=None, mask_token_ids=None, sop_token_id=None, eop_token_id=None,
                 **kwargs):
        self.num_layers = num_layers
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_attention_heads = num_attention_heads
        self.embedding_dropout_prob = embedding_dropout_prob
        self.attention_dropout_prob = attention_dropout_prob
        self.output_dropout_prob = output_dropout_prob
        self.max_sequence_length = max_sequence_length
        self.checkpoint_activations = checkpoint_activations
        self.checkpoint_num_layers = checkpoint_num_layers
        self.parallel_output = parallel_output
        self.relative_encoding = relative_encoding
        self.block_position_encoding = block_position_encoding
        self.output_predict = output_predict
        self.spell_length = spell_length
        self.spell_func = spell_func
        self.attention_scale = attention_scale
        self.initializer_range = initializer_range
        self.pool_token = pool_token
        # Written by the GLM exporter (absent from hub folders): the real vocabulary size (ids at or
        # above it are padding rows and are never generated), the blank markers and the piece tokens.
        self.num_tokens = num_tokens
        self.mask_token_ids = list(mask_token_ids or [])
        self.sop_token_id = sop_token_id
        self.eop_token_id = eop_token_id
        kwargs.setdefault("tie_word_embeddings", True)
        super().__init__(**kwargs)
