#! /bin/bash
# Options every pretraining recipe shares; sourced by config/ds_*.sh after it sets $config_json.
# SAVE_PATH (where checkpoints go) must be set; MP_SIZE (tensor model-parallel size) defaults to 1.
: "${SAVE_PATH:?set SAVE_PATH to the directory where checkpoints are written}"
common_options=" \
       --model-parallel-size ${MP_SIZE:-1} \
       --save ${SAVE_PATH} \
       --resume-dataloader \
       --split 949,50,1 \
       --distributed-backend nccl \
       --checkpoint-activations \
       --deepspeed-activation-checkpointing \
       --fp16 \
       --deepspeed \
       --deepspeed_config ${config_json} \
"
