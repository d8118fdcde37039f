"""An LLM's answer made sayable: what a text-to-speech voice reads out must be plain spoken sentences.

Models write for a screen even when asked not to (a small one most of all): markdown, lists, line
breaks, a letter's "Dear ..." and "Best regards,\\nAlex", template blanks such as "[address]", and, cut
off at max_tokens, half a word. A voice reads every one of them aloud. So each answer is shaped before
it is spoken and recorded: markup goes, lines become sentences, a sentence with a blank in it is left
out, a cut-off answer ends at its last complete sentence, and a long one at the sentence that reaches the
spoken-length cap. What is left may be nothing; the caller then hears the fallback line (the responder's
business). Each change is named (`Spoken.shaped`) so that the metrics can count them.

It runs on every answer: a plain short answer, the common case, is recognised by one regular expression
and returned untouched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

# Why an answer differs from what the model wrote: the `reason` label of callmemory_answers_shaped.
MARKDOWN: Final = "markdown"  # emphasis, headers, code, links, quotes, tables, HTML tags
LIST: Final = "list"  # bullet or numbered list items, each now a sentence
NEWLINES: Final = "newlines"  # lines joined into sentences
EMOJI: Final = "emoji"
SALUTATION: Final = "salutation"  # a letter's "Dear ...,"
SIGNOFF: Final = "signoff"  # a letter's "Best regards, Alex"
PLACEHOLDER: Final = "placeholder"  # a sentence with a template blank in it, left out
CUT_AT_SENTENCE: Final = "cut_at_sentence"  # the model ran out of tokens: its unfinished sentence left out
CAPPED: Final = "capped"  # longer than the spoken-length cap: cut at a sentence boundary
REASONS: Final = (
    MARKDOWN,
    LIST,
    NEWLINES,
    EMOJI,
    SALUTATION,
    SIGNOFF,
    PLACEHOLDER,
    CUT_AT_SENTENCE,
    CAPPED,
)


@dataclass(frozen=True, slots=True)
class Spoken:
    text: str  # "" when nothing sayable is left
    shaped: frozenset[str] = frozenset()  # REASONS that applied; empty: spoken as the model wrote it


# Written as escapes: "\u2026" the ellipsis, "\u2013\u2014" en and em dash, "\u2019\u201d" closing quotes.
_CLOSERS: Final = "\"'\u2019\u201d)\\]"
_EMOJI: Final = "\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\ufe0f\u200d"
_CLOSINGS: Final = (
    r"(?:best|kind|kindest|warm|warmest)\s+regards|regards|sincerely(?:\s+yours)?|yours\s+(?:truly|"
    r"sincerely|faithfully)|respectfully(?:\s+yours)?|cordially|best\s+wishes"
)
# Anything the full pass could change: an answer with none of it is spoken as written, at once. The words
# are looked for as plain substrings, several times cheaper than a case-blind regular expression.
_SUSPECT: Final = re.compile(rf"[\n*_#`\[\]{{}}<>|~{_EMOJI}]")
_SUSPECT_WORDS: Final = (
    "xxx",
    "dear",
    "regards",
    "sincerely",
    "yours",
    "respectfully",
    "cordially",
    "wishes",
)

_FENCE: Final = re.compile(r"^\s*(?:```|~~~)")
_RULE: Final = re.compile(r"^\s*(?:[-*_]\s*){3,}$")
_TABLE: Final = re.compile(r"^\s*\|.*\|\s*$")
_HEADER: Final = re.compile(r"^\s*#{1,6}\s+")
_QUOTE: Final = re.compile(r"^\s*>\s?")
_ITEM: Final = re.compile(r"^\s*(?:[-*+\u2022\u25aa\u2023\u25e6]|\d{1,3}[.)])\s+(?:\[[ xX]\]\s+)?")
_HTML_TAG: Final = re.compile(
    r"</?(?:a|b|i|u|s|em|strong|br|p|span|div|code|pre|ul|ol|li|h[1-6])\b[^<>]*>", re.IGNORECASE
)
_INLINE: Final = (
    (re.compile(r"!?\[([^\]\n]*)\]\([^)\n]*\)"), r"\1"),  # [text](url), ![alt](src)
    (re.compile(r"`+([^`\n]*)`+"), r"\1"),
    # Emphasis around words; a run of underscores alone is a blank to fill in (a placeholder), kept.
    (re.compile(r"(\*\*|__)(?=[^\s*_])(.+?)(?<=[^\s*_])\1"), r"\2"),
    (re.compile(r"(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])"), r"\1"),
    (re.compile(r"(?<![\w_])_(?=[^\s_])(.+?)(?<=[^\s_])_(?![\w_])"), r"\1"),
    (re.compile(r"~~(.+?)~~"), r"\1"),
    (re.compile(r"\*+"), ""),  # what is left of emphasis cut in half
)
_EMOJIS: Final = re.compile(f"[{_EMOJI}]+")
_MARKUP: Final = re.compile(f"[*_`\\[<~{_EMOJI}]")

_PLACEHOLDER: Final = re.compile(
    r"\[[^\]\n]{1,40}\]"  # [address], [Your Name]
    r"|\{\{?[^{}\n]{1,40}\}\}?"  # {name}, {{name}}
    r"|<[^<>\n]{1,40}>"  # <name>; markup tags are gone by now
    r"|\b[Xx]{3,}\b"  # XXX, XXXX-XXXX
    r"|_{3,}"  # ____, a blank to fill in
)
_SALUTATION: Final = re.compile(r"^dear\b[^,:!.?\n]{0,40}[,:!]?\s*", re.IGNORECASE)
_NAME_CHARS: Final = 40  # a name, a title or a company under a closing
_NAME_LINES: Final = 3
# A letter's closing, alone or with the name after a comma: "Best regards", "Sincerely, Alex".
_CLOSING: Final = re.compile(
    rf"^(?:{_CLOSINGS})\s*(?:[,!.]?$|[,\u2013\u2014-]\s*[^.!?]{{1,{_NAME_CHARS}}}\.?$)", re.IGNORECASE
)
# Words that close a letter only when a name follows: "Thanks!" is said, "Thanks,\nAlex" is not.
_CASUAL_CLOSING: Final = re.compile(
    r"^(?:thanks|many\s+thanks|thank\s+you|cheers|best|all\s+the\s+best|take\s+care)\s*,$", re.IGNORECASE
)

# A sentence ends at . ! ? or an ellipsis, perhaps inside a closing quote or bracket, before a space.
_END: Final = re.compile(rf"(?:[.!?]+|\u2026)[{_CLOSERS}]*(?=\s|$)")
_ENDED: Final = re.compile(rf"(?:[.!?]+|\u2026)[{_CLOSERS}]*$")
_WORD_BEFORE: Final = re.compile(r"(\S+)$")
_ABBREVIATIONS: Final = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "e.g", "i.e", "approx", "apt", "ave"}
)
_CLAUSE_BREAK: Final = re.compile(r"[,;:](?=\s)|\s[\u2013\u2014-]\s")
_SPACE_BEFORE_STOP: Final = re.compile(r"\s+([.,!?;:])(?=\s|$)")
_SAYABLE: Final = re.compile(r"\w")


def speakable(text: str, *, cut_off: bool, max_chars: int) -> Spoken:
    """`text` as a voice should say it: plain sentences, at most `max_chars` long.

    `cut_off`: the model stopped at its token limit (`finish_reason == "length"`), so its last sentence
    is unfinished and is left out.
    """
    text = text.strip()
    if not cut_off and len(text) <= max_chars and not _suspect(text):
        return Spoken(text)
    shaped: set[str] = set()
    if cut_off:
        text = _finished(text, shaped)
    lines = _without_letter_form(_lines(text, shaped), shaped)
    found = sentences(_joined(lines, shaped))
    kept = [s for s in found if not _PLACEHOLDER.search(s)]
    if len(kept) < len(found):
        shaped.add(PLACEHOLDER)
    if kept and _CLOSING.match(kept[-1]):
        kept.pop()  # a closing run on at the end of the text: "... Hope this helps. Best regards, Alex"
        shaped.add(SIGNOFF)
    said = _capped(kept, max_chars, shaped)
    return Spoken(said if _SAYABLE.search(said) else "", frozenset(shaped))


def _suspect(text: str) -> bool:
    if _SUSPECT.search(text):
        return True
    lowered = text.lower()
    return any(word in lowered for word in _SUSPECT_WORDS)


def _finished(text: str, shaped: set[str]) -> str:
    """The text up to the end of its last complete sentence. A line ended before the last one is
    complete: a list item or a header needs no full stop."""
    head, _, last = text.rpartition("\n")
    marker = _ITEM.match(last)
    start = marker.end() if marker else 0
    found = sentences(last[start:])
    if found and not _ENDED.search(found[-1]):
        found.pop()
        shaped.add(CUT_AT_SENTENCE)
    kept = last[:start] + " ".join(found) if found else ""
    return f"{head}\n{kept}" if head else kept


@dataclass(frozen=True, slots=True)
class _Line:
    text: str
    unit: bool  # a list item or a header: a sentence of its own even without a full stop


def _lines(text: str, shaped: set[str]) -> list[_Line]:
    """The text's non-blank lines with their markup removed."""
    lines: list[_Line] = []
    in_code = False
    for raw in text.splitlines():
        if not raw or raw.isspace():
            continue
        if _FENCE.match(raw):
            in_code = not in_code
            shaped.add(MARKDOWN)
            continue
        if in_code or _RULE.match(raw) or _TABLE.match(raw):
            shaped.add(MARKDOWN)  # code and tables are not sayable, and a rule says nothing
            continue
        line, unit = raw, False
        if (quote := _QUOTE.match(line)) is not None:
            line = line[quote.end() :]
            shaped.add(MARKDOWN)
        if (header := _HEADER.match(line)) is not None:
            line, unit = line[header.end() :], True
            shaped.add(MARKDOWN)
        if (item := _ITEM.match(line)) is not None:
            line, unit = line[item.end() :], True
            shaped.add(LIST)
        if line := _inline(line, shaped).strip():
            lines.append(_Line(line, unit))
    return lines


