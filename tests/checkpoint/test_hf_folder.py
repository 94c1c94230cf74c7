"""The exported Hugging Face folder, loaded by ``transformers`` alone (offline, trust_remote_code): our
tokenizer ids for every family, our GLMModel's logits, our generation's tokens (greedy and beam, every
blank), our training loss and our zero-shot multiple-choice scores.  This is the guard that keeps the
standalone files in glm/checkpoint/hf_files/ from drifting away from the library."""

import os

os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1")

import json  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

transformers = pytest.importorskip("transformers")

from data_utils.tokenizers import make_tokenizer  # noqa: E402
from glm.checkpoint import save_model_checkpoint  # noqa: E402
from glm.checkpoint.hf_export import TokenizerSpec, command_table, export_to_hf, write_hf_tokenizer  # noqa: E402
from glm.generation import DecodeConfig, encode_context, fill_blanks  # noqa: E402
from tests.conftest import shared_dir  # noqa: E402
from tests.helpers import tiny_glm  # noqa: E402

VOCAB_DIR = shared_dir() / "assets" / "vocab"
QUIET = dict(log=lambda *a: None)
# family -> (our --tokenizer-type, --tokenizer-model-type, padded vocabulary)
FAMILIES = {"bert": ("BertWordPieceTokenizer", "bert-large-uncased", 30592),
            "gpt2": ("GPT2BPETokenizer", "gpt2", 50304),
            "roberta": ("GPT2BPETokenizer", "roberta", 50304),
            "chinese_sp": ("ChineseSPTokenizer", None, 50048)}
TEXTS = ["Tsinghua University is located in [MASK].", "Ng is an adjunct professor at [MASK] (Stanford).",
         "  Hello,   world!  ", "Don't stop [sMASK] café naïve Ünïcödé 1,234.5 $9", "line\nbreak\ttab",
         "中文的分词 测试。[MASK]，好的", "emoji 🙂 and ｆｕｌｌｗｉｄｔｈ", "[CLS] x [SEP] <|endoftext|> [UNK]",
         "ends with a task mask [gMASK]", "<|startofpiece|> piece <|endofpiece|>", "", "   ",
         "ctrl\x00\ufffd zero\u200bwidth nb\xa0sp a$b^c`d ~x", "Ǆemo ǅ x²³ ½ ⅷ ١٢٣ ß İ"]


@pytest.fixture(autouse=True)
def _modules_cache(tmp_path_factory, monkeypatch):
    # transformers copies remote code into a modules cache: keep it out of the home directory
    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path_factory.getbasetemp() / "hf_modules"))


def ours(family, task_mask=True, fix=False):
    tokenizer_type, model_type, _ = FAMILIES[family]
    return make_tokenizer(tokenizer_type, model_type, add_block_symbols=True, add_task_mask=task_mask,
                          fix_command_token=fix, tokenizer_path=str(VOCAB_DIR))


def need_vocab(family):
    if family in ("roberta", "chinese_sp") and not (VOCAB_DIR / "roberta-vocab.json").is_file():
        pytest.skip(f"{VOCAB_DIR} lacks the RoBERTa / Chinese vocabulary files")


def reference_texts(family):
    """The texts recorded with the original tokenizers of this family (glm_reference/tokenizers)."""
    texts = []
    for path in (shared_dir() / "glm_reference" / "tokenizers").glob("*.json"):
        data = json.loads(path.read_text())
        if path.name.startswith({"bert": "bert", "gpt2": "gpt2", "roberta": "roberta", "chinese_sp": "chinese"}[family]):
            texts += [case["text"] for case in data["cases"]]
    return texts


@pytest.mark.parametrize("family,task_mask,fix", [("bert", False, False), ("bert", True, False),
                                                  ("gpt2", True, False), ("roberta", False, False),
                                                  ("chinese_sp", True, True), ("chinese_sp", True, False)])
