"""Pytest fixtures shared by every package's tests (loaded with `-p qwenlong.core.testing`)."""

from __future__ import annotations
