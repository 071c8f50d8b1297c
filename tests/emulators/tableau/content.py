"""Workbook bytes: literal, read from a fixture file, or generated on the fly.

Generated content exists so a test can ask for a 100 MB workbook without sending 100 MB of
JSON, and so the emulator can stream it without ever holding it in memory.
"""

import base64
import hashlib
import os
import random

BLOCK = 1 << 20  # generated content is made (and streamed) one MiB block at a time
SPEC_KEYS = ("content", "text", "fixture", "generate")


class Content:
    """One immutable byte string, however it is stored."""

    def __init__(self, *, data=None, path=None, size=None, seed=None, pattern=None):
        self._data = data
        self._path = path
        self._seed = seed
        self._pattern = pattern
        if data is not None:
            self.size = len(data)
        elif path is not None:
            self.size = os.path.getsize(path)
        else:
            self.size = int(size)
        self._sha256 = None

    def kind(self):
        if self._data is not None:
            return "bytes"
        if self._path is not None:
            return "fixture"
        return "generated"

    def chunks(self, chunk_size=BLOCK):
        if self._data is not None:
            view = memoryview(self._data)
            for start in range(0, self.size, chunk_size):
                yield bytes(view[start : start + chunk_size])
        elif self._path is not None:
            with open(self._path, "rb") as f:
                while True:
                    piece = f.read(chunk_size)
                    if not piece:
                        return
                    yield piece
        else:
            # Blocks are whole BLOCKs regardless of chunk_size so that the bytes only depend
            # on (seed, size): a shorter generated workbook is a prefix of a longer one.
            for index in range(0, (self.size + BLOCK - 1) // BLOCK):
                yield self._block(index)[: self.size - index * BLOCK]

    def _block(self, index):
        if self._pattern is not None:
            pattern = self._pattern
            offset = (index * BLOCK) % len(pattern)
            repeated = pattern * (BLOCK // len(pattern) + 2)
            return repeated[offset : offset + BLOCK]
        return random.Random(f"{self._seed}:{index}").randbytes(BLOCK)

    def read(self):
        if self._data is not None:
            return self._data
        return b"".join(self.chunks())

    def sha256(self):
        if self._sha256 is None:
            digest = hashlib.sha256()
            for piece in self.chunks():
                digest.update(piece)
            self._sha256 = digest.hexdigest()
        return self._sha256

    def starts_with_zip_magic(self):
        for piece in self.chunks(4):
            return piece.startswith(b"PK\x03\x04")
        return False

    def describe(self):
        return {"kind": self.kind(), "bytes": self.size, "sha256": self.sha256()}


def from_spec(spec, fixtures_dir):
    """Content from a seed object holding one of content/text/fixture/generate, or None."""
    keys = [k for k in SPEC_KEYS if spec.get(k) is not None]
    if not keys:
        return None
    if len(keys) > 1:
        raise ValueError(f"give only one of content/text/fixture/generate, not {keys}")
    key = keys[0]
    if key == "content":
        return Content(data=base64.b64decode(spec["content"]))
    if key == "text":
        return Content(data=spec["text"].encode("utf-8"))
    if key == "fixture":
        name = os.path.basename(spec["fixture"])
        path = os.path.join(fixtures_dir, name)
        if not os.path.isfile(path):
            raise ValueError(f"fixture {name!r} not found in {fixtures_dir}")
        return Content(path=path)
    gen = spec["generate"]
    if "size" not in gen:
        raise ValueError("generate needs a size")
    pattern = gen.get("pattern")
    if pattern is not None:
        pattern = pattern.encode("utf-8")
        if not pattern:
            raise ValueError("generate.pattern must not be empty")
        return Content(size=gen["size"], pattern=pattern)
    return Content(size=gen["size"], seed=gen.get("seed", 0))
