"""What text from a client may hold: valid Unicode and no control characters.

PostgreSQL refuses a NUL character in `text` and `jsonb`, no database driver can encode a lone
surrogate (JSON's `"\\ud800"` decodes to one in Python), and control characters in names,
emails and identifiers only ever serve to confuse logs and the people reading them. So every
text a request carries is held to this one rule before any of it is used; the API applies it
at its edge (`pixelfleet.api.request_text`), and the places that decode JSON nested inside a
field (a cursor, a pipeline sent as a form field, a webhook's body) apply it to what they decode.

Multi-line text (a JSON string, a form field's value) may hold tab, line feed and carriage
return; a field that takes one line refuses those through its own pattern. A name, a key, a
query or path parameter and a header value take no control character at all.
"""

from __future__ import annotations

import re
from typing import Any

from pixelfleet.errors import FieldError, InvalidInput

# C0 controls and lone surrogates (a valid surrogate pair is decoded to one code point).
_UNSAFE_IN_ONE_LINE = re.compile("[\x00-\x1f\ud800-\udfff]")
_UNSAFE_IN_LINES = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


class UnsafeText(InvalidInput):
    """A 422 `validation-error` naming the field whose text breaks the rule above."""

    def __init__(self, problem: FieldError) -> None:
        super().__init__(
            f"The field `{problem.field}` {problem.message}.",
            errors=[problem],
        )


def problem_with(text: str, *, multiline: bool = False) -> str | None:
    """What is wrong with the text, or None when it follows the rule."""
    found = (_UNSAFE_IN_LINES if multiline else _UNSAFE_IN_ONE_LINE).search(text)
    if found is None:
        return None
    code_point = ord(found.group())
    if 0xD800 <= code_point <= 0xDFFF:
        return f"is not valid Unicode: it holds a lone surrogate (U+{code_point:04X})"
    if code_point == 0:
        return "must not contain a NUL character (U+0000)"
    return f"must not contain control characters (U+{code_point:04X})"


def problem_with_bytes(raw: bytes, *, multiline: bool = False) -> str | None:
    """The same rule for bytes that should be UTF-8 text (a percent-decoded query value)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "is not valid UTF-8"
    return problem_with(text, multiline=multiline)


def printable(name: str) -> str:
    """A name as a problem document may quote it: a NUL or a lone surrogate cannot be echoed
    back (the answer itself could not be encoded), so they are written as escapes."""
    if problem_with(name) is None:
        return name
    return ascii(name)[1:-1]  # `k\x00`, `\ud800`


def joined(path: str, key: str | int) -> str:
    """`pipeline` + `operations` → `pipeline.operations`; an empty path is the document."""
    return f"{path}.{key}" if path else str(key)


def problem_in_json(document: Any, path: str) -> FieldError | None:
    """The first string (or object key) in a decoded JSON document that breaks the rule, named
    by its dotted path under `path` (`pipeline.operations.0.text`)."""
    pending: list[tuple[str, Any]] = [(path, document)]
    while pending:  # a loop, not recursion: json.loads takes documents nested as deep as ours
        where, value = pending.pop()
        if isinstance(value, str):
            problem = problem_with(value, multiline=True)
            if problem is not None:
                return FieldError(where or "body", problem)
        elif isinstance(value, dict):
            for key, item in value.items():
                named = joined(where, printable(key))
                problem = problem_with(key)
                if problem is not None:
                    return FieldError(named, f"is a key that {problem}")
                pending.append((named, item))
        elif isinstance(value, list):
            pending.extend((joined(where, index), item) for index, item in enumerate(value))
    return None


def refuse_unsafe_json(document: Any, path: str) -> None:
    """Raises `UnsafeText` when a string of the decoded JSON document breaks the rule."""
    problem = problem_in_json(document, path)
    if problem is not None:
        raise UnsafeText(problem)
