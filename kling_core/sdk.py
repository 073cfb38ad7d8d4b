"""The provider SDK: everything a provider plugin imports, and nothing else.

A plugin imports from here (and from :mod:`kling_core.testing` in its tests); every other
``kling_core`` module is internal and may change without notice. The first-party plugins in
``kling_core_plugins`` are held to the same rule by a test.

A hosted provider is mostly data::

    class AcmeProvider(HttpProvider):
        name = "acme"
        credentials = (CredentialSpec("api_key", "ACME_API_KEY"),)
        capabilities = ProviderCapabilities(models=(ModelCapabilities(model="kling-o1"),))
        default_base_url = "https://api.acme.test"
        spec = HostSpec(routes=Routes(submit="/v1/edits", status="/v1/edits/{job_id}"), ...)
        error_table = ErrorTable(by_code={...})

        def submit_body(self, request: EditRequest) -> dict[str, Any]:
            return {"prompt": render_prompt(request.prompt, spell_snake), "video_url": request.video}

See docs/plugin-tutorial.md for the whole walk-through and docs/http-providers.md for the
reference of :class:`HostSpec`. Providers that render locally (the mock) also get the
hardened media tools: :func:`run_ffmpeg`, :func:`probe_video`, :func:`local_media` and friends.
"""

from typing import TYPE_CHECKING, Any

from kling_core.contract.capabilities import (
    ImageLimits,
    ModelCapabilities,
    Price,
    ProviderCapabilities,
    VideoLimits,
)
from kling_core.contract.checks import local_path
from kling_core.contract.models import MODELS, Cost, EditRequest, EditResult, Element, OutputVideo, Timings
from kling_core.contract.prompt import render_prompt, spell_canonical, spell_snake, spell_triple_angle
from kling_core.contract.status import (
    Cancelled,
    Completed,
    Failed,
    HostStatus,
    JobError,
    JobStatus,
    Queued,
    Running,
    Succeeded,
)
from kling_core.errors import (
    AuthenticationError,
    ConfigError,
    ContentPolicyError,
    InsufficientCreditsError,
    KlingError,
    Problem,
    ProtocolError,
    ProviderError,
    ProviderValidationError,
    RateLimitedError,
    ResultExpiredError,
    SubmitUncertainError,
    UnsafeMediaError,
    UnsupportedError,
    ValidationError,
)
from kling_core.files import write_text_atomic
from kling_core.hookspecs import hookimpl
from kling_core.lazy import exporter
from kling_core.media.formats import IMAGE_FORMATS, VIDEO_FORMATS
from kling_core.media.locate import find_ffmpeg
from kling_core.media.probe import ImageInfo, VideoInfo, probe_image, probe_video
from kling_core.media.resolve import local_media
from kling_core.media.runner import FfmpegInput, run_ffmpeg
from kling_core.media.workdir import work_dir
from kling_core.provider import JobHandle, MediaUploader, Provider, ProviderContext
from kling_core.serialization import structure, unstructure
from kling_core.settings import CredentialSpec, MediaSettings, PollSettings, Secret
from kling_core.uploads import FileChunks, content_type, replace_local_media

if TYPE_CHECKING:
    from kling_core.http.auth import CredentialAuth, HeaderAuth, RefreshingAuth
    from kling_core.http.base import HttpProvider, clip, detail_problems, host_of, saved_body, try_json
    from kling_core.http.bodies import fal_style_edit_body
    from kling_core.http.errormap import ErrorInfo, ErrorRule, ErrorTable
    from kling_core.http.fields import MISSING
    from kling_core.http.fields import code as field_code
    from kling_core.http.fields import get as field
    from kling_core.http.fields import integer as field_int
    from kling_core.http.fields import text as field_text
    from kling_core.http.hostspec import (
        BodyError,
        CallbackShape,
        CancelShape,
        ErrorShape,
        FailureKind,
        HostSpec,
        HostState,
        ResultShape,
        Routes,
        StatusShape,
        StreamShape,
        SubmitShape,
    )
    from kling_core.http.redact import register_secret
    from kling_core.http.retry import parse_retry_after
    from kling_core.http.tokens import ExpiringTokenAuth, TokenCache, TokenGrant, TokenRefusal, TokenTimes

