"""``kaudit provision``: get etcd and kube-apiserver for the local backend, wherever kaudit is.

Runs the provisioning script that ships inside the package (``pytest_kaudit/provision/local.sh``,
the same one ``clusters/local/provision`` runs in a source checkout). Its progress goes to
stderr as it happens; the last stdout line is the directory holding ``etcd`` and
``kube-apiserver``, ready for ``KUBEBUILDER_ASSETS``::

    export KUBEBUILDER_ASSETS="$(kaudit provision | tail -n 1)"

Binaries already at hand (``KUBEBUILDER_ASSETS``, ``TEST_ASSET_*``, ``PATH``, the cache) are
reused; otherwise ``--upstream VERSION`` downloads release binaries, and without it the
Debian route builds kube-apiserver from Debian's source package.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import threading
from contextlib import ExitStack
from importlib import resources
from pathlib import Path
from typing import IO

from pytest_kaudit.cli import Command
from pytest_kaudit.cli.base import EXIT_OK, EXIT_USAGE, CliError, Streams

#: The script inside the package, relative to the ``pytest_kaudit`` package root.
SCRIPT = ("provision", "local.sh")
EXIT_FAILED = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare ``provision``'s arguments (passed through to the script unchanged)."""
    parser.add_argument(
        "--upstream",
        metavar="VERSION",
        default=None,
        help="Download kube-apiserver VERSION (e.g. v1.31.0) and etcd from the upstream "
        "release sites instead of reusing or building (needs internet)",
    )
    parser.add_argument(
        "--etcd-version",
        metavar="VERSION",
        default=None,
        help="etcd release for --upstream (default: the script's, v3.5.15)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="Ignore binaries already on PATH or in KUBEBUILDER_ASSETS",
    )
    parser.add_argument(
        "--cache-dir",
        metavar="DIR",
        default=None,
        help="Cache root (default: $KAUDIT_CACHE_DIR or ${XDG_CACHE_HOME:-~/.cache}/pytest-kaudit)",
    )


def script_arguments(args: argparse.Namespace) -> list[str]:
    """The script's command-line arguments for the parsed options."""
    argv: list[str] = []
    if args.upstream is not None:
        argv += ["--upstream", _non_empty(args.upstream, "--upstream")]
    if args.etcd_version is not None:
        argv += ["--etcd-version", _non_empty(args.etcd_version, "--etcd-version")]
    if args.force:
        argv.append("--force")
    if args.cache_dir is not None:
        cache = Path(_non_empty(args.cache_dir, "--cache-dir")).expanduser()
        if cache.exists() and not cache.is_dir():
            raise CliError(f"--cache-dir {args.cache_dir!r}: exists and is not a directory")
        argv += ["--cache-dir", str(cache)]
    return argv


def _non_empty(value: str, option: str) -> str:
    if not value.strip():
        raise CliError(f"{option}: expected a value, got an empty string")
    return value


def _pump(stream: IO[str], streams: Streams) -> None:
    for line in stream:
        streams.err.write(line)
        streams.err.flush()


def run(args: argparse.Namespace, streams: Streams) -> int:
    """Run the packaged script; print the assets directory as the last line, or fail clearly."""
    argv = script_arguments(args)
    bash = shutil.which("bash")
    if bash is None:
        raise CliError("kaudit provision needs bash on PATH (the provisioning script is a bash "
                       "script)", code=EXIT_FAILED)
    with ExitStack() as stack:
        script = stack.enter_context(
            resources.as_file(resources.files("pytest_kaudit") / SCRIPT[0] / SCRIPT[1]))
        if not script.is_file():
            raise CliError(f"the provisioning script is missing from the installed package "
                           f"({script}); reinstall pytest-kaudit", code=EXIT_FAILED)
        proc = subprocess.Popen([bash, str(script), *argv], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        pump = threading.Thread(target=_pump, args=(proc.stderr, streams), daemon=True)
        pump.start()
        try:
            assert proc.stdout is not None
            out = proc.stdout.read()
            code = proc.wait()
        finally:
            if proc.poll() is None:  # interrupted: do not leave the build running
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            pump.join(timeout=10)
    if code == EXIT_USAGE:
        raise CliError("the provisioning script refused its arguments (see above)")
    if code != 0:
        raise CliError(f"provisioning failed (the script exited with {code}); its messages are "
                       "above", code=EXIT_FAILED)
    lines = [line for line in out.splitlines() if line.strip()]
    if not lines:
        raise CliError("provisioning printed no directory", code=EXIT_FAILED)
    assets = Path(lines[-1].strip())
    missing = [n for n in ("etcd", "kube-apiserver") if not (assets / n).is_file()]
    if missing:
        raise CliError(f"provisioning printed {str(assets)!r}, which lacks {', '.join(missing)}",
                       code=EXIT_FAILED)
    for line in lines[:-1]:
        streams.err.write(line + "\n")
    streams.print(str(assets))
    return EXIT_OK


COMMAND = Command(
    name="provision",
    help="Get etcd and kube-apiserver for the local backend; print the directory holding them",
    add_arguments=add_arguments,
    run=run,
    description=__doc__,
)
