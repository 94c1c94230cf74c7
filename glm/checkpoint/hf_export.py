"""Hugging Face folders in the layout of the ``THUDM/glm-*`` hub repositories, and back.

Export (``scripts/convert_glm_checkpoint_to_transformers.py CHECKPOINT MODEL_NAME``): the
checkpoint may have any model-parallel size -- its shards are merged first with the partition the
model itself declares (as ``change_mp.py`` does).  The folder receives

* ``model.safetensors`` and ``pytorch_model.bin``: the same tensors, under the GLMModel names of
  spec 1.3 (what the hub repositories hold; their ``GLMFor...`` classes add the ``glm.`` prefix
  when loading).  A head checkpoint's wrapped model (``model.*``) is written as ``glm.*`` beside
  ``pool_layer.*`` / ``multichoice_head.*``;
* ``config.json`` with the fields of the hub's ``GLMConfig`` (the GLMModel constructor arguments
  plus ``model_type``, ``architectures``, ``auto_map``, ``pool_token``, ``initializer_range``);
* the tokenizer files of the model's family that we ship or find in ``$GLM_VOCAB_DIR``
  (``vocab.txt`` for BERT, ``vocab.json`` + ``merges.txt`` for GPT-2/RoBERTa,
  ``cog-pretrain.model`` for the Chinese SentencePiece models) and ``tokenizer_config.json``.

For ``glm-10b-chinese`` the embedding row 50007 is copied into row 50009 (spec 4.5: the hub
tokenizer gives ``[gMASK]`` id 50009, the original run shared 50007 between ``eop`` and ``gMASK``).

The hub's modelling code itself (``trust_remote_code``) is not part of this project; nothing here
imports ``transformers``.

Import (``--to-glm``): a Hugging Face folder (safetensors preferred, else ``pytorch_model.bin``)
becomes ``OUT/release/mp_rank_XX_model_states.pt`` with both tracker files, optionally re-cut for
a model-parallel size.
"""

import dataclasses
import json
import os
import shutil
import tempfile
from typing import Optional

import torch

from .change_mp import _load_shards, change_model_parallel, reshard_module
from .errors import CheckpointError
from .io import atomic_torch_save, atomic_write_text, check_output_directory, staged_directory
from .layout import DEEPSPEED_TRACKER_FILENAME, TRACKER_FILENAME, model_file_name, resolve_checkpoint
from .shape_inference import checkpoint_partitions

SAFETENSORS_NAME = "model.safetensors"
BIN_NAME = "pytorch_model.bin"
HF_PREFIX = "glm."
GLM10B_CHINESE_ROW_COPY = (50007, 50009)


@dataclasses.dataclass(frozen=True)
class HubModel:
    num_layers: int
    hidden_size: int
    num_attention_heads: int
    max_sequence_length: int
    vocab_size: int
    tokenizer: str  # bert | gpt2 | roberta | chinese_sp
    task_mask: bool = False  # trained with [gMASK]/[sMASK] (--task-mask)
    fix_command_token: bool = False  # ChineseSP's corrected ids (--fix-command-token)


HUB_MODELS = {
    "glm-large": HubModel(24, 1024, 16, 512, 30592, "bert"),
    "glm-roberta-large": HubModel(24, 1024, 16, 512, 50304, "roberta"),
    "glm-large-chinese": HubModel(24, 1024, 16, 1024, 50048, "chinese_sp", True, True),
    "glm-515m": HubModel(30, 1152, 18, 1024, 50304, "gpt2", True),
    "glm-2b": HubModel(36, 2048, 32, 1024, 50304, "gpt2", True),
    "glm-10b": HubModel(48, 4096, 64, 1024, 50304, "gpt2", True),
    "glm-10b-chinese": HubModel(48, 4096, 64, 1024, 50048, "chinese_sp", True, False),
}

