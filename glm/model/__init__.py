"""The GLM model: ``GLMModel``, its downstream heads, P-tuning prompts and FLOP accounting."""

from .glm import GLMModel, glm_get_params_for_weight_decay_optimization
from .heads import (
    GLMForMultiTokenCloze,
    GLMForMultiTokenClozeFast,
    GLMForSingleTokenCloze,
    GLMForSequenceClassification,
)
from .prompt import PromptSpell
from .flops import count_parameters, executed_flops, flops_per_token, hardware_flops_per_token