def _inline(line: str, shaped: set[str]) -> str:
    if not _MARKUP.search(line):
        return line  # most lines: the substitutions below would all find nothing
    plain = _HTML_TAG.sub(" ", line)
    for pattern, replacement in _INLINE:
        plain = pattern.sub(replacement, plain)
    if plain != line:
        shaped.add(MARKDOWN)
    if (without := _EMOJIS.sub("", plain)) != plain:
        shaped.add(EMOJI)
    return without


def _without_letter_form(lines: list[_Line], shaped: set[str]) -> list[_Line]:
    """The lines without a letter's salutation and closing (with the name lines under the closing)."""
    if lines and (found := _SALUTATION.match(lines[0].text)) is not None:
        rest = lines[0].text[found.end() :]
        lines = [_Line(rest, lines[0].unit), *lines[1:]] if rest else lines[1:]
        shaped.add(SALUTATION)
    for at in range(len(lines) - 1, max(len(lines) - 2 - _NAME_LINES, -1), -1):
        closing, names = lines[at].text, lines[at + 1 :]
        if any(len(n.text) > _NAME_CHARS for n in names):
            break
        if _CLOSING.match(closing) or (names and _CASUAL_CLOSING.match(closing)):
            shaped.add(SIGNOFF)
            return lines[:at]
    return lines


