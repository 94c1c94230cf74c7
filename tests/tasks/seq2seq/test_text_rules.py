"""Detokenizers (corpus escapes undone before tokenising) and re-tokenisers (decoded text made
PTB-like before scoring)."""

import pytest

from tasks.seq2seq.detokenizers import blank_detokenize, clean_summary_line, cnndm_detokenize, gigaword_detokenize
from tasks.seq2seq.registry import detokenizer_for, retokenizer_for
from tasks.seq2seq.retokenize import blank_fix_tokenization, fix_tokenization, squad_fix_tokenization
from tests.tasks.seq2seq.conftest import BERT, GPT2, seq2seq_args


def test_cnndm_detokenizer():
    text = "He said `` it 's done '' -LRB- really -RRB- <S_SEP> they do n't -LSB- x -RSB- -LCB- y -RCB- `quoted'"
    assert cnndm_detokenize(text) == ("He said \" it's done \" ( really )  they don't [ x ] { y } 'quoted'")
    assert cnndm_detokenize("one . <S_SEP> two .", is_target=True) == "one . [SEP] two ."
    assert cnndm_detokenize("we 'll see , he 'd say") == "we'll see , he'd say"
    # lower-case escapes belong to Gigaword and are left alone here (the reference's cnn_dm example)
    assert cnndm_detokenize("-lrb- x -rrb-") == "-lrb- x -rrb-"


def test_gigaword_detokenizer():
    assert gigaword_detokenize("UNK says -lrb- a &amp; b -rrb- &lt;3 &gt; <unk>") == "[UNK] says ( a & b ) <3 > [UNK]"
    assert gigaword_detokenize("-lsb- -rsb- -lcb- -rcb-", is_target=True) == "[ ] { }"
    assert gigaword_detokenize("UNKNOWN") == "[UNK]NOWN"   # a plain replace, as in the original


def test_blank_detokenizer_and_task_table():
    assert blank_detokenize("a _UNK word and a <blank> .") == "a [UNK] word and a [MASK] ."
    assert detokenizer_for("cnn_dm") is cnndm_detokenize
    assert detokenizer_for("gigaword") is gigaword_detokenize
    assert detokenizer_for("cnn_dm_original") is None and detokenizer_for("xsum") is None


def test_summary_lines_are_stripped_and_punctuation_standardised():
    line = "  \u201cHi\u201d \u2013 it\u2019s -LRB- ok -RRB- <S_SEP> \n"
    assert clean_summary_line(line, detokenizer_for("cnn_dm"), is_target=True) == '"Hi" - it\'s ( ok ) [SEP]'
    assert clean_summary_line(line, detokenizer_for("cnn_dm_original"),
                              is_target=True) == '"Hi" - it\'s -LRB- ok -RRB- <S_SEP>'


@pytest.mark.parametrize("text, expected", [
    ('he said " it \' s 3 , 000 " .', "he said `` it 's 3,000 '' ."),
    ("i don ' t know", "i do n't know"),
    ("she ' d go , we ' ll see", "she 'd go , we 'll see"),
    ("' quoted ' word", "` quoted ' word"),
    ("wait . . . what", "wait ... what"),
    ("it costs 3 . 50 now", "it costs 3.50 now"),
    ("the u . n . said", "the u.n. said"),
    ("the u . s . a . team", "the u.s. a . team"),       # the original's look-ahead stops after one letter
    ("a well - known man", "a well-known man"),
    ("one - - two", "one -- two"),
    ("- leading and trailing -", "- leading and trailing -"),
    ("a , - b", "a , - b"),
])
def test_ptb_fix_tokenization(text, expected):
    assert fix_tokenization(text, "cnn_dm") == expected


def test_fix_tokenization_modes():
    assert fix_tokenization("[UNK] said \" hi \"", "gigaword") == 'UNK said " hi "'
    assert fix_tokenization("it ' s", "cnn_dm_org") == "it ' s"
    with pytest.raises(ValueError, match="cnn_dm_org"):
        fix_tokenization("x", "ptb")


def test_retokenizer_follows_the_original_driver(tmp_path):
    assert retokenizer_for(seq2seq_args(BERT, "gigaword", tmp_path)) == "cnn_dm"
    assert retokenizer_for(seq2seq_args(GPT2, "gigaword", tmp_path)) == "gigaword"
    assert retokenizer_for(seq2seq_args(GPT2, "xsum", tmp_path)) == "cnn_dm_org"


@pytest.mark.parametrize("text, expected", [
    ("3 , 000 people", "3,000 people"),
    ("1 , 2345", "1 , 2345"),
    ("at 10 : 30 p . m .", "at 10:30 p.m ."),           # the original's \b after "." never matches before a space
    ("a well - known 2 . 5", "a well-known 2.5"),
    ("the u . s army", "the u.s army"),
    ("1 , 000 , 000", "1,000,000"),
])
def test_squad_fix_tokenization(text, expected):
    assert squad_fix_tokenization(text) == expected


def test_blank_fix_tokenization():
    assert blank_fix_tokenization("` ` i don ' t , i ' m sure ' ' . . .") == "`` i don't , i 'm sure '' ..."
    assert blank_fix_tokenization("the u . s . and e . g . - - x") == "the u.s. and e.g. -- x"
