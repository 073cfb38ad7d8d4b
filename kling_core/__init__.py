"""kling-core: one contract over every host of the Kling O1/O3 video-to-video edit models."""

from kling_core.contract.models import EditRequest, EditResult, Element, OutputVideo
from kling_core.errors import KlingError
from kling_core.hookspecs import hookimpl

__all__ = ["EditRequest", "EditResult", "Element", "KlingError", "OutputVideo", "hookimpl"]
__version__ = "0.1.0"