# (file in the HF folder, our vocabulary file name, shipped with the project)
TOKENIZER_FILES = {
    "bert": [("vocab.txt", "bert-large-uncased-vocab.txt", True)],
    "gpt2": [("vocab.json", "gpt2-vocab.json", True), ("merges.txt", "gpt2-merges.txt", True)],
    "roberta": [("vocab.json", "roberta-vocab.json", False), ("merges.txt", "roberta-merges.txt", False)],
    "chinese_sp": [("cog-pretrain.model", "cog-pretrain.model", False)],
}
TOKENIZER_CLASSES = {"bert": "GLMBertTokenizer", "gpt2": "GLMGPT2Tokenizer", "roberta": "GLMRobertaTokenizer",
                     "chinese_sp": "GLMChineseTokenizer"}
MODEL_TYPE = "glm_blank"  # not "glm": transformers >= 4.46 has a built-in "glm" (GLM-4), another model
# Our standalone Hugging Face code, copied into every exported folder (auto_map points at it).
HF_CODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hf_files")
HF_CODE_FILES = ("configuration_glm.py", "modeling_glm.py", "tokenization_glm.py")


@dataclasses.dataclass(frozen=True)
class TokenizerSpec:
    """Which GLM tokenizer a folder carries: the family and the flags the model was trained with."""
    family: str
    task_mask: bool = False
    fix_command_token: bool = False
    gmask_id: Optional[int] = None  # glm-10b-chinese: [gMASK] moved off eop's id (see the row copy)


def command_table(spec):
    """``(command tokens as dicts in the original's order, num_tokens)`` of a tokenizer spec: the same
    table ``data_utils.tokenizers`` builds, so the Hugging Face tokenizer gives our ids."""
    from data_utils.tokenizers.command_tokens import (BERT_UNCASED, CHINESE_SP, GPT2, ROBERTA,
                                                      build_command_tokens)
    table = {"bert": BERT_UNCASED, "gpt2": GPT2, "roberta": ROBERTA, "chinese_sp": CHINESE_SP}[spec.family]
    commands, num_tokens = build_command_tokens(table, block=True, task_mask=spec.task_mask,
                                                fix=spec.fix_command_token)
    rows = [{"name": c.name, "token": c.token, "id": c.Id, "lstrip": c.lstrip, "rstrip": c.rstrip} for c in commands]
    if spec.gmask_id is not None:
        for row in rows:
            if row["name"] == "gMASK":
                row["id"] = spec.gmask_id
    return rows, num_tokens


def load_full_module(checkpoint):
    """``(merged model-parallel-1 state dict, inferred model info, checkpoint dict of rank 0)``
    for a checkpoint of any model-parallel size (directory or ``mp_rank_XX`` file)."""
    resolved = resolve_checkpoint(checkpoint)
    checkpoints = _load_shards(resolved)
    shards = [c["module"] for c in checkpoints]
    partitions, info = checkpoint_partitions(shards[0], resolved.mp_size)
    first = {k: v for k, v in checkpoints[0].items() if k != "module"}
    del checkpoints
    return reshard_module(shards, partitions, 1, 0, release=True), info, first


def _to_hf_names(module, info):
    if not info.prefix:
        return dict(module)
    return {(HF_PREFIX + k[len(info.prefix):] if k.startswith(info.prefix) else k): v for k, v in module.items()}


