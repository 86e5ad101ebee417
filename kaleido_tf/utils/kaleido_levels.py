"""The five kaleido levels: the one place that names them, sizes them and spells their keys.

An image is cut into 1x1, 2x2, 3x3, 4x4 and 5x5 grids; level k holds k*k patches and the five levels,
in this order, make the 55 patches that follow the text in the model's sequence. Slot `s` of the 55 is
`LEVEL_OFFSETS[k - 1] + i` for cell i (row by row) of level k.

| level | name       | schema suffix | grid | patches | offset |
|-------|------------|---------------|------|---------|--------|
| 1     | rotation   | rotation      | 1x1  | 1       | 0      |
| 2     | jigsaw     | jigsaw        | 2x2  | 4       | 1      |
| 3     | camouflage | camouflage    | 3x3  | 9       | 5      |
| 4     | greymask   | grey_mask     | 4x4  | 16      | 14     |
| 5     | blankmask  | blank_mask    | 5x5  | 25      | 30     |

Two spellings, both fixed by the released model: the level *name* is the one of the `config.json` keys
(`img_<name>_seq_len`), of the checkpoint scopes (`bert/<name>_embeddings`) and of the optional segment
inputs (`img_feature_<name>_segment`); the *schema suffix* is the one of the input schema's fields
(`img_feature_convert_<suffix>`, `img_loc_position_<suffix>`). Every patch has POSITION_SIZE position numbers
[x1, x2, y1, y2, w*h].
"""

import itertools

LEVEL_NAMES = ("rotation", "jigsaw", "camouflage", "greymask", "blankmask")
LEVEL_SUFFIXES = ("rotation", "jigsaw", "camouflage", "grey_mask", "blank_mask")
LEVELS = tuple(zip(LEVEL_NAMES, LEVEL_SUFFIXES))  # ((name, schema suffix), ...) in sequence order
LEVEL_GRIDS = (1, 2, 3, 4, 5)  # level k is a k x k grid
LEVEL_SIZES = tuple(n * n for n in LEVEL_GRIDS)  # (1, 4, 9, 16, 25)
LEVEL_OFFSETS = tuple(itertools.accumulate(LEVEL_SIZES[:-1], initial=0))  # (0, 1, 5, 14, 30)
NUM_PATCHES = sum(LEVEL_SIZES)  # 55
POSITION_SIZE = 5  # [x1, x2, y1, y2, w*h] per patch

# Key templates: the schema fields take the suffix, the segment input and the config key the name.
FEATURE_KEY = "img_feature_convert_{}"
POSITION_KEY = "img_loc_position_{}"
SEGMENT_KEY = "img_feature_{}_segment"
SEQ_LEN_KEY = "img_{}_seq_len"
POSITION_PREFIX = POSITION_KEY.format("")

_SUFFIX_OF = dict(LEVELS)


def _suffix(level):
    try:
        return _SUFFIX_OF[level]
    except KeyError:
        raise ValueError(f"unknown kaleido level {level!r}; levels: {', '.join(LEVEL_NAMES)}") from None


def feature_key(level):
    """The input field of level `level`'s patch features, e.g. "greymask" -> "img_feature_convert_grey_mask"."""
    return FEATURE_KEY.format(_suffix(level))


def position_key(level):
    """The input field of level `level`'s patch positions, e.g. "greymask" -> "img_loc_position_grey_mask"."""
    return POSITION_KEY.format(_suffix(level))


def segment_key(level):
    """The optional segment-id input of level `level`, e.g. "greymask" -> "img_feature_greymask_segment"."""
    _suffix(level)
    return SEGMENT_KEY.format(level)


def seq_len_key(level):
    """The `config.json` key of level `level`'s patch count, e.g. "greymask" -> "img_greymask_seq_len"."""
    _suffix(level)
    return SEQ_LEN_KEY.format(level)


FEATURE_KEYS = tuple(feature_key(name) for name in LEVEL_NAMES)
POSITION_KEYS = tuple(position_key(name) for name in LEVEL_NAMES)
SEGMENT_KEYS = tuple(segment_key(name) for name in LEVEL_NAMES)


def level_slots(level):
    """The slots of kaleido level `level` (1..5) among the 55 patches."""
    if level not in LEVEL_GRIDS:
        raise ValueError(f"kaleido level must be 1..5, got {level}")
    start = LEVEL_OFFSETS[level - 1]
    return range(start, start + LEVEL_SIZES[level - 1])
