"""User-controlled text made safe to show: no terminal escapes, no invisible reordering."""

from __future__ import annotations

# What a terminal or viewer would act on instead of showing: C0 controls (ESC starts colour and
# cursor sequences, CR overwrites the line, BEL rings), DEL, C1 controls (U+009B is a one-character
# CSI), and the bidi embeddings, overrides and isolates that make text display in another order
# than it reads (Trojan Source). Lone surrogates are escaped too: they cannot be encoded as UTF-8,
# so printing or writing them would raise.
_UNPRINTABLE = [
    *range(0x00, 0x20),
    0x7F,
    *range(0x80, 0xA0),
    *range(0x202A, 0x202F),
    *range(0x2066, 0x206A),
    *range(0xD800, 0xE000),
]
# The whitespace controls get their familiar short forms; the rest \xNN or \uNNNN.
_ESCAPES: dict[int, str] = {code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" for code in _UNPRINTABLE} | {
    ord("\t"): "\\t",
    ord("\n"): "\\n",
    ord("\r"): "\\r",
}


def printable(text: str, limit: int | None = None) -> str:
    """`text` with each control or bidi character replaced by a visible escape such as ``\\x1b``.

    With `limit`, at most that many characters of the result are kept (never half an escape),
    followed by an ellipsis and how many characters of `text` were cut.
    Backslashes already in `text` are left alone, so the result is for people, not for parsing.
    """
    escaped = text.translate(_ESCAPES)
    if limit is None or len(escaped) <= limit:
        return escaped
    kept: list[str] = []
    width = 0
    for char in text:
        piece = _ESCAPES.get(ord(char), char)
        if width + len(piece) > limit:
            break
        kept.append(piece)
        width += len(piece)
    cut = len(text) - len(kept)
    return "".join(kept) + f"… ({cut:,} more character{'' if cut == 1 else 's'})"
