"""The file formats and source layouts of spec section 9.4 on small handmade folders.

Each test rebuilds the expected part A from the rule in the spec table with direct tokenizer calls, and
checks the item layout shared by every Seq2SeqDataset task (padding inside A, sep = src, B at the
mask's position with block ids 1.., targets " " + text + [eop]).
"""

import numpy as np
import pytest

from tasks.inputs import mask_ids
from tasks.seq2seq.dataset import Seq2SeqDataset, build_dataset
from tests.tasks.seq2seq.conftest import BERT, GPT2, NUMBER_WORDS, seq2seq_args, squad_document, write_json, write_lines


def ids(tokenizer, text):
    return tokenizer.EncodeAsIds(text).tokenization


def cmd(tokenizer, name):
    return tokenizer.get_command(name).Id


def check_train_item(item, tokenizer, part_a, target_text, src, tgt, block_position=True):
    """The training layout: padded A, then [sop] + target[:-1] at the mask with targets/loss."""
    pad, sop, eop = cmd(tokenizer, "pad"), cmd(tokenizer, "sop"), cmd(tokenizer, "eop")
    mask_position = next(i for i, t in enumerate(part_a) if t in set(mask_ids(tokenizer)))
    target = (ids(tokenizer, " " + target_text) + [eop])[:tgt]
    scored = len(target)
    target = target + [pad] * (tgt - scored)
    assert list(item) == ["text", "target", "attention_mask", "loss_mask", "position_id", "uid"]
    assert item["text"].tolist() == part_a + [pad] * (src - len(part_a)) + [sop] + target[:-1]
    assert item["target"].tolist() == [0] * src + target
    assert item["loss_mask"].tolist() == [0] * src + [1] * scored + [0] * (tgt - scored)
    assert item["attention_mask"].shape == () and int(item["attention_mask"]) == src
    blocks = list(range(1, tgt + 1)) if block_position else [1] * tgt
    assert item["position_id"].tolist() == [list(range(src)) + [mask_position] * tgt, [0] * src + blocks]
    assert all(item[k].dtype == np.int64 for k in ("text", "target", "loss_mask", "position_id"))


def check_eval_item(item, tokenizer, part_a, src):
    """The dev/test layout: padded A, then [sop] at the mask with block id 1."""
    pad, sop = cmd(tokenizer, "pad"), cmd(tokenizer, "sop")
    mask_position = next(i for i, t in enumerate(part_a) if t in set(mask_ids(tokenizer)))
    assert list(item) == ["text", "attention_mask", "position_id", "uid"]
    assert item["text"].tolist() == part_a + [pad] * (src - len(part_a)) + [sop]
    assert int(item["attention_mask"]) == src
    assert item["position_id"].tolist() == [list(range(src)) + [mask_position], [0] * src + [1]]


# ------------------------------------------------------------------------------------------------ XSum
XSUM_ARTICLES = {
    "101": ("The council approved the budget.", ["The council met on Tuesday.", "", "It approved the budget."]),
    "102": ("Rain is expected.", ["Forecasters warned of rain.", "Umbrellas sold out."]),
    "103": ("A dog was rescued.", ["Firefighters rescued a dog -LRB- a terrier -RRB- ."]),
}


def write_xsum(folder):
    write_json(folder / "XSum-TRAINING-DEV-TEST-SPLIT-90-5-5.json",
               {"train": ["101", "102"], "validation": ["103"], "test": ["102"]})
    for article_id, (summary, body) in XSUM_ARTICLES.items():
        write_lines(folder / f"{article_id}.summary",
                    ["[SN]URL[SN]", "http://example.org", "[SN]TITLE[SN]", "A title", "[SN]FIRST-SENTENCE[SN]",
                     summary, "[SN]RESTBODY[SN]", *body])
    return folder


def summary_part_a(tokenizer, article, mask, src):
    prompt = [cmd(tokenizer, "ENC"), cmd(tokenizer, mask)] + ids(tokenizer, " Content:")
    return prompt + ids(tokenizer, " " + article)[:src - len(prompt)]


