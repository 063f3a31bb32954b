"""Exports that close the loop: regression suites from labeled failures, and datasets for other eval tools."""
