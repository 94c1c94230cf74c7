"""Training machinery shared by pretraining and finetuning: distributed setup, seeding, model and
optimizer construction, the two engines (plain PyTorch and DeepSpeed), checkpoints of the whole
training state, throughput logging, the losses (``losses``) and the one training core (``core``:
step, NaN guard, log line, validation loss, periodic save, stop request) that pretraining
(``pretraining``) and the finetuning driver (``tasks/finetune.py``) both run on.

Nothing here imports ``tasks`` or ``data_utils``.  The run's configuration arrives as the frozen
:class:`glm.config.RunConfig`; values a run derives (its folder, its iteration count, the process
group's rank) are passed explicitly or returned as a new configuration, never written into one."""
