"""Students for distillation: presets and JSON architectures (the shipped ones in bench/students), and the plan
``tritonrec bench compression --students`` builds from them."""

import json
from pathlib import Path

import pytest

from tritonrec.bench.models.compression import PARENT, beauty_plan
from tritonrec.compress.options import DistillOptions, FinetuneOptions
from tritonrec.errors import ConfigError
from tritonrec.model.config import ModelConfig, preset
from tritonrec.train.loop import TrainConfig

pytestmark = pytest.mark.unit

STUDENTS = sorted((Path(__file__).parents[2] / "bench" / "students").glob("*.json"))


def test_a_preset_name_is_that_preset():
    options = DistillOptions.for_student("small", max_minutes=3.0)
    assert options.student == preset("small") and options.student_name == "small" and options.max_minutes == 3.0


@pytest.mark.parametrize("path", STUDENTS, ids=lambda p: p.stem)
def test_every_shipped_student_is_a_valid_architecture_named_by_its_file(path):
    options = DistillOptions.for_student(str(path))
    assert options.student_name == path.stem
    assert options.student == ModelConfig.from_dict(json.loads(path.read_text()))
    # smaller than `small`, the preset student: the point of shipping them
    assert options.student.embedding_dim < preset("small").embedding_dim


def test_a_student_that_is_neither_a_preset_nor_a_valid_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="neither a preset"):
        DistillOptions.for_student("tiny")
    typo = tmp_path / "typo.json"
    typo.write_text(json.dumps({"embeding_dim": 16}))
    with pytest.raises(ConfigError, match=r"typo.json: unknown ModelConfig keys: \['embeding_dim'\]"):
        DistillOptions.for_student(typo)
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(ConfigError, match="broken.json"):
        DistillOptions.for_student(broken)


def test_the_plan_distills_every_student_with_one_labels_only_control_and_quantized_tables(tmp_path):
    students = tuple(DistillOptions.for_student(s, max_minutes=1.0) for s in ("small", *map(str, STUDENTS)))
    plan = beauty_plan(tmp_path, prune_ratios=(), share_ratios=(), finetune=FinetuneOptions(), train=TrainConfig(),
                       students=students)  # fmt: skip
    by_name = {v.name: v for v in plan.variants}
    for s in students:
        student = by_name[f"distill-{s.student_name}"]
        assert student.parent == PARENT and student.options == s
        for storage in ("int8", "int4"):
            combined = by_name[f"distill-{s.student_name}+{storage}"]
            assert combined.parent == student.name and combined.options.storage.value == storage
    control = by_name["small-labels-only"]  # only the first student's
    assert control.options.weight == 0.0 and control.options.student == preset("small")
    assert sum(name.endswith("-labels-only") for name in by_name) == 1
    assert not any(name.startswith(("prune-", "hash-", "qr-")) for name in by_name)
    names = [v.name for v in plan.variants]  # a variant's parent comes before it
    assert all(v.parent == PARENT or names.index(v.parent) < names.index(v.name) for v in plan.variants)


def test_two_students_with_one_name_are_refused(tmp_path):
    twice = (DistillOptions.for_student("small"), DistillOptions.for_student("small", weight=0.9))
    with pytest.raises(ConfigError, match="distinct names"):
        beauty_plan(tmp_path, finetune=FinetuneOptions(), train=TrainConfig(), students=twice)


def _graph(path, inputs):
    import onnx
    from onnx import TensorProto, helper

    values = [helper.make_tensor_value_info(n, TensorProto.INT64, [None]) for n in inputs]
    out = helper.make_tensor_value_info("scores", TensorProto.INT64, [None])
    graph = helper.make_graph([helper.make_node("Identity", [inputs[0]], ["scores"])], "g", values, [out])
    onnx.save(helper.make_model(graph), path)
    return path


def test_an_earlier_exports_ragged_graph_is_exported_again(tmp_path):
    from tritonrec.bench.models.compression import _current_graph

    assert not _current_graph(tmp_path / "missing.onnx")
    assert not _current_graph(_graph(tmp_path / "old.onnx", ["candidates", "history", "user_index"]))
    assert _current_graph(_graph(tmp_path / "new.onnx", ["candidates", "history", "real_index"]))
