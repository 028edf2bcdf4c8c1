"""Test configuration: property tests are derandomized, so every run tries the same examples."""

from hypothesis import settings

settings.register_profile("dfo", derandomize=True, database=None, deadline=None)
settings.load_profile("dfo")
