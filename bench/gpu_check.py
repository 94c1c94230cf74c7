"""CUDA checks for the model core, run on a lent GPU machine (not part of the CPU test suite).

    python bench/gpu_check.py REFERENCE_DIR

REFERENCE_DIR holds ``forward_main.pt`` and ``checkpoints/glm_main`` from
``../shared/glm_reference/model``.  Prints, for the original's checkpoint on CUDA: float32
logits error against the recorded ones for both attention backends, bf16/fp16 errors, SDPA vs
reference gradients in bf16, and activation checkpointing with dropout on the CUDA RNG.
"""

import sys
import os

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from glm import mpu  # noqa: E402
from glm.checkpoint import load_model_state  # noqa: E402
from glm.model import GLMModel  # noqa: E402


def build(config, backend, **kw):
    return GLMModel(config["num_layers"], config["vocab_size"], config["hidden_size"], config["num_attention_heads"],
                    0.1, 0.1, 0.1, config["max_sequence_length"], config["max_memory_length"], False,
                    block_position_encoding=True, attention_backend=backend, **kw)


def section(title, fn):
    print(f"== {title}", flush=True)
    try:
        fn()
    except Exception as err:  # keep going: every section's result is useful on its own
        print(f"FAILED: {type(err).__name__}: {err}", flush=True)


def main(reference_dir):
    device = "cuda"
    print(torch.__version__, torch.cuda.get_device_name(), flush=True)
    vectors = torch.load(f"{reference_dir}/forward_main.pt", weights_only=True)
    config = vectors["model_config"]

    def reference_logits():
        for backend in ("sdpa", "reference"):
            model = build(config, backend).eval()
            load_model_state(model, f"{reference_dir}/checkpoints/glm_main")
            model.to(device)
            worst = {}
            for dtype in (torch.float32, torch.bfloat16, torch.float16):
                m = model.to(dtype)
                err = 0.0
                with torch.no_grad():
                    for case in vectors["cases"].values():
                        logits = m(case["input_ids"].to(device), case["position_ids"].to(device),
                                   case["attention_mask"].to(device))[0].float().cpu()
                        err = max(err, (logits - case["logits"]).abs().max().item())
                worst[str(dtype)] = err
            print(f"backend={backend}: max |logits - original| by dtype: {worst}", flush=True)
            assert worst["torch.float32"] < 1e-4

    def backend_gradients():
        grads = []
        for backend in ("sdpa", "reference"):
            torch.manual_seed(0)
            model = GLMModel(4, 30592, 1024, 16, 0.0, 0.0, 0.0, 512, 0, False, block_position_encoding=True,
                             attention_backend=backend).to(device)
            ids = torch.randint(0, 30592, (2, 512), device=device)
            pos = torch.stack([torch.arange(512), torch.zeros(512, dtype=torch.long)]).expand(2, -1, -1).to(device)
            sep = torch.tensor([400, 300], device=device)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                logits = model(ids, pos, sep)[0]
                loss = mpu.vocab_parallel_cross_entropy(logits, ids).mean()
            loss.backward()
            grads.append((loss.item(), {n: p.grad.float() for n, p in model.named_parameters()}))
        rel = max(((grads[0][1][n] - grads[1][1][n]).norm() / (grads[1][1][n].norm() + 1e-12)).item()
                  for n in grads[0][1])
        print(f"bf16 autocast loss sdpa={grads[0][0]:.5f} reference={grads[1][0]:.5f}; "
              f"max relative grad difference {rel:.2e}", flush=True)

    def checkpoint_dropout():
        results = []
        for checkpoint in (False, True):
            torch.manual_seed(1)
            model = GLMModel(3, 512, 64, 4, 0.2, 0.2, 0.2, 64, 0, checkpoint, block_position_encoding=True).to(device)
            mpu.model_parallel_manual_seed(9)
            ids = torch.randint(0, 512, (2, 32), device=device)
            pos = torch.randint(0, 64, (2, 2, 32), device=device)
            model(ids, pos, torch.tensor([10, 20], device=device))[0].square().mean().backward()
            results.append([p.grad.clone() for p in model.parameters()])
        same = all(torch.equal(a, b) for a, b in zip(*results))
        print(f"activation checkpointing with dropout on CUDA: identical gradients = {same}", flush=True)
        assert same

    section("original checkpoint on CUDA", reference_logits)
    section("SDPA vs reference attention, bf16, GLM-Large width", backend_gradients)
    section("RNG tracker + checkpointing on CUDA", checkpoint_dropout)


if __name__ == "__main__":
    main(sys.argv[1])
