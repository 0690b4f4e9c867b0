"""Figures and images to files, with MLflow's rules (``mlflow/tracking/multimedia.py``).

numpy, Pillow, matplotlib and plotly are imported only when a value of theirs is
handed in: a figure is recognised only if its library is already in
``sys.modules``, so ``import evtrack`` (and a plotly-only environment) never loads
matplotlib. Every bad input is an :class:`InvalidParameterError` naming the
problem, never a traceback from deep inside a library.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
import warnings
from typing import Any

from evtrack.errors import InvalidParameterError

COMPRESSED_IMAGE_SIZE = 256
PLOTLY_IMAGE_EXTENSIONS = (".png", ".jpeg", ".webp", ".svg", ".pdf")
IMAGE_KEY = re.compile(r"^[a-zA-Z0-9_\-./ ]+$")
_ARRAY_KINDS = {"b": "bool", "i": "signed integer", "u": "unsigned integer", "f": "floating"}


# -- figures -----------------------------------------------------------------------------


def _is_matplotlib_figure(figure: Any) -> bool:
    if "matplotlib" not in sys.modules:
        return False
    import matplotlib.figure

    return isinstance(figure, matplotlib.figure.Figure)


def _is_plotly_figure(figure: Any) -> bool:
    if "plotly" not in sys.modules:
        return False
    import plotly.graph_objects

    return isinstance(figure, plotly.graph_objects.Figure)


def save_figure(figure: Any, path: str, artifact_file: str, save_kwargs: dict[str, Any]) -> None:
    """Write a matplotlib figure (``savefig``) or a plotly figure (``write_html`` for .html,
    ``write_image`` for .png/.jpeg/.webp/.svg/.pdf, which needs kaleido) to ``path``."""
    if _is_matplotlib_figure(figure):
        try:
            figure.savefig(path, **save_kwargs)
        except (ValueError, TypeError) as exc:
            raise InvalidParameterError(f"Could not save the matplotlib figure as {artifact_file!r}: {exc}") from None
        return
    if not _is_plotly_figure(figure):
        raise InvalidParameterError(
            f"Unsupported figure object type: '{type(figure)}'. log_figure takes a matplotlib.figure.Figure"
            " or a plotly.graph_objects.Figure"
        )
    extension = os.path.splitext(artifact_file)[1]
    if extension == ".html":
        save_kwargs.setdefault("include_plotlyjs", "cdn")
        save_kwargs.setdefault("auto_open", False)
        try:
            figure.write_html(path, **save_kwargs)
        except (ValueError, TypeError) as exc:
            raise InvalidParameterError(f"Could not save the plotly figure as {artifact_file!r}: {exc}") from None
    elif extension in PLOTLY_IMAGE_EXTENSIONS:
        try:
            figure.write_image(path, **save_kwargs)
        except (ValueError, TypeError, RuntimeError, ImportError) as exc:
            detail = " ".join(str(exc).split())
            raise InvalidParameterError(
                f"Could not save the plotly figure as {artifact_file!r}: {detail} (plotly exports images"
                " only with the kaleido package; a .html file needs nothing more)"
            ) from None
    else:
        raise InvalidParameterError(
            f"Unsupported file extension for plotly figure: '{extension}'. Use .html, or one of"
            f" {', '.join(PLOTLY_IMAGE_EXTENSIONS)} with kaleido installed"
        )


# -- images ------------------------------------------------------------------------------


def _pil_image_module() -> Any:
    try:
        import PIL.Image
    except ImportError:
        raise InvalidParameterError("Logging an image needs Pillow: pip install Pillow") from None
    return PIL.Image


def to_pil_image(image: Any) -> Any:
    """A ``PIL.Image.Image`` from a numpy array, a PIL image or an ``mlflow.Image`` (anything
    with ``to_pil()``)."""
    if "numpy" in sys.modules:
        import numpy as np

        if isinstance(image, np.ndarray):
            return array_to_pil(image)
    if callable(getattr(image, "to_pil", None)):
        image = image.to_pil()
    pil = _pil_image_module()
    if not isinstance(image, pil.Image):
        raise InvalidParameterError(
            f"Unsupported image object type: {type(image)}. `image` must be one of numpy.ndarray,"
            " PIL.Image.Image, and mlflow.Image."
        )
    return image


def array_to_pil(array: Any) -> Any:
    """MLflow's numpy rules: bool, integers in [0, 255] or floats in [0, 1] (others min/max
    scaled with a warning); H x W, or H x W x 1, 3 (RGB) or 4 (RGBA)."""
    import numpy as np

    pil = _pil_image_module()
    if array.dtype.kind not in _ARRAY_KINDS:
        raise InvalidParameterError(
            f"Invalid array data type: '{array.dtype}'. Must be one of {list(_ARRAY_KINDS.values())}"
        )
    if array.ndim not in (2, 3):
        raise InvalidParameterError(
            f"`image` must be a 2D (H x W) or 3D (H x W x C) array but got image shape: {array.shape}"
        )
    if array.ndim == 3 and array.shape[2] not in (1, 3, 4):
        raise InvalidParameterError(
            f"Invalid channel length: {array.shape[2]} (image shape {array.shape}). Must be one of [1, 3, 4]"
        )
    if array.size == 0:
        raise InvalidParameterError(f"`image` is an empty array (shape {array.shape})")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]  # Image.fromarray takes grayscale as H x W only
    is_int = np.issubdtype(array.dtype, np.integer)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise InvalidParameterError("`image` holds NaN or infinite values; pixel values must be finite")
    low, high = array.min(), array.max()
    if low < 0 or high > (255 if is_int else 1):
        if is_int:
            raise InvalidParameterError(
                "Integer pixel values out of acceptable range [0, 255]. "
                f"Found minimum value {low} and maximum value {high}. "
                "Ensure all pixel values are within the specified range."
            )
        warnings.warn(
            "Float pixel values out of acceptable range [0.0, 1.0]. "
            f"Found minimum value {low} and maximum value {high}. "
            "Rescaling values to [0.0, 1.0] with min/max scaler.",
            stacklevel=4,
        )
        span = high - low
        array = (array - low) / span if span else np.zeros_like(array)
    if not is_int:
        array = array * 255
    return pil.fromarray(array.astype(np.uint8))


def compress_image_size(image: Any, max_size: int = COMPRESSED_IMAGE_SIZE) -> Any:
    """MLflow's thumbnail: the image scaled (up or down) so its longer side is ``max_size``."""
    width, height = image.size
    if width > height:
        size = (max_size, max(1, int(height * (max_size / width))))
    else:
        size = (max(1, int(width * (max_size / height))), max_size)
    return image.resize(size)


