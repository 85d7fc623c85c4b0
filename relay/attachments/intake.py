"""What happens to an uploaded file before anyone sees it: its kind is judged from its
bytes (kinds.py), an image is re-encoded without its metadata (images.py), and what
remains is kept as a blob (blobs.py). Blocking work: callers run it in a thread."""

from __future__ import annotations

from pathlib import Path

from relay.attachments.blobs import LocalBlobs
from relay.attachments.images import reencode
from relay.attachments.kinds import ALLOWED, Kind, Refused, judge
from relay.errors import UnprocessableRequest, UnsupportedType


def take(path: Path, blobs: LocalBlobs, allowed: frozenset[str] = ALLOWED) -> tuple[Kind, str, int]:
    """(kind, digest, size) of what was kept; `path` is consumed. UnsupportedType for a
    kind not `allowed` (the relay's, or a site's narrower list), UnprocessableRequest for
    an image it cannot read."""
    try:
        kind = judge(path, allowed=allowed)
        if kind.image:
            safe = blobs.new_scratch()
            try:
                kind = reencode(path, safe, kind)
            except BaseException:
                safe.unlink(missing_ok=True)
                raise
            path.unlink()
            path = safe
    except Refused as refused:
        path.unlink(missing_ok=True)
        if refused.reason == "type":
            raise UnsupportedType(str(refused), reason="type") from None
        raise UnprocessableRequest(str(refused), reason=refused.reason) from None
    digest, size = blobs.keep(path)
    return kind, digest, size
