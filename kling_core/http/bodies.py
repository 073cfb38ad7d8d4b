"""Request bodies that more than one host shares.

Segmind's Kling O1/O3 edit takes fal's parameter set field for field (it resells the same
endpoint), so both plugins build the common part here and add their own fields on top.
"""

from __future__ import annotations

from typing import Any

from kling_core.contract.models import EditRequest
from kling_core.contract.prompt import render_prompt, spell_canonical


def fal_style_edit_body(request: EditRequest) -> dict[str, Any]:
    """``prompt``, ``video_url``, ``keep_audio`` (always explicit), ``image_urls``, ``elements``.

    Prompt references stay canonical (``@Image1``, ``@Element1``); element names and
    descriptions have no field: elements are referred to by position.
    """
    body: dict[str, Any] = {
        "prompt": render_prompt(request.prompt, spell_canonical),
        "video_url": request.video,
        "keep_audio": request.keep_audio,
    }
    if request.images:
        body["image_urls"] = list(request.images)
    if request.elements:
        body["elements"] = [
            {"frontal_image_url": el.frontal_image, "reference_image_urls": list(el.reference_images)}
            for el in request.elements
        ]
    return body
