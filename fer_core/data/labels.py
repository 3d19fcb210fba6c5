"""The one canonical label order of the book (FER2013's), plus CK+'s extra ``contempt``."""
from __future__ import annotations

#: Canonical ids: FER2013's challenge order, then CK+'s contempt as an extra label.
EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "contempt")
FER2013_CLASSES: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)
#: CK+48 has no neutral: its seven classes, in canonical order.
CKPLUS_CLASSES: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 7)

#: Folder names of the public releases (FER2013 image folders, CK+48) and common spellings.
ALIASES: dict[str, int] = {
    "angry": 0, "anger": 0,
    "disgust": 1, "disgusted": 1,
    "fear": 2, "fearful": 2,
    "happy": 3, "happiness": 3,
    "sad": 4, "sadness": 4,
    "surprise": 5, "surprised": 5,
    "neutral": 6,
    "contempt": 7,
}


def label_of_folder(name: str) -> int | None:
    """Canonical id of a class folder name, or None when the name is unknown."""
    return ALIASES.get(name.strip().lower())
