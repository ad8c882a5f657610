"""Base64 of an in-memory buffer (the original's ``riffusion.util.base64_util``)."""

import base64
import io


def encode(buffer: io.BytesIO) -> str:
    """Base64 text of the whole buffer's contents (no newlines)."""
    return base64.b64encode(buffer.getvalue()).decode("ascii")
