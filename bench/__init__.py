"""Benchmark scripts, each run as `python bench/NAME.py`.

A package only so that mypy does not take bench/center.py for the `center` package."""
