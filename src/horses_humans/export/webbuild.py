"""The browser build's static site (`export --format web`): the page around model.onnx and ONNX Runtime Web's
WebAssembly files, copied from a local install, or else loaded from the pinned CDN.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from ..config import HorsesHumansError

logger = logging.getLogger(__name__)  # progress lines; the CLI sends them to stderr

STATIC = Path(__file__).parent.parent / "static"
PAGE_FILES = ("page.css", "cards.js", "pixels.js")  # shared with the server's upload page (see static/)
ENV_ORT_WEB = "HORSES_HUMANS_ORT_WEB"
ORT_WEB_VERSION = "1.30.0"  # as pinned in web/package.json
ORT_WEB_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
ORT_WEB_CDN = f"https://cdn.jsdelivr.net/npm/onnxruntime-web@{ORT_WEB_VERSION}/dist/"


def write_site(folder: Path, log=logger.info) -> None:
    """index.html, its scripts and style, and ONNX Runtime Web, beside the model.onnx in folder."""
    base = copy_ort_web(folder, log)
    (folder / "index.html").write_text((STATIC / "web.html").read_text().replace("{{ORT_BASE}}", base))
    for name in PAGE_FILES:
        shutil.copyfile(STATIC / name, folder / name)


def find_ort_web() -> Path | None:
    """ONNX Runtime Web's dist/ folder: $HORSES_HUMANS_ORT_WEB, else web/node_modules of this checkout (npm ci --prefix
    web).
    """
    if os.environ.get(ENV_ORT_WEB):
        return Path(os.environ[ENV_ORT_WEB]).expanduser()
    checkout = Path(__file__).resolve().parents[3] / "web" / "node_modules" / "onnxruntime-web" / "dist"
    return checkout if checkout.is_dir() else None


def copy_ort_web(folder: Path, log=logger.info) -> str:
    """Copy ONNX Runtime Web's WebAssembly build beside the page; returns the base URL the page loads it from."""
    dist = find_ort_web()
    if dist is None:
        log(
            f"note: ONNX Runtime Web not found locally (run `npm ci --prefix web` in a checkout, or set {ENV_ORT_WEB} "
            f"to its dist/ folder); the page will load it from {ORT_WEB_CDN}, which needs internet"
        )
        return ORT_WEB_CDN
    missing = [name for name in ORT_WEB_FILES if not (dist / name).is_file()]
    if missing:
        raise HorsesHumansError(
            f"{dist}: not an onnxruntime-web dist/ folder (missing {', '.join(missing)}); "
            f"point {ENV_ORT_WEB} at node_modules/onnxruntime-web/dist"
        )
    for name in ORT_WEB_FILES:
        shutil.copyfile(dist / name, folder / name)
    return "./"