def hf_config(info, model_name, num_attention_heads, dtype, tokenizer=None):
    """``config.json``: the hub ``GLMConfig`` fields, ``model_type: glm_blank``, an ``auto_map`` to our
    code in the folder and, with a tokenizer, the ids generation needs (real vocabulary size, blank
    markers, ``sop``/``eop``)."""
    architecture = {"classification": "GLMForSequenceClassification",
                    "cloze_fast": "GLMForMultipleChoice"}.get(info.head, "GLMForConditionalGeneration")
    config = {
        "architectures": [architecture],
        "attention_dropout_prob": 0.1,
        "attention_scale": 1.0,
        "auto_map": {
            "AutoConfig": "configuration_glm.GLMConfig",
            "AutoModel": "modeling_glm.GLMModel",
            "AutoModelForSeq2SeqLM": "modeling_glm.GLMForConditionalGeneration",
            "AutoModelForMultipleChoice": "modeling_glm.GLMForMultipleChoice",
            "AutoModelForSequenceClassification": "modeling_glm.GLMForSequenceClassification",
        },
        "block_position_encoding": info.block_position_encoding,
        "checkpoint_activations": False,
        "checkpoint_num_layers": 1,
        "embedding_dropout_prob": 0.1,
        "hidden_size": info.hidden_size,
        "initializer_range": 0.02,
        "max_sequence_length": info.max_sequence_length,
        "model_type": MODEL_TYPE,
        "num_attention_heads": num_attention_heads,
        "num_layers": info.num_layers,
        "output_dropout_prob": 0.1,
        "output_predict": info.head != "classification",
        "parallel_output": True,
        "pool_token": "cls",
        "relative_encoding": info.relative_encoding,
        "spell_func": info.spell_func,
        "spell_length": info.spell_length,
        "torch_dtype": str(dtype).replace("torch.", ""),
        "vocab_size": info.vocab_size,
    }
    if info.head == "classification":
        config["num_labels"] = info.num_class
    if model_name:
        config["_name_or_path"] = f"THUDM/{model_name}"
    if tokenizer is not None:
        commands, num_tokens = command_table(tokenizer)
        ids = {c["name"]: c["id"] for c in commands}
        config.update(num_tokens=num_tokens, sop_token_id=ids["sop"], eop_token_id=ids["eop"],
                      mask_token_ids=[ids[n] for n in ("MASK", "sMASK", "gMASK") if n in ids],
                      eos_token_id=ids["eos"], pad_token_id=ids["pad"])
    return config


def generation_config(tokenizer):
    """``generation_config.json``: stop at ``eop`` or ``eos`` (as our decoding does), pad with ``pad``."""
    ids = {c["name"]: c["id"] for c in command_table(tokenizer)[0]}
    return {"eos_token_id": [ids["eop"], ids["eos"]], "pad_token_id": ids["pad"], "use_cache": False}


def tokenizer_config(tokenizer):
    """``tokenizer_config.json``: our tokenizer class in the folder and the command-token table."""
    commands, num_tokens = command_table(tokenizer)
    name = TOKENIZER_CLASSES[tokenizer.family]
    config = {"tokenizer_class": name, "auto_map": {"AutoTokenizer": [f"tokenization_glm.{name}", None]},
              "command_tokens": commands, "num_tokens": num_tokens, "model_max_length": None,
              "task_mask": tokenizer.task_mask, "fix_command_token": tokenizer.fix_command_token}
    if tokenizer.family == "bert":
        config["do_lower_case"] = True
    config = {k: v for k, v in config.items() if v is not None}
    return config


def _write_json(path, value):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2, sort_keys=True, ensure_ascii=False)
        f.write("\n")


def _copy_tokenizer_files(tokenizer, out_dir, tokenizer_path=None, log=print):
    from data_utils.tokenizers.vocab_files import find_vocab_file
    written = []
    for target, source, shipped in TOKENIZER_FILES[tokenizer.family]:
        try:
            path = find_vocab_file(source, tokenizer_path=tokenizer_path, shipped=shipped)
        except FileNotFoundError as err:
            log(f"hf_export: NOTE tokenizer file {source} not found, {target} not written ({str(err).splitlines()[0]})")
            continue
        shutil.copyfile(path, os.path.join(out_dir, target))
        written.append(target)
    _write_json(os.path.join(out_dir, "tokenizer_config.json"), tokenizer_config(tokenizer))
    _write_json(os.path.join(out_dir, "special_tokens_map.json"), {})
    return written


