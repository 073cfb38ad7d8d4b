"""kling-core's first-party provider plugins, one subpackage each.

They live under this one package name so a third party's ``kling-fal`` cannot collide with
ours, and each registers through the ``kling`` entry-point group exactly as a third party's
plugin does. They import only the public plugin API, :mod:`kling_core.sdk`.
"""
