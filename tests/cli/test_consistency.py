"""One CLI: the same flag means the same thing in every command (issue 29, items B1–B6).

One default batch size (so `sample --seed S` writes the images `evaluate --seed S` scores), one spelling of the
sample count and of prompts (old spellings kept as hidden aliases), the shared flags declared once, every
output path checked before any work, and a help line for every verb and option.
"""

from __future__ import annotations

import argparse
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from tests_helpers import spy_scored_batches

from lit_genvision.cli import TOOLS, TRAINER_VERBS, main, tool_parser, usage
from lit_genvision.data.base import to_uint8
from lit_genvision.experiments.arguments import BATCH_SIZE, FLAGS, flag_of
from lit_genvision.experiments.evaluate import EvaluateOptions
from lit_genvision.experiments.store import ResultsStore

EXPERIMENTS = Path(__file__).resolve().parents[2] / "lit_genvision" / "experiments"


def parsers() -> dict[str, argparse.ArgumentParser]:
    """Every tool's parser and every subcommand's, by its command line (``latent embed``)."""
    out: dict[str, argparse.ArgumentParser] = {}

    def walk(name: str, parser: argparse.ArgumentParser) -> None:
        out[name] = parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub, subparser in action.choices.items():
                    walk(f"{name} {sub}", subparser)

    for name in TOOLS:
        walk(name, tool_parser(name))
    return out


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The parser's own options and positionals (not its --help, not subcommand choosers)."""
    return [a for a in parser._actions if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]


def test_sample_and_evaluate_default_to_one_batch_size():
    sample = tool_parser("sample").parse_args(["--ckpt", "x"])
    evaluate = tool_parser("evaluate").parse_args(["--ckpt", "x"])
    inpaint = tool_parser("inpaint").parse_args(["--ckpt", "x", "--images", "i", "--masks", "m", "--out", "o.npz"])
    assert sample.batch_size == evaluate.batch_size == inpaint.batch_size == EvaluateOptions().batch_size == BATCH_SIZE


def test_sample_writes_exactly_the_images_evaluate_scores_with_the_default_batch_size(
    tiny_checkpoint, tmp_path, monkeypatch
):
    """No --batch-size given: N spans two batches of the default size, so a different default in either command
    would draw the second batch (and the first's size) from other generators."""
    num = str(BATCH_SIZE + 10)
    scored = spy_scored_batches(monkeypatch)  # what the samples source draws
    common = ["--ckpt", str(tiny_checkpoint), "--steps", "2", "--seed", "11", "--num", num]
    store = tmp_path / "r.sqlite"
    assert main(["evaluate", *common, "--metrics", "digits_fd", "--store", str(store)]) == 0
    out = tmp_path / "x.npz"
    assert main(["sample", *common, "--out", str(out)]) == 0
    assert [len(x) for x in scored] == [BATCH_SIZE, 10]
    written = np.load(out)["arr_0"]
    np.testing.assert_array_equal(written, to_uint8(torch.cat(scored)).permute(0, 2, 3, 1).numpy())
    assert ResultsStore(store).records()[0]["num_samples"] == BATCH_SIZE + 10


@pytest.mark.parametrize(
    "tool, argv, dest, value",
    [
        ("evaluate", ["--ckpt", "x", "--num-samples", "7"], "num_samples", 7),
        ("sweep", ["f.yaml", "--num-samples", "7"], "num_samples", 7),
        ("sample", ["--ckpt", "x", "--num-samples", "7"], "num", 7),
        ("evaluate", ["--ckpt", "x", "--prompts", "p.txt"], "prompt_file", "p.txt"),
        ("clip", ["zero-shot", "--ckpt", "x", "--prompts", "a {}", "the {}"], "template", ["a {}", "the {}"]),
    ],
)
def test_old_spellings_still_work_hidden_and_warn(tool, argv, dest, value):
    with pytest.warns(FutureWarning, match="is deprecated; use --"):
        args = tool_parser(tool).parse_args(argv)
    assert getattr(args, dest) == value


def test_one_spelling_of_the_sample_count_and_of_prompts():
    """Every visible option that counts samples is --num; --prompt is one prompt (repeatable) wherever it exists,
    a file of prompts is --prompt-file, and no visible option is spelled --num-samples or --prompts."""
    for name, parser in parsers().items():
        visible = {s for a in options(parser) if a.help != argparse.SUPPRESS for s in a.option_strings}
        assert not visible & {"--num-samples", "--prompts"}, name
        for action in options(parser):
            if "--prompt" in action.option_strings:
                assert isinstance(action, argparse._AppendAction), name
    assert {"--prompt", "--prompt-file", "--num"} <= {
        s for a in options(tool_parser("evaluate")) for s in a.option_strings
    }
    args = tool_parser("evaluate").parse_args(["--ckpt", "x", "--prompt", "a 1", "--prompt", "a 2", "--num", "9"])
    assert args.prompt == ["a 1", "a 2"] and args.num_samples == 9