def write_hf_tokenizer(tokenizer, out_dir, tokenizer_path=None, log=print):
    """A folder that ``AutoTokenizer.from_pretrained(out_dir, trust_remote_code=True)`` loads: the
    vocabulary files, ``tokenizer_config.json`` and our code (``tokenizer`` a :class:`TokenizerSpec`)."""
    os.makedirs(out_dir, exist_ok=True)
    copy_hf_code(out_dir)
    return _copy_tokenizer_files(tokenizer, out_dir, tokenizer_path, log)


def copy_hf_code(out_dir):
    """Put our standalone configuration, modelling and tokenizer code into ``out_dir``."""
    for name in HF_CODE_FILES:
        shutil.copyfile(os.path.join(HF_CODE_DIR, name), os.path.join(out_dir, name))


def export_to_hf(checkpoint, output_dir, model_name=None, num_attention_heads=None, tokenizer=None,
                 tokenizer_path=None, dtype=None, overwrite=False, log=print, task_mask=None, fix_command_token=None):
    """Write the Hugging Face folder of ``checkpoint`` (any model-parallel size) to ``output_dir``.

    ``tokenizer`` (a family) with ``task_mask`` / ``fix_command_token`` say which GLM tokenizer the
    model was trained with; a ``model_name`` fixes all three."""
    if model_name is not None and model_name not in HUB_MODELS:
        raise CheckpointError(f"unknown model name {model_name!r}; known: {', '.join(HUB_MODELS)} "
                              "(or leave it out and pass --num-attention-heads and --tokenizer)")
    check_output_directory(output_dir, [checkpoint], overwrite, allow_empty=True)
    module, info, _ = load_full_module(checkpoint)
    hub = HUB_MODELS.get(model_name)
    if hub is not None:
        found = (info.num_layers, info.hidden_size, info.vocab_size)
        wanted = (hub.num_layers, hub.hidden_size, hub.vocab_size)
        if found != wanted:
            raise CheckpointError(f"the checkpoint has (layers, hidden, vocab) = {found} but {model_name} is {wanted}")
        num_attention_heads = num_attention_heads or hub.num_attention_heads
        tokenizer = tokenizer or hub.tokenizer
        task_mask = hub.task_mask if task_mask is None else task_mask
        fix_command_token = hub.fix_command_token if fix_command_token is None else fix_command_token
    num_attention_heads = num_attention_heads or info.num_attention_heads
    if not num_attention_heads:
        raise CheckpointError("the number of attention heads is not stored in the checkpoint; "
                              "pass --num-attention-heads (or a known model name)")
    if info.hidden_size % num_attention_heads:
        raise CheckpointError(f"{num_attention_heads} heads do not divide the hidden size {info.hidden_size}")
    if model_name == "glm-10b-chinese":
        src, dst = GLM10B_CHINESE_ROW_COPY
        key = info.prefix + "word_embeddings.weight"
        weight = module[key].clone()
        weight[dst] = weight[src]
        module[key] = weight
        log(f"hf_export: glm-10b-chinese: copied embedding row {src} into row {dst} ([gMASK] id of the hub tokenizer)")
    spec = None
    if tokenizer:
        if tokenizer not in TOKENIZER_FILES:
            raise CheckpointError(f"unknown tokenizer family {tokenizer!r}; one of {', '.join(TOKENIZER_FILES)}")
        spec = TokenizerSpec(tokenizer, bool(task_mask), bool(fix_command_token),
                             GLM10B_CHINESE_ROW_COPY[1] if model_name == "glm-10b-chinese" else None)
    if dtype is not None:
        module = {k: v.to(dtype) if v.is_floating_point() else v for k, v in module.items()}
    tensors = {k: v.contiguous() for k, v in _to_hf_names(module, info).items()}
    stored_dtype = next((v.dtype for v in tensors.values() if v.is_floating_point()), torch.float32)

    from safetensors.torch import save_file
    with staged_directory(output_dir, [checkpoint]) as staging:
        save_file(tensors, os.path.join(staging, SAFETENSORS_NAME), metadata={"format": "pt"})
        torch.save(tensors, os.path.join(staging, BIN_NAME))
        _write_json(os.path.join(staging, "config.json"),
                    hf_config(info, model_name, num_attention_heads, stored_dtype, spec))
        copy_hf_code(staging)
        if spec is not None:
            _write_json(os.path.join(staging, "generation_config.json"), generation_config(spec))
            _copy_tokenizer_files(spec, staging, tokenizer_path, log)
        for name in os.listdir(staging):
            os.chmod(os.path.join(staging, name), 0o644)  # copied vocabularies may be read-only
    log(f"hf_export: wrote {output_dir} ({len(tensors)} tensors, {stored_dtype})")
    return output_dir


