"""GLM as a model of EleutherAI's lm-evaluation-harness (optional: needs ``pip install lm-eval``).

lm-eval finds models in its registry; importing this module registers ``glm``.  lm-eval has no
plugin hook for outside models, so its command line with ``glm`` registered is the program
``lm_eval_glm.py`` at the repository root::

    python lm_eval_glm.py --model glm \\
        --model_args pretrained=CHECKPOINT_DIR,num_attention_heads=16,tokenizer=bert --tasks lambada_openai
    python lm_eval_glm.py --model glm --model_args pretrained=HF_FOLDER --tasks ...   # our export

or from Python: ``import tasks.lm_eval_backend`` and then ``lm_eval.simple_evaluate(model="glm", ...)``.
This module owns the harness adapter (loading, scoring, generation); it has no command line of its own
except the two-line alias at the bottom, and must not read GLM's flag parser.

Scoring is GLM's blank infilling, packed as in our zero-shot multiple-choice evaluation
(``tasks.multichoice.dataset.choice_samples``): ``loglikelihood(context, continuation)`` is the summed
log-probability of the continuation's tokens generated as part B (``[sop] continuation[:-1]``) at the
``[MASK]`` of part A = ``[CLS] context [MASK] [eos]`` (``unidirectional=True``: ``[CLS] [gMASK] |
[sop] context continuation[:-1]``); ``generate_until`` fills a ``[gMASK]`` (task-mask models) or
``[MASK]`` appended to the context with our decoding (``glm.generation``), then cuts the text at the
first stop string.  See docs/evaluation.md.
"""

import json
import os

import torch
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from data_utils.tokenizers import make_tokenizer
from glm.checkpoint.hf_export import HUB_MODELS, TOKENIZER_CLASSES, load_full_module, read_hf_state_dict
from glm.checkpoint.shape_inference import infer_model
from glm.generation import DecodeConfig, fill_text
from glm.model import GLMModel
from tasks.multichoice.dataset import choice_samples
from tasks.scoring import score_samples

# family -> (--tokenizer-type, --tokenizer-model-type)
TOKENIZER_TYPES = {"bert": ("BertWordPieceTokenizer", "bert-large-uncased"), "gpt2": ("GPT2BPETokenizer", "gpt2"),
                   "roberta": ("GPT2BPETokenizer", "roberta"), "chinese_sp": ("ChineseSPTokenizer", None)}


def _flag(value):
    return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes", "on")


def _read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_glm(pretrained, num_attention_heads=None, model_name=None):
    """``(GLMModel with full-vocabulary logits, {"tokenizer", "task_mask", "fix_command_token"} read from
    an exported Hugging Face folder, or {})`` for our checkpoint (any model-parallel size) or our export."""
    hints = {}
    if os.path.isfile(os.path.join(pretrained, "config.json")):
        config = _read_json(os.path.join(pretrained, "config.json"))
        state_dict = read_hf_state_dict(pretrained)
        num_attention_heads = num_attention_heads or config.get("num_attention_heads")
        info = infer_model(state_dict, 1, num_attention_heads)
        tokenizer_config = os.path.join(pretrained, "tokenizer_config.json")
        if os.path.isfile(tokenizer_config):
            saved = _read_json(tokenizer_config)
            families = {cls: family for family, cls in TOKENIZER_CLASSES.items()}
            hints = {"tokenizer": families.get(saved.get("tokenizer_class")),
                     "task_mask": saved.get("task_mask", False), "fix_command_token": saved.get("fix_command_token", False),
                     "tokenizer_path": pretrained}
    else:
        state_dict, info, _ = load_full_module(pretrained)
    if model_name:
        num_attention_heads = num_attention_heads or HUB_MODELS[model_name].num_attention_heads
    heads = num_attention_heads or info.num_attention_heads
    if not heads:
        raise ValueError("the checkpoint does not store its number of attention heads: pass "
                         "num_attention_heads=N (or model_name=glm-large, ...) in --model_args")
    if info.head != "none":
        raise ValueError(f"{pretrained} holds a {info.head} head; lm-eval needs a language model (GLMModel)")
    kwargs = info.model_kwargs(int(heads))
    kwargs.update(max_memory_length=info.max_sequence_length - 1, parallel_output=False)
    model = GLMModel(**kwargs)
    model.load_state_dict(state_dict)
    return model.eval(), hints


