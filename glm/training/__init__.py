"""Training machinery shared by pretraining and finetuning: distributed setup, seeding, model and
optimizer construction, the two engines (plain PyTorch and DeepSpeed), checkpoints of the whole
training state, throughput logging, and the train/eval loop."""
