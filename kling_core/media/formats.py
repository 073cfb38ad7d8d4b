"""Container whitelists, as ffmpeg demuxer names.

ffmpeg picks a demuxer by content, not by file name, so a playlist renamed ``clip.mp4`` is
still read as HLS. Every open (PyAV probe and ffmpeg run) therefore names the demuxers it
accepts; none of these can make ffmpeg open another file or URL.
"""

from __future__ import annotations

# The ISO-BMFF demuxer's full name as ffmpeg reports it; "mp4"/"mov" are aliases of it.
MOV_DEMUXER = "mov,mp4,m4a,3gp,3g2,mj2"
VIDEO_FORMATS: tuple[str, ...] = ("mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm")
IMAGE_FORMATS: tuple[str, ...] = ("png_pipe", "jpeg_pipe")
# Self-contained formats that are merely the wrong kind of media (an image given as the
# video, a clip given as an image). Opening them is safe; they are reported as invalid
# rather than unsafe.
OTHER_SAFE_FORMATS: tuple[str, ...] = (
    "webp_pipe", "gif", "bmp_pipe", "tiff_pipe", "mp3", "wav", "flac", "ogg", "aac", "avi", "mpegts",
)

# Canonical names used in limits (VideoLimits.containers / ImageLimits.formats).
CONTAINER_NAMES: dict[str, str] = {
    MOV_DEMUXER: "mov",  # refined to mp4/mov by the major brand, see probe.py
    "matroska,webm": "matroska",
    "png_pipe": "png",
    "jpeg_pipe": "jpeg",
}

# Leading bytes of text formats that point ffmpeg at other files or URLs. Only used to word
# the refusal; the whitelist is what actually stops them.
REFERENCE_LIST_MAGIC: tuple[bytes, ...] = (
    b"#EXTM3U", b"#EXTINF", b"ffconcat", b"[playlist]", b"<?xml", b"<MPD", b"v=0", b"file ", b"file'",
)


def whitelist(formats: tuple[str, ...]) -> str:
    return ",".join(formats)