# The HTTP toolkit (and httpx with it) loads on first use: a provider that renders locally (the
# mock) imports this module without paying for it. A name added above goes here too
# (tests/test_start_up.py checks that every name in __all__ resolves).
_LAZY: dict[str, tuple[str, str]] = {
    "CredentialAuth": ("kling_core.http.auth", "CredentialAuth"),
    "HeaderAuth": ("kling_core.http.auth", "HeaderAuth"),
    "RefreshingAuth": ("kling_core.http.auth", "RefreshingAuth"),
    "HttpProvider": ("kling_core.http.base", "HttpProvider"),
    "clip": ("kling_core.http.base", "clip"),
    "detail_problems": ("kling_core.http.base", "detail_problems"),
    "host_of": ("kling_core.http.base", "host_of"),
    "saved_body": ("kling_core.http.base", "saved_body"),
    "try_json": ("kling_core.http.base", "try_json"),
    "fal_style_edit_body": ("kling_core.http.bodies", "fal_style_edit_body"),
    "ErrorInfo": ("kling_core.http.errormap", "ErrorInfo"),
    "ErrorRule": ("kling_core.http.errormap", "ErrorRule"),
    "ErrorTable": ("kling_core.http.errormap", "ErrorTable"),
    "MISSING": ("kling_core.http.fields", "MISSING"),
    "field_code": ("kling_core.http.fields", "code"),
    "field": ("kling_core.http.fields", "get"),
    "field_int": ("kling_core.http.fields", "integer"),
    "field_text": ("kling_core.http.fields", "text"),
    "BodyError": ("kling_core.http.hostspec", "BodyError"),
    "CallbackShape": ("kling_core.http.hostspec", "CallbackShape"),
    "CancelShape": ("kling_core.http.hostspec", "CancelShape"),
    "ErrorShape": ("kling_core.http.hostspec", "ErrorShape"),
    "FailureKind": ("kling_core.http.hostspec", "FailureKind"),
    "HostSpec": ("kling_core.http.hostspec", "HostSpec"),
    "HostState": ("kling_core.http.hostspec", "HostState"),
    "ResultShape": ("kling_core.http.hostspec", "ResultShape"),
    "Routes": ("kling_core.http.hostspec", "Routes"),
    "StatusShape": ("kling_core.http.hostspec", "StatusShape"),
    "StreamShape": ("kling_core.http.hostspec", "StreamShape"),
    "SubmitShape": ("kling_core.http.hostspec", "SubmitShape"),
    "register_secret": ("kling_core.http.redact", "register_secret"),
    "parse_retry_after": ("kling_core.http.retry", "parse_retry_after"),
    "ExpiringTokenAuth": ("kling_core.http.tokens", "ExpiringTokenAuth"),
    "TokenCache": ("kling_core.http.tokens", "TokenCache"),
    "TokenGrant": ("kling_core.http.tokens", "TokenGrant"),
    "TokenRefusal": ("kling_core.http.tokens", "TokenRefusal"),
    "TokenTimes": ("kling_core.http.tokens", "TokenTimes"),
}

__all__ = [
    "IMAGE_FORMATS",
    "MISSING",
    "MODELS",
    "VIDEO_FORMATS",
    "AuthenticationError",
    "BodyError",
    "CallbackShape",
    "CancelShape",
    "Cancelled",
    "Completed",
    "ConfigError",
    "ContentPolicyError",
    "Cost",
    "CredentialAuth",
    "CredentialSpec",
    "EditRequest",
    "EditResult",
    "Element",
    "ErrorInfo",
    "ErrorRule",
    "ErrorShape",
    "ErrorTable",
    "ExpiringTokenAuth",
    "Failed",
    "FailureKind",
    "FfmpegInput",
    "FileChunks",
    "HeaderAuth",
    "HostSpec",
    "HostState",
    "HostStatus",
    "HttpProvider",
    "ImageInfo",
    "ImageLimits",
    "InsufficientCreditsError",
    "JobError",
    "JobHandle",
    "JobStatus",
    "KlingError",
    "MediaSettings",
    "MediaUploader",
    "ModelCapabilities",
    "OutputVideo",
    "PollSettings",
    "Price",
    "Problem",
    "ProtocolError",
    "Provider",
    "ProviderCapabilities",
    "ProviderContext",
    "ProviderError",
    "ProviderValidationError",
    "Queued",
    "RateLimitedError",
    "RefreshingAuth",
    "ResultExpiredError",
    "ResultShape",
    "Routes",
    "Running",
    "Secret",
    "StatusShape",
    "StreamShape",
    "SubmitShape",
    "SubmitUncertainError",
    "Succeeded",
    "Timings",
    "TokenCache",
    "TokenGrant",
    "TokenRefusal",
    "TokenTimes",
    "UnsafeMediaError",
    "UnsupportedError",
    "ValidationError",
    "VideoInfo",
    "VideoLimits",
    "clip",
    "content_type",
    "detail_problems",
    "fal_style_edit_body",
    "field",
    "field_code",
    "field_int",
    "field_text",
    "find_ffmpeg",
    "hookimpl",
    "host_of",
    "local_media",
    "local_path",
    "parse_retry_after",
    "probe_image",
    "probe_video",
    "register_secret",
    "render_prompt",
    "replace_local_media",
    "run_ffmpeg",
    "saved_body",
    "spell_canonical",
    "spell_snake",
    "spell_triple_angle",
    "structure",
    "try_json",
    "unstructure",
    "work_dir",
    "write_text_atomic",
]


_load = exporter(__name__, _LAZY)


def __getattr__(name: str) -> Any:
    return _load(name)
