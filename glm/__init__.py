"""GLM: a modern, faithful reimplementation of the General Language Model training framework.

The package is deliberately light to import: nothing here pulls in DeepSpeed, apex or CUDA.
Sub-packages:

* ``glm.mpu``        -- Megatron-style tensor model parallelism (groups, layers, loss, RNG).
* ``glm.model``      -- the GLM transformer, its heads and P-tuning prompt encoder.
* ``glm.checkpoint`` -- reading and writing checkpoints in the original on-disk layout.
"""

__version__ = "0.1.0"
