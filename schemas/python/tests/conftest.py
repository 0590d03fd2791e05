"""conftest.py — test the llmq package in this checkout, installed or not."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
