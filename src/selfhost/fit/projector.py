"""A vision projector (`--mmproj`): the image encoder llama.cpp's mtmd loads beside the language model.

Weights: the projector GGUF's tensor bytes, exact (clip_model_loader logs them as "model size"). Compute: its graph is
reserved at startup for the largest image (clip's warmup): the image itself, 3 × image_size² f32 (from its source),
plus rows per patch that were fitted on the zoo's small SmolVLM projector (1.5 × the encoder's FFN width, f32) and held
out on its published width (exact) and on Gemma 3's projector (within ±10 %: benchmarks/RESULTS.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from selfhost.errors import SelfhostError, UsageError

__all__ = ["ProjectorPlan", "projector_plan"]

F32 = 4
FFN_ROWS_PER_PATCH = 1.5  # fitted: SmolVLM-256M's projector at the zoo's small width


@dataclass(frozen=True)
class ProjectorPlan:
    path: Path
    projector_type: str
    weights_bytes: int
    compute_bytes: int
    patches: int


def projector_plan(path: Path) -> ProjectorPlan:
    """Read once per file version: fit's solver plans many contexts and quantizations for one projector."""
    try:
        st = path.stat()
    except OSError as e:
        raise UsageError(
            f"--mmproj {path}: {e.strerror}", "pass the mmproj-*.gguf file that ships with the model"
        ) from e
    return _projector_plan(path, st.st_mtime_ns, st.st_size)


@cache
def _projector_plan(path: Path, mtime_ns: int, size: int) -> ProjectorPlan:
    from selfhost.models.gguf_file import read_gguf

    try:
        g = read_gguf(path)
    except SelfhostError as e:
        raise UsageError(
            f"--mmproj {path}: {e.message}", "pass the mmproj-*.gguf file that ships with the model"
        ) from e
    if not g.get("clip.has_vision_encoder"):
        raise UsageError(
            f"{path} is not a vision projector (no clip.has_vision_encoder key)",
            "pass the mmproj-*.gguf file that ships with the model",
        )
    image = int(g.get("clip.vision.image_size") or 0)
    patch = int(g.get("clip.vision.patch_size") or 0)
    ffn = int(g.get("clip.vision.feed_forward_length") or 0)
    if not (image and patch and ffn):
        raise UsageError(f"{path} lacks the encoder's image size, patch size or FFN width", "re-convert the projector")
    patches = (image // patch) ** 2
    compute = 3 * image * image * F32 + int(patches * FFN_ROWS_PER_PATCH * ffn) * F32
    return ProjectorPlan(
        path=path,
        projector_type=str(g.get("clip.projector_type") or "unknown"),
        weights_bytes=sum(t.n_bytes for t in g.tensors),
        compute_bytes=compute,
        patches=patches,
    )
