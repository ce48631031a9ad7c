"""TrainConfig: defaults, YAML and --set coercion, and errors that say what, why and the fix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from trainer.config import ConfigError, TrainConfig, dump_config, load_config, parse_overrides


def test_defaults_follow_common_practice() -> None:
    config = TrainConfig()
    assert 4 <= config.num_generations <= 8
    assert (config.temperature, config.eval_temperature) == (0.9, 0.8)
    assert (config.beta, config.clip_eps) == (0.05, 0.2)
    assert config.stop == ("</answer>",)
    assert config.batch_size == config.prompts_per_step * config.num_generations


def test_set_values_are_coerced_to_the_field_type() -> None:
    config = load_config(
        None,
        [
            "learning_rate=1e-3",  # YAML 1.1 reads this as a string
            "epochs=3",
            "pass_k=1,2,4",
            "stop=['</answer>\\n']",
            "wandb=false",
            "train_samples=null",
            "beta=0",
            "system_prompt=Answer: <answer> </answer>",
        ],
    )
    assert config.learning_rate == 1e-3 and isinstance(config.learning_rate, float)
    assert config.epochs == 3
    assert config.pass_k == (1, 2, 4)
    assert config.stop == ("</answer>\\n",)  # single quotes in YAML keep the backslash
    assert config.wandb is False
    assert config.train_samples is None
    assert config.beta == 0.0 and isinstance(config.beta, float)
    assert config.system_prompt == "Answer: <answer> </answer>"
    assert load_config(None, ['stop=["</answer>\\n"]']).stop == ("</answer>\n",)


def test_a_yaml_file_then_set_overrides(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("scheme: strict\nepochs: 2\npass_k: [1, 8]\n")
    config = load_config(path, ["epochs=5"])
    assert (config.scheme, config.epochs, config.pass_k) == ("strict", 5, (1, 8))


def test_a_duplicate_key_in_a_config_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("epochs: 2\nscheme: strict\nepochs: 3\n")  # safe_load took 3, silently
    with pytest.raises(
        ConfigError, match=r"run.yaml: .*duplicate key 'epochs' \(first on line 1\)"
    ):
        load_config(path)


def test_exponent_numbers_are_numbers_in_the_file_and_in_set(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("learning_rate: 1e-3\n")
    assert load_config(path).learning_rate == 0.001
    assert load_config(None, ["learning_rate=5e-4"]).learning_rate == 0.0005


def test_a_text_that_reads_as_a_number_is_dumped_quoted(tmp_path: Path) -> None:
    # The loader reads 1e3 as a number; the dump wrote the text '1e3' bare, so a run's own
    # config.yaml failed to load on --resume.
    config = load_config(None, ["wandb_project=1e3"])
    assert config.wandb_project == "1e3"
    path = tmp_path / "config.yaml"
    path.write_text(dump_config(config))
    assert load_config(path) == config


def test_the_dump_reads_back_unchanged(tmp_path: Path) -> None:
    config = TrainConfig(scheme="strict", pass_k=(1, 2), stop=("</answer>\n",), train_samples=None)
    path = tmp_path / "config.yaml"
    path.write_text(dump_config(config))
    assert load_config(path) == config


def test_an_unknown_key_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown key.*lr.*valid keys: model, dataset,"):
        load_config(None, ["lr=1e-3"])
    path = tmp_path / "bad.yaml"
    path.write_text("group_size: 8\n")
    with pytest.raises(
        ConfigError, match=r"bad.yaml: unknown key\(s\) group_size.*num_generations"
    ):
        load_config(path)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        # ranges, each saying why and what to use
        ("clip_eps=1.5", "strictly between 0 and 1; try 0.2"),
        ("clip_eps=0", "strictly between 0 and 1"),
        ("num_generations=1", "a group needs at least 2"),
        ("temperature=0", "every advantage is 0"),
        ("beta=-0.1", "cannot be negative"),
        ("learning_rate=0", "must be a positive number"),
        ("pass_k=4,1", "in increasing order"),
        ("pass_k=0", "positive k values"),
        ("engine=jax", "not one of auto, torch, vllm"),
        ("device=tpu", "use auto, cpu, cuda"),
        # torch.device refused these with a traceback once the run had begun
        ("device=cuda:abc", "device='cuda:abc': use auto, cpu, cuda or cuda:N, N the GPU's"),
        ("device=cuda:", "device='cuda:': use auto"),
        ("device=cuda:-1", "device='cuda:-1': use auto"),
        ("device=cuda:01", "device='cuda:01': use auto"),
        ("precision=float16", "not one of auto, float32, bfloat16"),
        ("scheme=relaxed", "unknown scheme 'relaxed'; valid schemes: strict, lenient"),
        ("dataset=nowhere.jsonl", "neither synthetic nor gsm8k"),
        ("stop=['']", "non-empty stop string"),
        ("cpu_threads=0", ">= 1, or null"),
        ("sync_check_every=0", "use 1 to check the vLLM weight push every step"),
        # torch.manual_seed raised a traceback past 2**64, numpy (in vLLM) past 2**32
        ("seed=18446744073709551616", "seed=18446744073709551616 is out of range: .* 0 to"),
        ("seed=4294967296", "out of range: torch, numpy and vLLM take seeds from 0 to 4294967295"),
        ("seed=-1", "seed=-1 is out of range"),
        # cross-field rules
        ("train_samples=8", "smaller than prompts_per_step=16"),
        ("beta=nan", "beta=nan is not a finite number; use a number such as 0.05"),
        ("weight_decay=nan", "weight_decay=nan is not a finite number"),
        ("temperature=inf", "temperature=inf is not a finite number"),
        ("max_grad_norm=.nan", "max_grad_norm=nan is not a finite number"),
        # types, each with an example written as --set takes it
        ("epochs=three", "--set: epochs='three' should be a whole number, e.g. `--set epochs=6`"),
        ("pass_k=[a]", "e.g. `--set pass_k=1,4,8` (the default)"),
        ("wandb=maybe", "should be true or false"),
        ("pass_k=[a]", "should be a list of whole numbers"),
        ("learning_rate=[1]", "should be a number"),
    ],
)
def test_bad_values_say_what_why_and_fix(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(None, [override])


def test_a_wrong_type_in_a_file_names_the_file_the_line_and_a_fix(tmp_path: Path) -> None:
    path = tmp_path / "wt.yaml"
    path.write_text("# a comment\nseed: 1\nepochs: abc\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (
        f"{path}, line 3: epochs='abc' should be a whole number, e.g. `epochs: 6` (the default)"
    )
    path.write_text("stop: [[1]]\n")
    with pytest.raises(ConfigError, match=r'line 1: .* e\.g\. `stop: \["</answer>"\]`'):
        load_config(path)
    path.write_text("epochs: abc\n")  # overridden: the file's value is never read
    assert load_config(path, ["epochs=2"]).epochs == 2
    with pytest.raises(ConfigError, match=r"^--set: wandb='maybe' should be true or false"):
        load_config(path, ["epochs=2", "wandb=maybe"])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        # null, ~ and an empty value became the text "None": a model, a scheme, a prompt
        ("system_prompt:", 'system_prompt is null .*; write the text, or "" for no system'),
        ("system_prompt: ~", "system_prompt is null"),
        ("model: null", 'model is null .*; write the text, e.g. `model: "tiny"`'),
        ("wandb_project:", "wandb_project is null"),
        # a boolean or a number became "True" or "0.001"
        ("model: true", "model=True: YAML reads the value as true or false, not a string; quote"),
        ("scheme: no", "scheme=False: YAML reads the value as true or false"),
        ("dataset: 1e-3", "dataset=0.001: YAML reads the value as a number, not a string"),
        ("stop: [null]", "stop=\\[None\\] should be a list of strings"),
    ],
)
def test_a_string_key_takes_only_text_in_a_file(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(f"seed: 1\n{line}\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}, line 2: {message}"):
        load_config(path)
    path.write_text('system_prompt: ""\nmodel: "true"\n')  # quoted: the text itself
    config = load_config(path, ["wandb_project=2024"])  # --set takes a string key's text
    assert (config.system_prompt, config.model, config.wandb_project) == ("", "true", "2024")


def test_a_config_file_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nonutf.yaml"
    path.write_bytes(b"\xff\xfe bad")  # what PowerShell's `>` writes: UTF-16
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (
        f"{path}, line 1: not UTF-8 text (byte 0xff, a UTF-16 byte-order mark); save the config"
        " file as UTF-8"
    )
    path.write_bytes(b"seed: 1\nscheme: strict\nsystem_prompt: caf\xe9\n")  # Latin-1
    with pytest.raises(ConfigError, match=r"nonutf\.yaml, line 3: not UTF-8 text \(byte 0xe9\)"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"cannot read the config file \(Is a directory\)"):
        load_config(tmp_path)
    path.write_text("\ufeffepochs: 2\n")  # a UTF-8 byte-order mark is fine
    assert load_config(path).epochs == 2
    path.write_text("1: 2\nfoo: 3\n")  # keys of two types are listed, not compared
    with pytest.raises(ConfigError, match=r"nonutf\.yaml: unknown key\(s\) 1, foo; valid keys"):
        load_config(path)


def test_a_data_file_given_as_the_config_says_how_to_train_on_it(tmp_path: Path) -> None:
    # "not valid YAML: expected '<document start>'", or "unknown key(s) answer, question"
    lines = tmp_path / "train.jsonl"
    row = '{"question": "What is 2 + 3?", "answer": "#### 5"}\n'
    lines.write_text(row * 2)
    hint = f"a data file? Train on it with `rewardkit train --set dataset={lines}`"
    with pytest.raises(ConfigError, match="not valid YAML") as caught:
        load_config(lines)
    assert str(caught.value).endswith(hint)
    lines.write_text(row)  # one line is a valid YAML mapping
    with pytest.raises(ConfigError) as caught:
        load_config(lines)
    assert (
        str(caught.value) == f"{lines}: its keys are question and answer, not config keys: {hint}"
    )
    array = tmp_path / "my data.json"  # a JSON array of rows; a name that needs quoting
    array.write_text(f"[{row.strip()}]")
    with pytest.raises(ConfigError, match="holds a mapping") as caught:
        load_config(array)
    assert str(caught.value).endswith(f"--set dataset='{array}'`")
    table = tmp_path / "train.parquet"
    table.write_bytes(b"PAR1\xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8") as caught:
        load_config(table)
    assert str(caught.value).endswith(f"--set dataset={table}`")


def test_replace_errors_read_like_the_others() -> None:
    with pytest.raises(ConfigError) as caught:
        TrainConfig().replace(scheme="nonexist")  # what --schemes nonexist,lenient does
    assert str(caught.value).startswith("scheme: unknown scheme 'nonexist'; valid schemes:")
    with pytest.raises(ConfigError) as caught:
        TrainConfig().replace(epochs="x")
    assert str(caught.value) == "epochs='x' should be a whole number, e.g. `epochs=6` (the default)"


def test_an_infinite_max_grad_norm_turns_clipping_off() -> None:
    assert load_config(None, ["max_grad_norm=inf"]).max_grad_norm == float("inf")
    with pytest.raises(ConfigError, match=r"max_grad_norm=-inf is not a finite number"):
        load_config(None, ["max_grad_norm=-inf"])


def test_set_drops_the_spaces_around_a_value_of_any_type() -> None:
    # 'scheme = strict' failed with "unknown scheme ' strict'", while 'epochs = 2' worked.
    config = load_config(None, ["scheme = strict", "epochs = 2", " model =  tiny  "])
    assert (config.scheme, config.epochs, config.model) == ("strict", 2, "tiny")
    assert load_config(None, ["system_prompt = Answer: <answer> "]).system_prompt == (
        "Answer: <answer>"
    )


def test_set_needs_key_equals_value() -> None:
    with pytest.raises(ConfigError, match="write key=value"):
        parse_overrides(["epochs"])


def test_the_config_is_frozen_and_checked_on_construction() -> None:
    config = TrainConfig()
    with pytest.raises(AttributeError):
        config.epochs = 2  # type: ignore[misc]
    with pytest.raises(ConfigError, match="should be a whole number"):
        TrainConfig(epochs="3")  # type: ignore[arg-type]
    assert config.replace(epochs="3").epochs == 3  # replace() coerces like a file


def test_the_shipped_example_config_loads() -> None:
    example = Path(__file__).parents[1] / "examples" / "train_gsm8k.yaml"
    config = load_config(example)
    assert config.learning_rate == 1e-6 and config.dataset == "gsm8k"
    assert config.system_prompt.startswith("Respond in the following format:\n<think>\n")


def test_the_docs_table_lists_every_key_with_its_default() -> None:
    import dataclasses
    import re

    docs = Path(__file__).resolve().parent.parent / "docs" / "train.md"
    rows = re.findall(r"^\| `(\w+)` \| `([^`]*)` \| (.+) \|$", docs.read_text(), re.MULTILINE)
    defaults = TrainConfig().to_dict()
    assert [key for key, _, _ in rows] == [f.name for f in dataclasses.fields(TrainConfig)]
    for key, default, meaning in rows:
        assert default == str(defaults[key]), key
        assert meaning.strip(), key