def test_tokenizer_ids_are_ours(tmp_path, family, task_mask, fix):
    need_vocab(family)
    from transformers import AutoTokenizer

    folder = tmp_path / "tok"
    write_hf_tokenizer(TokenizerSpec(family, task_mask, fix), str(folder), tokenizer_path=str(VOCAB_DIR), **QUIET)
    hf = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=True)
    glm = ours(family, task_mask, fix)
    texts = TEXTS + reference_texts(family)
    assert len(texts) > len(TEXTS)
    for text in texts:
        ids = list(glm.EncodeAsIds(text).tokenization)
        assert hf(text, add_special_tokens=False)["input_ids"] == ids, text
        if text.strip():
            assert hf(text)["input_ids"] == encode_context(glm, text), text
    enc, eos, sop = (glm.get_command(n).Id for n in ("ENC", "eos", "sop"))
    assert (hf.cls_token_id, hf.eos_token_id, hf.sop_token_id, hf.eop_token_id) == (
        enc, eos, sop, glm.get_command("eop").Id)
    if family in ("gpt2", "roberta"):  # byte-level BPE decodes exactly
        assert hf.decode(hf("Hello, world! café 🙂", add_special_tokens=False)["input_ids"]) == "Hello, world! café 🙂"


def test_glm10b_chinese_gmask_moves_to_50009(tmp_path):
    need_vocab("chinese_sp")
    from transformers import AutoTokenizer

    folder = tmp_path / "tok"
    write_hf_tokenizer(TokenizerSpec("chinese_sp", True, False, 50009), str(folder), tokenizer_path=str(VOCAB_DIR),
                       **QUIET)
    hf = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=True)
    glm = ours("chinese_sp", True, False)
    text = "清华大学位于[gMASK]"
    expected = [50009 if i == 50007 else i for i in glm.EncodeAsIds(text).tokenization]
    assert glm.get_command("gMASK").Id == 50007 and hf.gmask_token_id == 50009 and hf.eop_token_id == 50007
    assert hf(text, add_special_tokens=False)["input_ids"] == expected
    assert command_table(TokenizerSpec("chinese_sp", True, False, 50009))[1] == 50009  # 50009 is never generated


# ---------------------------------------------------------------------------------------------------
# A tiny model with the BERT and the GPT-2 vocabularies, exported and loaded back

def _export(tmp_path_factory, family, seed):
    _, _, vocab = FAMILIES[family]
    torch.manual_seed(seed)
    model = tiny_glm(vocab=vocab, hidden=32, heads=4, layers=2, max_seq=96, mem=95, parallel_output=False).eval()
    with torch.no_grad():  # make the end of a piece likely enough that some blanks end early
        eop = ours(family).get_command("eop").Id
        model.word_embeddings.weight[eop] *= 6.0
    root = tmp_path_factory.mktemp(f"hf_{family}")
    save_model_checkpoint(str(root / "ckpt"), "release", {"module": model.state_dict(), "iteration": 0})
    folder = export_to_hf(str(root / "ckpt"), str(root / "hf"), num_attention_heads=4, tokenizer=family,
                          task_mask=True, tokenizer_path=str(VOCAB_DIR), **QUIET)
    return model, folder


@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory):
    return _export(tmp_path_factory, "bert", 0)


@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory):
    return _export(tmp_path_factory, "gpt2", 1)


def load(folder, auto="AutoModelForSeq2SeqLM"):
    from transformers import AutoTokenizer
    model = getattr(transformers, auto).from_pretrained(folder, trust_remote_code=True).eval()
    return AutoTokenizer.from_pretrained(folder, trust_remote_code=True), model


def test_folder_is_self_contained_and_not_glm4(bert_folder):
    _, folder = bert_folder
    config = json.load(open(os.path.join(folder, "config.json")))
    assert config["model_type"] == "glm_blank" and config["architectures"] == ["GLMForConditionalGeneration"]
    for target in config["auto_map"].values():
        assert os.path.isfile(os.path.join(folder, target.split(".")[0] + ".py"))
    from transformers import AutoConfig, AutoModelForSeq2SeqLM
    for loader in (AutoConfig, AutoModelForSeq2SeqLM):
        with pytest.raises(ValueError, match="trust_remote_code=True"):
            loader.from_pretrained(folder)
    _, model = load(folder, "AutoModel")
    assert type(model).__name__ == "GLMModel"


def _max_logit_difference(ours_model, hf_model, ids, positions, hf_mask, sep):
    with torch.no_grad():
        expected = ours_model(ids, positions, sep)[0]
        got = hf_model(input_ids=ids, position_ids=positions, attention_mask=hf_mask).logits
    return (expected - got).abs().max().item()


