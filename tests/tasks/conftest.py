"""Task fixtures: the handmade task input files of the reference set, rebuilt on disk."""

import json

import pytest
from data_utils.tokenizers import configure_tokenizer


@pytest.fixture(scope="session")
def task_data_dir(reference_dir, tmp_path_factory):
    """``task_input_files.json`` written out as a directory tree (the recorded argv call it
    ``<work>/taskdata_public``)."""
    root = tmp_path_factory.mktemp("taskdata_public")
    files = json.loads((reference_dir / "tasks" / "task_input_files.json").read_text())
    for relative, content in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    return root


def recorded_args(argv, data_dir, overrides=None):
    """``get_args`` on a recorded argv with the data prefix replaced, then the recorded overrides."""
    from tests.helpers import parse_config

    argv = [a.replace("<work>/taskdata_public", str(data_dir)) for a in argv]
    return parse_config(argv, **(overrides or {}))


# A tiny GLM with the BERT vocabulary, the model the finetuning end-to-end tests train.
TINY_BERT_GLM = ["--block-lm", "--tokenizer-type", "BertWordPieceTokenizer", "--tokenizer-model-type",
                 "bert-base-uncased", "--num-layers", "2", "--hidden-size", "32", "--num-attention-heads", "4",
                 "--max-position-embeddings", "128"]


@pytest.fixture(scope="session")
def tiny_pretrained(tmp_path_factory):
    """A randomly initialised (seed 0) ``TINY_BERT_GLM`` saved as a pretrained checkpoint."""
    import torch

    from tests.helpers import parse_config
    from glm.checkpoint import save_model_checkpoint
    from glm.training.model_setup import build_model

    cfg = parse_config(TINY_BERT_GLM + ["--seq-length", "64"])
    _, cfg = configure_tokenizer(cfg)
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("tiny_pretrained")
    save_model_checkpoint(str(directory), "1", {"module": build_model(cfg).state_dict()})
    return directory
