"""The command line's first impressions: --version, sandbox --help, and the commands the
example policy's own header tells a new user to run."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from controller.cli import main
from controller.runtime.metrics import version
from sandbox.runner import Sandbox

ROOT = Path(__file__).resolve().parents[2]


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out == f"karchive {version()}\n"


@pytest.mark.parametrize("argv", [["sandbox", "--help"], ["sandbox", "up", "--help"]])
def test_sandbox_help_is_the_sandboxs_own(argv: list[str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: karchive {' '.join(argv[:-1])}")


def test_an_unknown_option_of_another_command_is_still_an_error(
    capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["plan", "--no-such-option"])
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert err == ("karchive: error: unrecognized arguments: --no-such-option; "
                   "see `karchive --help`\n")


def header_commands() -> list[list[str]]:
    """The `karchive ...` commands quoted in policy.yaml's opening comment, but the sandbox's
    own (``sandbox up`` serves until interrupted; its --help is tested above)."""
    text = ROOT.joinpath("policy.yaml").read_text(encoding="utf-8")
    header = text.split("\nversion:", 1)[0]
    found = [shlex.split(c) for c in re.findall(r"`(karchive [^`]+)`", header)
             if not c.startswith("karchive sandbox")]
    assert found, "policy.yaml's header names no karchive command"
    return found


def test_the_commands_in_policy_yamls_header_work(sandbox: Sandbox, monkeypatch: Any,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(ROOT)
    for command in header_commands():
        code = main([*command[1:], *(["--quiet"] if command[1] == "plan" else [])])
        captured = capsys.readouterr()
        assert code == 0, f"{shlex.join(command)}: {captured.err}"
