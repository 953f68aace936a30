"""The Dockerfile's steps, replayed without Docker: COPY into a fresh folder, the same
``pip install`` into a fresh virtualenv, then the ENTRYPOINT answering ``--help`` with the
image's ENV. A dependency missing from pyproject.toml, a package left out of a COPY or an
entry point that does not import fails here before an image is ever built."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined, current = [], ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip().removesuffix("\\").strip() + " "
        if not line.rstrip().endswith("\\"):
            joined.append(current.strip())
            current = ""
    return [(j.split(None, 1)[0].upper(), j.split(None, 1)[1]) for j in joined]


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for op, args in instructions():
        if op == "ENV":
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def test_the_dockerfile_builds_from_slim_python_as_a_non_root_user() -> None:
    ops = instructions()
    assert ops[0] == ("FROM", "python:3.11-slim")
    user = [args for op, args in ops if op == "USER"]
    assert user and user[-1] not in ("root", "0")
    healthcheck = next(args for op, args in ops if op == "HEALTHCHECK")
    command = json.loads(healthcheck.split("CMD", 1)[1])
    assert command[:2] == ["python", "-c"] and "/healthz" in command[2]
    compile(command[2], "HEALTHCHECK", "exec")  # the probe is valid Python
    assert json.loads(next(args for op, args in ops if op == "ENTRYPOINT")) == ["karchive", "run"]
    assert image_env()["KARCHIVE_METRICS_PORT"] in next(args for op, args in ops if op == "EXPOSE")
    # The journal goes under the final working directory: the runtime user must own it.
    workdir = [args for op, args in ops if op == "WORKDIR"][-1]
    assert any(op == "RUN" and f"chown {user[-1]} {workdir}" in args for op, args in ops)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_image_install_steps_give_a_working_karchive_run(tmp_path: Path) -> None:
    context, workdir = tmp_path / "rootfs", None
    env_python = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_python)
    bin_dir = env_python / "bin"
    for op, args in instructions():
        if op == "WORKDIR":
            workdir = context / args.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif op == "COPY":
            assert workdir is not None, "COPY before WORKDIR"
            *sources, dest = shlex.split(args)
            target = workdir / dest
            for source in sources:
                origin = ROOT / source
                assert origin.exists(), f"the Dockerfile copies {source}, which is not in the tree"
                if origin.is_dir():
                    shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, target / origin.name)
        elif op == "RUN":
            # Only the pip steps matter outside an image (useradd, rm -rf /src do not).
            for step in args.split("&&"):
                words = shlex.split(step)
                if words and words[0] == "pip":
                    assert workdir is not None
                    done = subprocess.run([str(bin_dir / "pip"), *words[1:]], cwd=workdir,
                                          capture_output=True, text=True, timeout=840)
                    assert done.returncode == 0, done.stderr[-3000:]
    environ = {**os.environ, **image_env(), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    environ.pop("PYTHONPATH", None)
    done = subprocess.run(["karchive", "run", "--help"], env=environ, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--plan-only" in done.stdout and "--metrics-port" in done.stdout
    # The image's ENV moves the metrics server off loopback, as the container needs.
    assert "(default 0.0.0.0;" in " ".join(done.stdout.split())
    # Installed as a package, not run from the source tree: no dev tools came along, and
    # neither did the sandbox or moto (an optional extra, never the daemon's dependency).
    assert not (bin_dir / "pytest").exists()
    assert not any(op == "COPY" and "sandbox" in args for op, args in instructions())
    python = str(bin_dir / "python")
    for module in ("sandbox", "moto"):
        found = subprocess.run([python, "-c", f"import {module}"], env=environ, cwd=tmp_path,
                               capture_output=True, text=True, timeout=120)
        assert found.returncode != 0, f"the image's Python imports {module}"
    # ... and the command line says how to get it, in one line.
    done = subprocess.run(["karchive", "sandbox", "up"], env=environ, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "Traceback" not in done.stderr
    assert "pip install 'karchive[sandbox]'" in done.stderr