def _load_weight_file(path):
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file
        return load_file(path)
    return torch.load(path, map_location="cpu", weights_only=True)


def _read_weight_files(hf_dir):
    """Every tensor of the folder: safetensors preferred, else ``pytorch_model.bin``; either may be
    sharded (``*.index.json`` naming the shard of each tensor, as large hub repositories are)."""
    for name in (SAFETENSORS_NAME, BIN_NAME):
        path = os.path.join(hf_dir, name)
        if os.path.isfile(path):
            return _load_weight_file(path)
        index = path + ".index.json"
        if os.path.isfile(index):
            with open(index, encoding="utf-8") as f:
                shards = sorted(set(json.load(f)["weight_map"].values()))
            tensors = {}
            for shard in shards:
                tensors.update(_load_weight_file(os.path.join(hf_dir, shard)))
            return tensors
    raise CheckpointError(f"{hf_dir} holds neither {SAFETENSORS_NAME} nor {BIN_NAME} (nor a sharded index of them)")


def read_hf_state_dict(hf_dir):
    """The tensors of a Hugging Face folder, renamed to our layout (``glm.*`` -> ``model.*``)."""
    tensors = _read_weight_files(hf_dir)
    head = any(k.startswith(("pool_layer.", "multichoice_head.")) for k in tensors)
    has_prefix = any(k.startswith(HF_PREFIX) for k in tensors)
    if has_prefix and not head:
        return {(k[len(HF_PREFIX):] if k.startswith(HF_PREFIX) else k): v for k, v in tensors.items()}
    if has_prefix:
        return {("model." + k[len(HF_PREFIX):] if k.startswith(HF_PREFIX) else k): v for k, v in tensors.items()}
    return dict(tensors)


def import_from_hf(hf_dir, output_dir, mp_size=1, num_attention_heads=None, overwrite=False, log=print):
    """Write a Hugging Face GLM folder as ``output_dir/release/mp_rank_XX_model_states.pt``."""
    check_output_directory(output_dir, [hf_dir], overwrite)
    module = read_hf_state_dict(hf_dir)
    if num_attention_heads is None and os.path.isfile(os.path.join(hf_dir, "config.json")):
        with open(os.path.join(hf_dir, "config.json"), encoding="utf-8") as f:
            num_attention_heads = json.load(f).get("num_attention_heads")
    checkpoint_partitions(module, 1, None)  # refuse tensors our model does not know
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(output_dir))) as tmp:
        single = os.path.join(tmp, "mp1")
        atomic_torch_save({"iteration": 0, "module": module}, os.path.join(single, "release", model_file_name(0)))
        for name in (TRACKER_FILENAME, DEEPSPEED_TRACKER_FILENAME):
            atomic_write_text(os.path.join(single, name), "release\n")
        change_model_parallel(single, mp_size, output_dir, overwrite=overwrite,
                              num_attention_heads=num_attention_heads, log=lambda *a: None, protect=[hf_dir])
    log(f"hf_import: wrote {output_dir} (model-parallel size {mp_size}, tag 'release')")
    return output_dir