def save_image(image: Any, path: str, artifact_file: str) -> None:
    """Write a PIL image in the format its file name says."""
    try:
        image.save(path)
    except (ValueError, OSError, KeyError, TypeError) as exc:
        raise InvalidParameterError(
            f"Could not save the image ({image.mode}, {image.size[0]}x{image.size[1]}) as {artifact_file!r}: {exc}"
        ) from None


def image_file_base(key: Any, step: Any, timestamp: int) -> str:
    """MLflow's path of a step-keyed image, without extension:
    ``images/<key, '/' as '~'>+step+<step>+timestamp+<ms>+<uuid>``."""
    if not isinstance(key, str) or not IMAGE_KEY.match(key):
        raise InvalidParameterError(
            "The `key` parameter may only contain alphanumerics, underscores (_), dashes (-), periods (.),"
            f" spaces ( ), and slashes (/). The provided key `{key}` contains invalid characters."
        )
    for name, value in (("step", step), ("timestamp", timestamp)):
        if isinstance(value, bool) or not hasattr(value, "__index__"):
            raise InvalidParameterError(f"The image `{name}` must be an integer, got {value!r}")
    sanitized = key.replace("/", "~")
    return f"images/{sanitized}+step+{int(step)}+timestamp+{int(timestamp)}+{uuid.uuid4()}"