@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_logits_equal_our_glm_model(family, bert_folder, gpt2_folder):
    model, folder = {"bert": bert_folder, "gpt2": gpt2_folder}[family]
    tokenizer, hf = load(folder)
    texts = ["Tsinghua University is located in [MASK].", "a [MASK] b [sMASK] and more words here"]
    inputs = tokenizer.build_inputs_for_generation(tokenizer(texts, return_tensors="pt", padding=True),
                                                   targets=["Beijing, China", "x y"], max_gen_length=8)
    ids, positions = inputs["input_ids"], inputs["position_ids"]
    full = inputs["attention_mask"]
    # the explicit mask of build_inputs_for_generation, and GLM's separator form
    worst = _max_logit_difference(model, hf, ids, positions, full, full.to(torch.float32))
    seps = torch.tensor([ids.size(1) - 8] * 2)
    worst = max(worst, _max_logit_difference(model, hf, ids, positions, seps, seps))
    print(f"{family}: max |logit difference| = {worst:.3g}")
    assert worst < 1e-5


def test_training_loss_equals_ours(bert_folder):
    model, folder = bert_folder
    tokenizer, hf = load(folder)
    texts, targets = ["Tsinghua University is located in [MASK].", "The [MASK] sat on the mat."], ["Beijing", "big cat"]
    inputs = tokenizer.build_inputs_for_generation(tokenizer(texts, return_tensors="pt", padding=True),
                                                   targets=targets, max_gen_length=8, padding=False)
    loss = hf(**inputs).loss
    # ours: part A = the context, part B = [sop] + target (+ eop) at the mask, mean token cross entropy
    glm = ours("bert")
    losses = []
    for text, target in zip(texts, targets):
        context = encode_context(glm, text)
        answer = list(glm.EncodeAsIds(target).tokenization) + [glm.get_command("eop").Id]
        mask = context.index(glm.get_command("MASK").Id)
        ids = torch.tensor([context + [glm.get_command("sop").Id] + answer[:-1]])
        positions = torch.tensor([[list(range(len(context))) + [mask] * len(answer),
                                   [0] * len(context) + list(range(1, len(answer) + 1))]])
        logits = model(ids, positions, torch.tensor([len(context)]))[0][0, len(context):]
        losses.append(F.cross_entropy(logits, torch.tensor(answer), reduction="none"))
    expected = torch.cat(losses).mean()
    print(f"training loss: hf {loss.item():.8f} ours {expected.item():.8f}")
    assert torch.allclose(loss, expected, atol=1e-6)


GENERATION_CASES = ["Tsinghua University is located in [MASK].", "The [MASK] sat on the [sMASK] near the door.",
                    "Ng is an adjunct professor at [MASK] and [MASK] too [sMASK]", "Deep learning is [gMASK]"]


@pytest.mark.parametrize("num_beams,length_penalty", [(1, 0.0), (3, 0.0), (2, 1.0)])
@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_generate_equals_our_blank_filling(family, num_beams, length_penalty, bert_folder, gpt2_folder):
    model, folder = {"bert": bert_folder, "gpt2": gpt2_folder}[family]
    tokenizer, hf = load(folder)
    glm = ours(family)
    max_new = 6
    ends = [glm.get_command("eop").Id, glm.get_command("eos").Id]
    config = DecodeConfig(max_new_tokens=max_new, num_beams=num_beams, top_k=1 if num_beams == 1 else 0,
                          length_penalty=length_penalty,
                          end_ids=ends, num_tokens=glm.num_tokens,
                          pad_id=glm.get_command("pad").Id)
    identical, lengths = 0, []
    for text in GENERATION_CASES:
        context = encode_context(glm, text)
        result = fill_blanks(model, glm, context, config, task_mask=True)
        expected = result.output_ids
        lengths += [len(blank.generated_ids) - 1 for blank in result.blanks]
        inputs = tokenizer.build_inputs_for_generation(tokenizer(text, return_tensors="pt"), max_gen_length=max_new + 1)
        beam = dict(num_beams=num_beams, length_penalty=length_penalty) if num_beams > 1 else {}
        out = hf.generate(**inputs, max_new_tokens=max_new, do_sample=False, eos_token_id=ends, **beam)[0].tolist()
        generated = [t for t in out[len(context):] if t not in ends]  # ours leaves the end tokens out
        assert generated == expected, text
        identical += 1
    print(f"{family} num_beams={num_beams} length_penalty={length_penalty}: {identical}/{len(GENERATION_CASES)} "
          f"contexts token-identical; blank lengths {lengths}")
    assert len(lengths) == 7  # every blank of every context was filled


