#! /bin/bash
# GLM-10B as config/ds_block_10B.sh, with ZeRO-3 and the optimizer state and the parameters offloaded
# to CPU memory (config_block_10B_zero3_offload.json; issue 16): for GPUs that cannot hold ZeRO-2's
# share of the fp16 weights, gradients and optimizer.  Sourced like the other recipes; defines $gpt_options.
zero3_dir=$(dirname "$(realpath "${BASH_SOURCE[0]}")")
# shellcheck source=ds_block_10B.sh
source "$zero3_dir/ds_block_10B.sh"
gpt_options=${gpt_options/config_block_10B.json/config_block_10B_zero3_offload.json}
gpt_options=${gpt_options/blocklm-10b /blocklm-10b-zero3-offload }