def test_xsum_split_file_and_summary_files(tmp_path, bert_tokenizer):
    cfg = seq2seq_args(BERT, "xsum", write_xsum(tmp_path), 12, 6)
    train = Seq2SeqDataset(cfg, "train", bert_tokenizer)
    assert [(e.guid, e.text_a, e.text_b) for e in train.example_list] == [
        ("train-0", "The council met on Tuesday. It approved the budget.", "The council approved the budget."),
        ("train-1", "Forecasters warned of rain. Umbrellas sold out.", "Rain is expected.")]
    assert train.example_list[0].meta == {"ref": "the council approved the budget ."}
    part_a = summary_part_a(bert_tokenizer, train.example_list[0].text_a, "MASK", 12)
    assert len(part_a) == 12   # the article was cut to fit
    check_train_item(train[0], bert_tokenizer, part_a, "The council approved the budget.", 12, 6)
    assert train[0]["uid"] == "train-0"

    dev = Seq2SeqDataset(cfg, "dev", bert_tokenizer)
    # XSum files are used as they are: no PTB detokenization (-LRB- stays).
    assert [e.text_a for e in dev.example_list] == ["Firefighters rescued a dog -LRB- a terrier -RRB- ."]
    check_eval_item(dev[0], bert_tokenizer, summary_part_a(bert_tokenizer, dev.example_list[0].text_a, "MASK", 12), 12)
    assert [e.text_b for e in Seq2SeqDataset(cfg, "test", bert_tokenizer).example_list] == ["Rain is expected."]


def test_xsum_plain_source_target_files(tmp_path, gpt2_tokenizer):
    write_lines(tmp_path / "val.source", ["Forecasters warned of rain -LRB- heavy -RRB- ."])
    write_lines(tmp_path / "val.target", ["Rain is expected."])
    dataset = build_dataset(seq2seq_args(GPT2, "xsum", tmp_path, 32, 8), "dev", gpt2_tokenizer)
    assert [(e.text_a, e.meta["ref"]) for e in dataset.example_list] == [
        ("Forecasters warned of rain -LRB- heavy -RRB- .", "Rain is expected.")]
    part_a = summary_part_a(gpt2_tokenizer, dataset.example_list[0].text_a, "sMASK", 32)
    check_eval_item(dataset[0], gpt2_tokenizer, part_a, 32)


def test_summaries_task_mask_and_no_block_position(tmp_path, gpt2_tokenizer):
    write_lines(tmp_path / "train.source", ["Officials said the bridge will open -LRB- maybe -RRB- ."])
    write_lines(tmp_path / "train.target", ["Bridge to open <S_SEP> Maybe ."])
    cfg = seq2seq_args(GPT2, "cnn_dm", tmp_path, 40, 12, "--no-block-position")
    dataset = Seq2SeqDataset(cfg, "train", gpt2_tokenizer)
    example = dataset.example_list[0]
    assert example.text_a == "Officials said the bridge will open ( maybe ) ."
    assert example.text_b == "Bridge to open [SEP] Maybe ."
    item = dataset[0]
    assert item["text"][1] == cmd(gpt2_tokenizer, "sMASK")
    check_train_item(item, gpt2_tokenizer, summary_part_a(gpt2_tokenizer, example.text_a, "sMASK", 40),
                     example.text_b, 40, 12, block_position=False)


# ----------------------------------------------------------------------------------------- SQuAD family
def test_squad_generation_layout_and_examples(tmp_path, bert_tokenizer):
    document = squad_document([("q1", "What follows sixteen?", ["seventeen", "seventeen", "seventeen eighteen"])])
    for split in ("train", "dev", "test"):
        write_json(tmp_path / f"{split}.json", document)
    cfg = seq2seq_args(BERT, "squad_generation", tmp_path, 40, 8)
    dataset = Seq2SeqDataset(cfg, "train", bert_tokenizer)
    # one example per distinct answer, in file order; the reference is the question
    assert [(e.guid, e.meta["answer"]) for e in dataset.example_list] == [("train-0", "seventeen"),
                                                                          ("train-1", "seventeen eighteen")]
    assert dataset.example_list[0].meta["ref"] == "what follows sixteen ?"
    context = " ".join(NUMBER_WORDS)
    part_a = ([cmd(bert_tokenizer, "ENC")] + ids(bert_tokenizer, context + " Question:") + [cmd(bert_tokenizer, "MASK")]
              + ids(bert_tokenizer, " Answer: seventeen"))
    check_train_item(dataset[0], bert_tokenizer, part_a, "What follows sixteen?", 40, 8)
    check_eval_item(Seq2SeqDataset(cfg, "test", bert_tokenizer)[0], bert_tokenizer, part_a, 40)


