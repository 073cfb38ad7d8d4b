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

from kling_core.contract.capabilities import ImageLimits, ModelCapabilities, Price, ProviderCapabilities, VideoLimits
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
    SubmitShape,
)
from kling_core.http.redact import register_secret
from kling_core.http.retry import parse_retry_after
from kling_core.http.tokens import ExpiringTokenAuth, TokenCache, TokenGrant, TokenRefusal, TokenTimes
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
