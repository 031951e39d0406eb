"""Compile ``loaders.linux_auditd.native.COMPILED`` with mypyc into ``loaders/_native/``.

``make native`` runs ``python -m loaders.linux_auditd.native_build --if-stale``. The build
happens in a temporary directory and replaces ``loaders/_native`` only when it succeeded, so a
failed build leaves the Python source in use. The manifest records the hash of every module
the build depends on (:func:`~loaders.linux_auditd.native.covered_modules`), read *before*
compiling: a file edited during the build makes the build stale rather than wrongly fresh.
Needs gcc and the Python headers (both on Debian's ``python3-dev`` / pyenv Pythons) and the
``dev`` extra (mypy ships mypyc).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from loaders.linux_auditd.native import (
    COMPILED,
    ENV,
    MANIFEST,
    NATIVE_DIR,
    ROOT,
    check,
    covered_modules,
    source_hashes,
)


def build(out: Path = NATIVE_DIR, quiet: bool = True) -> Path:
    """Compile into ``out`` and return it; raises on failure, leaving ``out`` as it was."""
    from mypyc.build import mypycify  # build-time only: mypy is in the dev extra
    from setuptools import setup

    root = ROOT
    hashes = source_hashes(covered_modules())
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="auditlens-native-") as tmp_name:
        tmp = Path(tmp_name)
        here = os.getcwd()
        os.chdir(root)  # mypyc names the modules after their paths relative to here
        try:
            exts = mypycify([f"{name.replace('.', '/')}.py" for name in COMPILED],
                            opt_level="3", target_dir=str(tmp / "c"))
        finally:
            os.chdir(here)
        lib = tmp / "lib"
        args = ["build_ext", "--build-lib", str(lib), "--build-temp", str(tmp / "o"),
                "--parallel", str(os.cpu_count() or 1)]
        if quiet:
            args.insert(0, "--quiet")
        # Run outside the project: setuptools would read (and validate) its pyproject.toml.
        os.chdir(tmp)
        try:
            setup(name="auditlens-native", ext_modules=exts, script_args=args)
        finally:
            os.chdir(here)
        files = {}
        suffix = sysconfig.get_config_var("EXT_SUFFIX")
        for so in sorted(lib.rglob(f"*{suffix}")):
            rel = so.relative_to(lib)
            name = ".".join(rel.parts)[: -len(suffix)]
            files[name] = str(rel)
        if set(COMPILED) - set(files):
            raise RuntimeError(f"mypyc built {sorted(files)}, expected {COMPILED}")
        manifest = {"ext_suffix": suffix, "files": files, "sources": hashes,
                    "python": sys.version.split()[0],
                    "built_seconds": round(time.monotonic() - started, 1)}
        (lib / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", "utf-8")
        staged = out.with_name(out.name + ".new")
        shutil.rmtree(staged, ignore_errors=True)
        shutil.copytree(lib, staged)
        shutil.rmtree(out, ignore_errors=True)
        staged.rename(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loaders.linux_auditd.native_build",
                                     description=__doc__)
    parser.add_argument("--out", type=Path, default=NATIVE_DIR)
    parser.add_argument("--verbose", action="store_true", help="show the compiler commands")
    parser.add_argument("--check", action="store_true",
                        help="say whether the compiled build would be used, and exit")
    parser.add_argument("--if-stale", action="store_true",
                        help="build only when the build in --out is missing or out of date")
    args = parser.parse_args(argv)
    if args.if_stale:
        saved = os.environ.pop(ENV, None)  # whether the build is fresh, whatever the setting
        try:
            state = check(args.out)
        finally:
            if saved is not None:
                os.environ[ENV] = saved
        if state.active:
            print(f"compiled auditd modules are up to date ({args.out})")
            return 0
    if args.check:
        state = check(args.out)
        print(("compiled: " if state.active else "Python source: ") + state.reason)
        for name, file in state.modules.items():
            print(f"  {name}: {file}")
        return 0 if state.active else 1
    os.environ[ENV] = "0"  # never import compiled modules while compiling
    started = time.monotonic()
    out = build(args.out, quiet=not args.verbose)
    print(f"compiled {', '.join(COMPILED)} into {out} in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