def test_evaluate_refuses_both_prompts_and_a_prompt_file(tmp_path, capsys):
    argv = ["evaluate", "--ckpt", "x.ckpt", "--prompt", "a 1", "--prompt-file", "p.txt", "--store", str(tmp_path / "r")]
    assert main(argv) == 2
    assert "--prompt and --prompt-file both give the prompts; pass one of them." in capsys.readouterr().err


def test_shared_flags_are_declared_once():
    """No command declares a shared flag itself: each comes from ``arguments.FLAGS`` with its type and default."""
    pattern = re.compile(r"add_argument\(\s*\"(" + "|".join(re.escape(flag_of(n)) for n in FLAGS) + r")\"")
    for path in EXPERIMENTS.glob("*.py"):
        if path.name != "arguments.py":
            assert not pattern.findall(path.read_text()), f"{path.name} declares {pattern.findall(path.read_text())}"
    for name, parser in parsers().items():
        for action in options(parser):
            if action.dest in FLAGS and flag_of(action.dest) in action.option_strings:
                spec = FLAGS[action.dest]
                assert action.default == spec.get("default", action.default), (name, action.dest)
                assert action.type == spec.get("type"), (name, action.dest)


def test_every_verb_is_listed_and_every_option_has_help():
    text = usage()
    for verb in [*TRAINER_VERBS, *TOOLS]:
        assert re.search(rf"^  {re.escape(verb)}\s+\S", text, re.M), verb
    for name, parser in parsers().items():
        assert parser.description or name.count(" "), name
        parser.format_help()  # renders (a stray % in a help text would raise here)
        for action in options(parser):
            assert action.help, f"`lit-genvision {name}` {action.option_strings or action.dest} has no help"
    for name, parser in parsers().items():
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                assert all(choice.help for choice in action._choices_actions), name


def test_top_level_help_prints_every_verb(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(verb in out for verb in [*TRAINER_VERBS, *TOOLS])


def _blocked(tmp_path: Path, name: str) -> Path:
    blocker = tmp_path / "file.txt"
    blocker.write_text("")
    return blocker / name


@pytest.mark.parametrize(
    "argv",
    [
        ["sample", "--ckpt", "{ckpt}", "--out", "{out}.png"],
        ["export", "--ckpt", "{ckpt}", "--out", "{out}.safetensors"],
        ["export", "--ckpt", "{ckpt}", "--format", "diffusers", "--out", "{out}"],
        ["leaderboard", "--store", "{tmp}/r.sqlite", "--out", "{out}"],
        ["latent", "embed", "--ckpt", "{ckpt}", "--out", "{out}.png"],
        ["latent", "reconstruct", "--ckpt", "{ckpt}", "--out", "{out}.png"],
        ["clip", "zero-shot", "--ckpt", "{ckpt}", "--json", "{out}.json"],
        ["caption", "--ckpt", "{ckpt}", "--out", "{out}.parquet"],
        ["inpaint", "--ckpt", "{ckpt}", "--images", "i.npz", "--masks", "m.npz", "--out", "{out}.npz"],
        ["stylemix", "--ckpt", "{ckpt}", "--out", "{out}.png"],
        ["evaluate", "--ckpt", "{ckpt}", "--store", "{out}.sqlite"],
        ["sweep", "{tmp}/missing.yaml", "--store", "{out}.sqlite"],
    ],
    ids=lambda argv: " ".join(a for a in argv[:2] if not a.startswith("-")),
)
def test_every_command_checks_its_output_before_any_work(tmp_path, capsys, argv):
    """The checkpoint does not exist: a command that checked its output first says so about the output."""
    out = _blocked(tmp_path, "out")
    fill = {"ckpt": str(tmp_path / "missing.ckpt"), "out": str(out), "tmp": str(tmp_path)}
    assert main([a.format(**fill) for a in argv]) == 2
    err = capsys.readouterr().err
    assert "cannot be written because" in err and "is a file, not a folder" in err, err
    assert err.count("\n") == 1


def test_deprecated_alias_does_not_warn_for_the_new_spelling():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tool_parser("evaluate").parse_args(["--ckpt", "x", "--num", "7", "--prompt-file", "p.txt"])