def test_squad_generation_long_context_is_centred_on_the_answer(tmp_path, bert_tokenizer):
    write_json(tmp_path / "dev.json", squad_document([("q1", "Which number?", ["seventeen"])]))
    dataset = Seq2SeqDataset(seq2seq_args(BERT, "squad_generation", tmp_path, 16, 8), "dev", bert_tokenizer)
    answer = ids(bert_tokenizer, " Answer: seventeen")
    room = 16 - len(answer) - 2                                  # 10 context tokens
    context = ids(bert_tokenizer, " ".join(NUMBER_WORDS) + " Question:")
    start = NUMBER_WORDS.index("seventeen") - room // 2          # one token per number word
    part_a = [cmd(bert_tokenizer, "ENC")] + context[start:start + room] + [cmd(bert_tokenizer, "MASK")] + answer
    check_eval_item(dataset[0], bert_tokenizer, part_a, 16)


def write_squad(folder, version):
    document = squad_document([("q1", "What comes after sixteen?", ["seventeen"]),
                               ("q2", "What is the colour?", [])])
    for split in ("train", "dev"):
        write_json(folder / f"{split}-{version}.json", document)
    return folder


def test_squad_v2_sliding_windows(tmp_path, bert_tokenizer):
    cfg = seq2seq_args(BERT, "squad", write_squad(tmp_path, "v2.0"), 24, 8)
    dataset = Seq2SeqDataset(cfg, "train", bert_tokenizer)
    question = ids(bert_tokenizer, " What comes after sixteen?")
    length, stride = 24 - 3 - len(question), 24 // 2             # window and step, in tokens
    windows = [" ".join(NUMBER_WORDS[:length]), " ".join(NUMBER_WORDS[stride:])]
    assert [(e.guid, e.idx, e.text_a, e.meta["answer"]) for e in dataset.example_list] == [
        ("train-0", "q1", windows[0], "N/A"), ("train-1", "q1", windows[1], "seventeen"),
        ("train-2", "q2", windows[0], "N/A"), ("train-3", "q2", windows[1], "N/A")]
    meta = dataset.example_list[1].meta
    assert meta["answers"] == ["seventeen"] and meta["ref"] == "seventeen"
    assert dataset.example_list[2].meta["answers"] == ["N/A"]
    assert meta["context_tokens"] == ids(bert_tokenizer, " ".join(NUMBER_WORDS))
    assert meta["token_to_char"][:2] == [(0, 3), (4, 7)]
    part_a = ([cmd(bert_tokenizer, "ENC")] + question + [cmd(bert_tokenizer, "MASK"), bert_tokenizer.TokenToId(".")]
              + ids(bert_tokenizer, " " + windows[1]))
    check_train_item(dataset[1], bert_tokenizer, part_a, "seventeen", 24, 8)
    check_train_item(dataset[0], bert_tokenizer, part_a[:len(question) + 3] + ids(bert_tokenizer, " " + windows[0]),
                     "N/A", 24, 8)
    # dev and test both read the dev file
    assert len(Seq2SeqDataset(cfg, "test", bert_tokenizer)) == len(Seq2SeqDataset(cfg, "dev", bert_tokenizer)) == 4


def test_squad_v1_drops_windows_without_the_answer(tmp_path, gpt2_tokenizer):
    cfg = seq2seq_args(GPT2, "squad_v1", write_squad(tmp_path, "v1.1"), 24, 8)
    dataset = Seq2SeqDataset(cfg, "dev", gpt2_tokenizer)
    assert [(e.idx, e.meta["answer"]) for e in dataset.example_list] == [("q1", "seventeen")]
    assert dataset.example_list[0].meta["token_to_char"] is None   # offsets only serve BERT output
    item = dataset[0]
    question = ids(gpt2_tokenizer, " What comes after sixteen?")
    assert item["text"][len(question) + 1] == cmd(gpt2_tokenizer, "sMASK")