def test_batched_generation_equals_one_by_one(gpt2_folder):
    _, folder = gpt2_folder
    tokenizer, hf = load(folder)
    texts = ["Tsinghua University is located in [MASK].", "short [MASK]"]
    batch = tokenizer.build_inputs_for_generation(tokenizer(texts, return_tensors="pt", padding=True),
                                                  max_gen_length=6)
    together = hf.generate(**batch, max_new_tokens=5)
    for row, text in enumerate(texts):
        alone = hf.generate(**tokenizer.build_inputs_for_generation(tokenizer(text, return_tensors="pt"),
                                                                    max_gen_length=6), max_new_tokens=5)[0]
        assert together[row, -alone.size(0) + len(tokenizer(text)["input_ids"]):].tolist()[:5] == \
            alone[len(tokenizer(text)["input_ids"]):].tolist()[:5]


def test_multiple_choice_scores_equal_our_zero_shot_evaluation(bert_folder, tmp_path):
    from tasks.multichoice.dataset import MultiChoiceDataset
    from tasks.multichoice.evaluate import evaluate_multichoice
    from tests.tasks.helpers_tasks import task_args, write_jsonl

    model, folder = bert_folder
    records = [{"inputs_pretokenized": "The capital of France is [MASK].", "choices_pretokenized":
                ["Paris", "Berlin", "a small town"], "label": 0},
               {"inputs_pretokenized": "Is the sky blue? Answer:", "choices_pretokenized": ["yes", "no"], "label": 0}]
    write_jsonl(tmp_path / "mc.jsonl", records)
    dataset = MultiChoiceDataset(task_args(seq_length=64), ours("bert"), [str(tmp_path / "mc.jsonl")])
    expected = [p["scores"] for p in evaluate_multichoice(model, dataset)["predictions"]]

    from transformers import AutoTokenizer
    hf = transformers.AutoModelForMultipleChoice.from_pretrained(folder, trust_remote_code=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
    inputs = tokenizer([r["inputs_pretokenized"] for r in records], return_tensors="pt", padding=True)
    inputs = tokenizer.build_inputs_for_multiple_choice(inputs, [r["choices_pretokenized"] for r in records])
    with torch.no_grad():
        got = hf(**inputs, labels=torch.tensor([0, 0]))
    worst = max(abs(a - b) for row, want in zip(got.logits.tolist(), expected) for a, b in zip(row, want))
    print(f"multiple choice: max |score difference| = {worst:.3g}")
    assert worst < 1e-4 and got.loss is not None


def test_readme_example_in_the_docs_runs(gpt2_folder):
    """The THUDM README example as docs/checkpoints.md shows it, on an exported folder (shorter generation:
    the tiny model has 96 positions)."""
    _, folder = gpt2_folder
    doc = open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "checkpoints.md"), encoding="utf-8").read()
    code = doc.split("### The THUDM README example on an exported folder")[1].split("```python")[1].split("```")[0]
    code = code.replace('"hf/glm-10b"', repr(folder)).replace("max_gen_length=512", "max_gen_length=8")
    code = code.replace("max_length=512", "max_new_tokens=6").replace("print(", "str(")
    namespace = {}
    exec(compile(code, "docs/checkpoints.md", "exec"), namespace)
    assert namespace["scores"].shape == (2, 2) and namespace["loss"].item() > 0
    assert namespace["outputs"].shape[0] == 1


def test_sequence_classification_head_equals_ours(reference_dir, tmp_path):
    """The recorded RTE classification checkpoint: AutoModelForSequenceClassification gives our head's logits."""
    from glm.checkpoint import load_model_state
    from glm.model import GLMForSequenceClassification

    checkpoint = str(reference_dir / "downstream/checkpoints/glm_main_rte_classification")
    folder = export_to_hf(checkpoint, str(tmp_path / "hf"), num_attention_heads=4, **QUIET)
    hf = transformers.AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True).eval()
    config = json.load(open(os.path.join(folder, "config.json")))
    ours_model = GLMForSequenceClassification(
        tiny_glm(vocab=config["vocab_size"], hidden=64, heads=4, layers=config["num_layers"],
                 max_seq=config["max_sequence_length"], output_predict=False),
        64, 0.0, "cls", num_class=config["num_labels"]).eval()
    load_model_state(ours_model, checkpoint)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(10, 200, (3, 12), generator=g)
    positions = torch.stack([torch.arange(12).expand(3, -1), torch.zeros(3, 12, dtype=torch.long)], dim=1)
    seps = torch.tensor([12, 9, 7])
    with torch.no_grad():
        expected = ours_model(ids, positions, seps)[0]
        got = hf(input_ids=ids, position_ids=positions, attention_mask=seps).logits
    assert got.shape == expected.shape and (got - expected).abs().max() < 1e-5