def _joined(lines: list[_Line], shaped: set[str]) -> str:
    """The lines as one line of sentences. A line that ends without a full stop gets one, unless it is
    the last or the next line goes on with its sentence (a line wrapped mid-sentence)."""
    if len(lines) > 1:
        shaped.add(NEWLINES)
    parts = []
    for line, after in zip(lines, [*lines[1:], None], strict=False):
        goes_on = after is None or (not (line.unit or after.unit) and after.text[:1].islower())
        parts.append(line.text if goes_on else _stopped(line.text))
    # Spaces collapsed, and none left before a stop where markup or an emoji was taken out.
    return _SPACE_BEFORE_STOP.sub(r"\1", " ".join(" ".join(parts).split()))


def _stopped(text: str) -> str:
    """`text` ending as a sentence does."""
    return text if _ENDED.search(text) else text.rstrip(" ,;:-\u2013\u2014") + "."


def sentences(text: str) -> list[str]:
    """`text`'s sentences, split where a voice would pause for a full stop (not after "Dr." or "J.")."""
    sentences: list[str] = []
    start = 0
    for end in _END.finditer(text):
        if end.group().startswith(".") and _abbreviated(text[max(start, end.start() - 12) : end.start()]):
            continue
        if sentence := text[start : end.end()].strip():
            sentences.append(sentence)
        start = end.end()
    if rest := text[start:].strip():
        sentences.append(rest)
    return sentences


def _abbreviated(before: str) -> bool:
    """Whether a full stop after `before` ends an abbreviation ("Dr.", "e.g.") or an initial ("J.")."""
    if (word := _WORD_BEFORE.search(before)) is None:
        return False
    found = word.group(1)
    return found.lower() in _ABBREVIATIONS or (len(found) == 1 and found.isupper())


def _capped(sentences: list[str], max_chars: int, shaped: set[str]) -> str:
    """As many whole sentences as fit in `max_chars`. A first sentence longer than that on its own is cut
    at its last clause break (a comma, a dash) within the cap, else after its last whole word."""
    said = ""
    for sentence in sentences:
        longer = f"{said} {sentence}" if said else sentence
        if len(longer) > max_chars:
            shaped.add(CAPPED)
            return said or _clause_of(sentence, max_chars)
        said = longer
    return said


def _clause_of(sentence: str, max_chars: int) -> str:
    head = sentence[: max_chars - 1]  # room for the full stop
    breaks = [b.start() for b in _CLAUSE_BREAK.finditer(head) if b.start() >= max_chars // 3]
    cut = breaks[-1] if breaks else head.rfind(" ")
    return _stopped(head[:cut] if cut > 0 else head)
