"""The ``rnnlab`` command line."""

from __future__ import annotations

import argparse
import sys
from importlib import metadata

__all__ = ["main"]


def _version() -> str:
    try:
        return metadata.version("rnnlab")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``rnnlab`` (one subcommand per task)."""
    parser = argparse.ArgumentParser(
        prog="rnnlab",
        description="Massive grids of recurrent-network simulations: stability, memory and "
        "gradients (Numba kernels, Dask scheduling, Zarr stores).",
    )
    parser.add_argument("--version", action="version", version=f"rnnlab {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser(
        "demo",
        help="run the engine demo (the lecture's scalar and vector recursions) into a Zarr store",
        description="Run the lecture's scalar and vector recursions, print what was measured "
        "next to the theory, and write the results to a Zarr store.",
    )
    demo.add_argument(
        "--out",
        default="results/demo.zarr",
        help="Zarr store to write (default: %(default)s; replaced if it exists)",
    )
    demo.add_argument("--steps", type=int, default=1000, help="steps per run (default: 1000)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rnnlab`` command. Returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "demo":
        if args.steps < 1:
            parser.error(f"--steps must be >= 1, got {args.steps}")
        from .demo import run_demo

        run_demo(args.out, steps=args.steps)
        return 0
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