@register_model("glm")
class GLMHarnessModel(LM):
    """``--model_args``: ``pretrained`` (our checkpoint directory / ``mp_rank`` file, or a folder our
    exporter wrote), ``num_attention_heads``, ``model_name`` (a hub name: fixes heads and tokenizer),
    ``tokenizer`` (``bert``/``gpt2``/``roberta``/``chinese_sp``), ``task_mask``, ``fix_command_token``,
    ``tokenizer_path``, ``max_length`` (tokens of a sample; default the model's positions),
    ``unidirectional``, ``device``, ``dtype`` (``float32``/``bfloat16``/``float16``), ``batch_size``."""

    def __init__(self, pretrained, num_attention_heads=None, model_name=None, tokenizer=None, task_mask=None,
                 fix_command_token=None, tokenizer_path=None, max_length=None, unidirectional=False, device=None,
                 dtype="float32", batch_size=1, max_batch_size=None, **unused):
        super().__init__()
        model, hints = load_glm(str(pretrained), num_attention_heads, model_name)
        hub = HUB_MODELS.get(model_name) if model_name else None
        family = tokenizer or hints.get("tokenizer") or (hub.tokenizer if hub else None)
        if family not in TOKENIZER_TYPES:
            raise ValueError(f"pass tokenizer=one of {', '.join(TOKENIZER_TYPES)} (or model_name=...) in --model_args")
        task_mask = _flag(task_mask) if task_mask is not None else hints.get("task_mask", hub.task_mask if hub else False)
        fix = (_flag(fix_command_token) if fix_command_token is not None
               else hints.get("fix_command_token", hub.fix_command_token if hub else False))
        tokenizer_type, model_type = TOKENIZER_TYPES[family]
        self.tokenizer = make_tokenizer(tokenizer_type, model_type, add_block_symbols=True, add_task_mask=task_mask,
                                        fix_command_token=fix,
                                        tokenizer_path=tokenizer_path or hints.get("tokenizer_path"))
        self.task_mask = task_mask
        self._device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(device=self._device, dtype=getattr(torch, str(dtype)))
        self.max_length = int(max_length or model.transformer.max_sequence_length)
        self.unidirectional = _flag(unidirectional)
        self.batch_size = int(batch_size) if str(batch_size).isdigit() else 1

    @classmethod
    def create_from_arg_obj(cls, arg_dict, additional_config=None):
        """``--model_args`` win over the harness's own ``--device`` / ``--batch_size`` (which lm-eval
        would otherwise pass a second time)."""
        merged = {k: v for k, v in (additional_config or {}).items() if v is not None}
        merged.update(arg_dict)
        return cls(**merged)

    @classmethod
    def create_from_arg_string(cls, arg_string, additional_config=None):
        from lm_eval.utils import simple_parse_args_string
        return cls.create_from_arg_obj(simple_parse_args_string(arg_string), additional_config)

    # -- scoring ----------------------------------------------------------------------------------
    def _score(self, samples):
        return score_samples(self.model, samples, batch_size=self.batch_size, device=self._device)

    def loglikelihood(self, requests, disable_tqdm=False):
        samples = []
        for request in requests:
            context, continuation = request.args
            samples += choice_samples(self.tokenizer, context, [continuation], self.max_length,
                                      unidirectional=self.unidirectional, where=f"request {context[-40:]!r}")
        return [(logprob, greedy) for logprob, _, greedy in self._score(samples)]

    def loglikelihood_rolling(self, requests, disable_tqdm=False):
        """Every token of the text (the first one included, as lm-eval's rolling likelihood wants), in
        windows of ``(max_length - 3) // 2`` predicted tokens: each window is part B after a part A of
        ``[CLS]``, the previous window's tokens, ``[MASK]`` (and ``eos`` when there is a context).  The
        windows are the harness's own, not those of our perplexity evaluation (``tasks/language_model``),
        whose figures they therefore do not reproduce."""
        from tasks.inputs import pack_glm_input

        tok = self.tokenizer
        enc, sop, eos = (tok.get_command(n).Id for n in ("ENC", "sop", "eos"))
        mask = tok.get_command("MASK").Id
        window = max(1, (self.max_length - 3) // 2)
        results = []
        for request in requests:
            ids = list(tok.EncodeAsIds(request.args[0]).tokenization)
            samples = []
            for start in range(0, len(ids), window):
                target = ids[start:start + window]
                context = ids[max(0, start - window):start]
                part_a = [enc] + context + [mask] + ([eos] if context else [])
                samples.append(pack_glm_input(part_a, [sop] + target[:-1], target,
                                              mask_position=len(context) + 1).sample())
            results.append(sum(logprob for logprob, _, _ in self._score(samples)))
        return results

    # -- generation -------------------------------------------------------------------------------
    def generate_until(self, requests, disable_tqdm=False):
        tok = self.tokenizer
        ends = (tok.get_command("eop").Id, tok.get_command("eos").Id)
        outputs = []
        for request in requests:
            context, gen_kwargs = request.args
            gen_kwargs = dict(gen_kwargs or {})
            until = gen_kwargs.pop("until", None) or []
            until = [until] if isinstance(until, str) else list(until)
            sample = bool(gen_kwargs.get("do_sample", False))
            config = DecodeConfig(max_new_tokens=int(gen_kwargs.get("max_gen_toks", 256)),
                                  temperature=float(gen_kwargs.get("temperature", 1.0)) if sample else 1.0,
                                  top_k=int(gen_kwargs.get("top_k", 0)) if sample else 1,
                                  top_p=float(gen_kwargs.get("top_p", 0.0) or 0.0) if sample else 0.0,
                                  end_ids=ends, pad_id=tok.get_command("pad").Id, num_tokens=tok.num_tokens)
            result = fill_text(self.model, tok, context, config, task_mask=self.task_mask,
                               seq_length=self.max_length, device=self._device)
            text = "".join(blank.generated_text for blank in result.blanks)
            for stop in until:
                if stop and stop in text:
                    text = text[:text.index(stop)]
            outputs.append(text)
        return outputs


# `python -m tasks.lm_eval_backend` was the documented command before lm_eval_glm.py (issue 19): kept as an alias.
if __name__ == "__main__":
    from lm_eval.__main__ import cli_evaluate; cli_evaluate()  # noqa: E702
