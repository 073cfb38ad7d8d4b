"""The provider-neutral contract: models, statuses, capabilities, prompt references, checks.

Internal: users import these names from :mod:`kling_core`, plugins from :mod:`kling_core.sdk`.
"""
