"""A C CRC32C for TensorBoard's event writer.

Without TensorFlow, ``tensorboard`` checksums every record with a pure-Python CRC32C (about
115 ms per MB here), which made writing an image to TensorBoard several times slower than
writing the same PNG. ``google-crc32c`` computes the same function in C. The replacement is
checked against TensorBoard's own implementation before it is installed, so the files stay
byte-identical and any reader (which verifies the checksums) accepts them.
"""

from __future__ import annotations

import functools

_PROBE = b"vizcli checks that both CRC32C implementations agree \x00\xff" * 3


def _masked(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


@functools.cache
def install() -> bool:
    """Point TensorBoard's record writer at the C CRC32C; False if it is unavailable."""
    try:
        import google_crc32c
    except ImportError:
        return False
    if google_crc32c.implementation != "c":
        return False
    from tensorboard.compat.tensorflow_stub import pywrap_tensorflow
    from tensorboard.summary.writer import record_writer

    def masked_crc32c(data: bytes) -> int:
        return _masked(google_crc32c.value(bytes(data)))

    if masked_crc32c(_PROBE) != pywrap_tensorflow.masked_crc32c(_PROBE):
        return False
    record_writer.masked_crc32c = masked_crc32c
    return True
