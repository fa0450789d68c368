"""Benchmarks of Hitem3D for Blender: numbers, not timed tests.

``python -m benchmarks`` (or ``python build.py bench``) runs them all in .venv and
prints one JSON object; BENCHMARKS.md explains each figure and keeps the latest.
"""
