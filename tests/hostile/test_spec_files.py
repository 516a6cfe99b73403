"""Hostile experiment files get one clear, located answer within bounded memory and time.

Each file is handed to `mlchaos validate` in a subprocess whose address space is capped at
1 GiB (resource.setrlimit) and which must answer within 30 s: a regression shows as a failure,
never as a machine brought down."""

from __future__ import annotations

import os
import resource
import subprocess
from pathlib import Path

from tests.conftest import MLCHAOS

MEMORY = 1 << 30


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MLCHAOS, "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        preexec_fn=_capped,
        check=False,
    )


def assert_refused(done: subprocess.CompletedProcess[str], *said: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    for text in said:
        assert text in done.stderr, done.stderr[-2000:]
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr


def test_a_billion_laughs_file_stops_at_the_value_bound(tmp_path: Path) -> None:
    """349 bytes that expand to 10^9 values (18.7 s and 1.6 GB before the bound)."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("title: t\n" + "\n".join(lines) + "\n")
    assert bomb.stat().st_size < 1000
    assert_refused(
        validate(bomb), "expands to more than 100000 values (YAML aliases?)", "bomb.yaml:2:"
    )


def test_a_huge_file_is_refused_by_its_size(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("title: t\ndescription: " + "x" * (5 * 2**20) + "\n")
    assert_refused(validate(big), "larger than 4 MiB")


def test_a_fifo_is_refused_without_reading_from_it(tmp_path: Path) -> None:
    fifo = tmp_path / "exp.yaml"
    os.mkfifo(fifo)  # nobody writes: reading would block forever
    assert_refused(validate(fifo), "not a regular file")


def test_a_5000_digit_integer_is_a_located_error(tmp_path: Path) -> None:
    spec = tmp_path / "digits.yaml"
    spec.write_text("title: t\nseed: " + "9" * 5000 + "\n")
    assert_refused(validate(spec), "digits.yaml:2:7: seed: cannot read this value")


def test_deep_nesting_is_refused_with_its_line(tmp_path: Path) -> None:
    spec = tmp_path / "deep.yaml"
    spec.write_text("title: t\ndescription: " + "[" * 100 + "]" * 100 + "\n")
    assert_refused(validate(spec), "nested more than 64 levels", "deep.yaml:2:")