def test_cmrc_always_uses_mask_and_puts_the_question_first(tmp_path, gpt2_tokenizer):
    context = "北京是中国的首都。上海是最大的城市。"
    document = squad_document([("c1", "中国的首都是哪里？", ["北京"]), ("c2", "人口多少？", [])], context=context)
    for split in ("train", "test"):
        write_json(tmp_path / f"{split}.json", document)
    cfg = seq2seq_args(GPT2, "cmrc", tmp_path, 48, 8)
    train = Seq2SeqDataset(cfg, "train", gpt2_tokenizer)
    assert [(e.meta["question"], e.meta["answer"]) for e in train.example_list] == [("中国的首都是哪里？", "北京")]
    question = ids(gpt2_tokenizer, "问题：中国的首都是哪里？答案：")
    part_a = ([cmd(gpt2_tokenizer, "ENC")] + question + [cmd(gpt2_tokenizer, "MASK")]
              + ids(gpt2_tokenizer, context)[:48 - len(question) - 2])
    check_train_item(train[0], gpt2_tokenizer, part_a, "北京", 48, 8)
    test = Seq2SeqDataset(cfg, "test", gpt2_tokenizer)
    # a test question without answers still gets an example (with the original's placeholder answer)
    assert [e.meta["answer"] for e in test.example_list] == ["北京", "FAKE_ANSWER"]
    check_eval_item(test[0], gpt2_tokenizer, part_a, 48)


def test_cmrc_question_longer_than_the_source_is_cut(tmp_path, bert_tokenizer):
    write_json(tmp_path / "dev.json", squad_document([("c1", "问" * 30, ["北京"])], context="北京是首都。"))
    dataset = Seq2SeqDataset(seq2seq_args(BERT, "cmrc", tmp_path, 20, 8), "dev", bert_tokenizer)
    question = ids(bert_tokenizer, "问题：" + "问" * 30 + "答案：")[:20 // 4]
    room = 20 - len(question) - 2
    context = ids(bert_tokenizer, "北京是首都。")[:room]
    part_a = [cmd(bert_tokenizer, "ENC")] + question + [cmd(bert_tokenizer, "MASK")] + context
    check_eval_item(dataset[0], bert_tokenizer, part_a, 20)


@pytest.mark.parametrize("task", ["cnn_dm", "gigaword", "squad", "customization", "extraction", "blank"])
def test_build_dataset_picks_the_original_class(tmp_path, task):
    from tasks.seq2seq import dataset as module

    expected = {"customization": module.CustomizationDataset, "extraction": module.ExtractionDataset,
                "blank": module.BlankLMDataset}.get(task, module.Seq2SeqDataset)
    assert module.dataset_class(task) is expected


def test_split_files_keep_lines_aligned_whatever_the_line_ends(tmp_path):
    """CRLF and LF both end a line; a byte-order mark (Windows editors) is dropped; a lone CR and
    U+2028/U+0085 inside a line stay in it -- cutting there would pair every later source with the
    wrong target."""
    from tasks.seq2seq.files import read_json, read_lines, read_parallel

    source = tmp_path / "test.source"
    source.write_bytes("\ufeffFirst line\r\nsecond\rstill second\u2028and\u0085still\nthird\r\n".encode("utf-8"))
    target = tmp_path / "test.target"
    target.write_bytes(b"one\r\ntwo\r\nthree")   # no line end after the last line
    assert read_lines(source) == ["First line", "second\rstill second\u2028and\u0085still", "third"]
    assert read_parallel(source, target)[1] == ("second\rstill second\u2028and\u0085still", "two")
    squad = tmp_path / "dev-v1.1.json"
    squad.write_bytes(b'\xef\xbb\xbf{"version": "1.1", "data": []}\r\n')
    assert read_json(squad) == {"version": "1.1", "data": []}
