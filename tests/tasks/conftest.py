"""Task fixtures: the handmade task input files of the reference set, rebuilt on disk."""

import json

import pytest


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
    from glm.arguments import get_args

    argv = [a.replace("<work>/taskdata_public", str(data_dir)) for a in argv]
    args = get_args(argv)
    for key, value in (overrides or {}).items():
        setattr(args, key, value)
    return args
