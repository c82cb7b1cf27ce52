"""Image inputs: whatever the caller holds becomes the bytes of a JPEG/PNG/BMP/TIFF file.

The format is checked here, from the file's signature, so a wrong file fails at once with
``UnsupportedMedia`` instead of travelling to the server first.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeAlias

from nn_sdk._exceptions import InvalidArgument, LocalFileError, UnsupportedMedia

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

ImageInput: TypeAlias = (
    "str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes] | PILImage"
)
"""A path, the file's bytes, a binary file object or a ``PIL.Image.Image``."""

# File signatures (magic numbers) of the formats the server accepts.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
SUPPORTED_FORMATS = ("JPEG", "PNG", "BMP", "TIFF")


def image_format(data: bytes) -> str | None:
    """``"JPEG"``, ``"PNG"``, ``"BMP"`` or ``"TIFF"`` from the signature, else ``None``."""
    for signature, name in _SIGNATURES:
        if data.startswith(signature):
            return name
    return None


def image_bytes(image: ImageInput) -> bytes:
    """The encoded file for ``image``; raises ``UnsupportedMedia`` for any other format.

    A path is read (``LocalFileError`` if it cannot be); a file object is read from its
    current position; a PIL image is sent as PNG, losslessly.
    """
    data, name = _read(image)
    if image_format(data) is None:
        what = f"{name} is" if name else "the data is"
        raise UnsupportedMedia(
            f"{what} not a {', '.join(SUPPORTED_FORMATS[:-1])} or {SUPPORTED_FORMATS[-1]} image"
        )
    return data


def image_name(image: ImageInput) -> str | None:
    """A name for messages: the path or file name when there is one."""
    if isinstance(image, (str, os.PathLike)):
        return os.fspath(image)
    name = getattr(image, "name", None) or getattr(image, "filename", None)
    return str(name) if name else None


def _read(image: Any) -> tuple[bytes, str | None]:
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        try:
            return path.read_bytes(), str(path)
        except OSError as exc:
            raise LocalFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if isinstance(image, (bytes, bytearray, memoryview)):
        return bytes(image), None
    if _is_pil_image(image):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue(), image_name(image)
    read = getattr(image, "read", None)
    if callable(read):
        data = read()
        if not isinstance(data, (bytes, bytearray)):
            raise InvalidArgument("the file object must be opened in binary mode ('rb')")
        return bytes(data), image_name(image)
    raise InvalidArgument(
        f"cannot classify a {type(image).__name__}: give a path, bytes, a binary file "
        "object or a PIL image"
    )


def _is_pil_image(value: object) -> bool:
    try:
        from PIL.Image import Image
    except ImportError:  # Pillow is optional for the SDK: without it nobody holds one.
        return False
    return isinstance(value, Image)
