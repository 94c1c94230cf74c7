"""Whether a device computes in bfloat16 natively, which decides where ``--bf16`` pays off."""

import torch


def native_bf16(device):
    """True for CUDA devices with bf16 support and for CPUs with bf16 instructions (AVX512-BF16 or AMX,
    as oneDNN reports them); elsewhere bf16 is emulated and slower than float32."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False
