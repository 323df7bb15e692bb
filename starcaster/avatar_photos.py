"""Real photos that ship inside installed registry packages (no download): the avatar's test faces.

Used by the avatar's report script, the domain score's fit and the tests. Each entry is a
name → RGB PIL image; a package that is missing simply contributes nothing.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from PIL import Image

# (name, package, path inside the package, crop box or None)
_FACES = (
    ("astronaut (scikit-image)", "skimage", "data/astronaut.png", None),
    ("Grace Hopper (matplotlib)", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg", None),
    ("Tom Hanks (insightface)", "insightface", "data/images/Tom_Hanks_54745.png", None),
    ("group photo, face 1 (insightface)", "insightface", "data/images/t1.jpg", (0, 179, 275, 494)),
    ("group photo, face 2 (insightface)", "insightface", "data/images/t1.jpg", (630, 261, 942, 573)),
    ("group photo, face 3 (insightface)", "insightface", "data/images/t1.jpg", (1010, 180, 1280, 492)),
    ("group photo, face 4 (insightface)", "insightface", "data/images/t1.jpg", (326, 174, 704, 552)),
)
_NON_FACES = (
    ("coffee", "skimage", "data/coffee.png"),
    ("chelsea the cat", "skimage", "data/chelsea.png"),
    ("rocket", "skimage", "data/rocket.jpg"),
    ("china", "sklearn", "datasets/images/china.jpg"),
    ("flower", "sklearn", "datasets/images/flower.jpg"),
    ("brick", "skimage", "data/brick.png"),
    ("grass", "skimage", "data/grass.png"),
    ("gravel", "skimage", "data/gravel.png"),
)
GROUP_PHOTO = ("insightface", "data/images/t1.jpg")  # six people: the "several faces" case


def package_file(package: str, relative: str) -> Path | None:
    """A data file inside an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    return path if path.is_file() else None


def _open(package: str, relative: str, box=None) -> Image.Image | None:
    path = package_file(package, relative)
    if path is None:
        return None
    image = Image.open(path).convert("RGB")
    return image.crop(box) if box else image


def real_face_photos() -> dict[str, Image.Image]:
    """Every real face photo available offline, one face each (group photo faces cropped)."""
    photos = {name: _open(package, path, box) for name, package, path, box in _FACES}
    return {name: image for name, image in photos.items() if image is not None}


def non_face_photos() -> dict[str, Image.Image]:
    """Real photos without faces (textures, objects, animals)."""
    photos = {name: _open(package, path) for name, package, path in _NON_FACES}
    return {name: image for name, image in photos.items() if image is not None}
