"""Shared test helpers: where the repository's build outputs are."""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def project_version() -> str:
    """The version of the Cargo workspace, which the jar and the wheel share."""
    text = (REPO_ROOT / "Cargo.toml").read_text()
    match = re.search(r'^version = "([^"]+)"', text, re.MULTILINE)
    assert match, "Cargo.toml has no workspace version"
    return match.group(1)


def plugin_jar() -> Path:
    """The built plugin jar; failing, not skipping, when it is missing or,
    built here, older than what it is built from (`make python` does not
    rebuild it, and a stale jar's native core would judge today's pickles)."""
    built_here = REPO_ROOT / "jvm" / "target" / f"flightpickle-spark-{project_version()}.jar"
    jar = Path(os.environ.get("FLIGHTPICKLE_JAR") or built_here)
    if not jar.is_file():
        pytest.fail(f"plugin jar {jar} is missing: build it with `make jar` (or run `make test`)")
    if jar.resolve() == built_here.resolve():
        newer = newest_jar_source()
        if newer.stat().st_mtime > jar.stat().st_mtime:
            pytest.fail(f"plugin jar {jar} is older than {newer.relative_to(REPO_ROOT)}: rebuild it with `make jar`")
    return jar


@functools.cache
def newest_jar_source() -> Path:
    """The most recently changed of the files the Makefile builds the jar from."""
    sources = [REPO_ROOT / name for name in ("Cargo.toml", "Cargo.lock", "jvm/pom.xml")]
    for folder, pattern in (("src", "*.rs"), ("jvm/native", "*.rs"), ("jvm/native", "Cargo.toml"), ("jvm/src", "*")):
        sources += (path for path in (REPO_ROOT / folder).rglob(pattern) if path.is_file())
    return max(sources, key=lambda path: path.stat().st_mtime)


def load_finding(payload: bytes) -> tuple[object, list[tuple[str, str]]]:
    """Loads ``payload`` with pickle's unpickler; returns the object and each
    ``(module, name)`` its ``find_class`` was asked for, in order."""
    import io
    import pickle

    found: list[tuple[str, str]] = []

    class Logging(pickle.Unpickler):
        def find_class(self, module, name):
            found.append((module, name))
            return super().find_class(module, name)

    return Logging(io.BytesIO(payload)).load(), found


def imported_globals(payload: bytes) -> set[str]:
    """Every ``module.name`` that loading ``payload`` would import, read without loading it."""
    import pickletools

    memo: dict[int, object] = {}
    strings: list[object] = []  # recent string pushes, enough to resolve STACK_GLOBAL
    found = set()
    for opcode, arg, _ in pickletools.genops(payload):
        name = opcode.name
        if name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"):
            strings.append(arg)
        elif name in ("BINGET", "LONG_BINGET", "GET"):
            strings.append(memo.get(arg))
        elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[arg] = strings[-1] if strings else None
        elif name == "MEMOIZE":
            memo[len(memo)] = strings[-1] if strings else None
        elif name == "GLOBAL":
            found.add(arg.replace(" ", "."))
        elif name == "STACK_GLOBAL":
            found.add(f"{strings[-2]}.{strings[-1]}")
        if name not in ("BINPUT", "LONG_BINPUT", "PUT", "MEMOIZE") and "UNICODE" not in name and "GET" not in name:
            strings.append(None)  # any other push breaks a module/name pair
    return found


def sealed_frame(command: bytes) -> bytes:
    """The sealed payload inside a Spark command, read without running the command."""
    import pickletools

    ops = pickletools.genops(command)
    return next(arg for _, arg, _ in ops if isinstance(arg, bytes) and arg.startswith(b"\x89FPK"))


def leb128(number: int) -> bytes:
    """``number`` as an unsigned LEB128 number, as the native function shape
    writes counts and lengths."""
    out = bytearray()
    while True:
        low, number = number & 0x7F, number >> 7
        out.append(low | (0x80 if number else 0))
        if not number:
            return bytes(out)


def names_blob(code) -> bytes:
    """The blob of ``code``'s four name tuples, as the native function shape
    writes it: each tuple its count, then each name its UTF-8 length in one
    byte and its UTF-8."""
    out = bytearray()
    for field in ("co_names", "co_varnames", "co_freevars", "co_cellvars"):
        names = getattr(code, field)
        out += leb128(len(names))
        for name in names:
            out += bytes([len(name.encode())]) + name.encode()
    return bytes(out)
