"""Messages for people: an English template (the msgid) and its values.

Everything the add-on says to a user is a ``Message``: the core raises errors
that carry one, workers put one in their updates, and only the place that
shows it (a panel, a report) translates it, the way Blender's own code does
``iface_("Cannot reach {}").format(host)``. ``str(message)`` is the English
text, for the log, the journal, diagnostics and the command line.

How to add one (the test in ``tests/test_translations.py`` checks both steps):

1. Write it where it happens, with ``msg``: the template a literal, each
   value a keyword: ``msg("Cannot reach {host}: retry", host=host)``. A table
   of templates marks each entry with ``N_`` and fills it with ``msg(table[key], ...)``.
2. Add the template and its Chinese to ``translations.MESSAGES``.

A value is text (shown as it is: a host, a file name, the server's own words),
a number, or another ``Message`` (translated too). Nothing here imports ``bpy``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Union

from .logs import clean_text, redact

# Blender's default translation context, and ours: a word Blender's own
# catalogue already translates another way ("Starting" is 未完善 there) is
# looked up in ours, where only our entry answers.
DEFAULT_CONTEXT = "*"
OWN_CONTEXT = "Hitem3D"

# The longest text from outside a message carries (the server's words, an old
# journal's text); our own messages are one sentence.
MAX_OUTSIDE_CHARS = 500

Value = Union[str, int, float, "Message"]
# (msgid, context) -> the text to show; the identity gives English.
Lookup = Callable[[str, str], str]


def _english(msgid: str, context: str) -> str:
    return msgid


def N_(template: str) -> str:  # noqa: N802 (the name Blender and gettext use for it)
    """Marks a template kept in a table for the translation check; returns it unchanged."""
    return template


class Message:
    """A template and its values; immutable, plain data, safe to pass between threads."""

    __slots__ = ("template", "values", "context")

    template: str
    values: tuple[tuple[str, Value], ...]
    context: str

    def __init__(self, template: str, values: Mapping[str, Value] | None = None,
                 context: str = DEFAULT_CONTEXT) -> None:
        object.__setattr__(self, "template", template)
        object.__setattr__(self, "values", tuple((values or {}).items()))
        object.__setattr__(self, "context", context)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a Message is immutable")

    def render(self, lookup: Lookup = _english) -> str:
        """The text, with each template (this one and those of values that are
        messages) taken through ``lookup``. A template without values is
        shown as it is, so text that holds braces (an old journal's) is safe."""
        text = lookup(self.template, self.context)
        if not self.values:
            return text
        return text.format(**{name: value.render(lookup) if isinstance(value, Message) else value
                              for name, value in self.values})

    def __str__(self) -> str:
        return self.render()

    def masked_text(self) -> str:
        """The English text for the log: each text value (what came from
        outside) masked by ``logs.redact``, the templates (ours) as they are."""
        if not self.values:
            return self.template
        return self.template.format(**{name: value.masked_text() if isinstance(value, Message)
                                       else redact(value) if isinstance(value, str) else value
                                       for name, value in self.values})

    def __repr__(self) -> str:
        return f"Message({self.template!r}, {dict(self.values)!r})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Message) and self.template == other.template
                and self.values == other.values and self.context == other.context)

    def __hash__(self) -> int:
        return hash((self.template, self.values, self.context))

    def __bool__(self) -> bool:
        return bool(self.template)

    # -- the journal's form -----------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {"template": self.template, "context": self.context,
                "values": {name: value.to_dict() if isinstance(value, Message) else value
                           for name, value in self.values}}

    @classmethod
    def from_dict(cls, data: object, depth: int = 0) -> Message:
        """A message from its saved form. Raises ``ValueError`` for anything
        that is not one (the journal is input: checked, never trusted)."""
        if depth > 4 or not isinstance(data, dict):
            raise ValueError("not a message")
        template, context, values = data.get("template"), data.get("context", DEFAULT_CONTEXT), data.get("values", {})
        if not isinstance(template, str) or not isinstance(context, str) or not isinstance(values, dict):
            raise ValueError("not a message")
        checked: dict[str, Value] = {}
        for name, value in values.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError("not a message")
            if isinstance(value, dict):
                checked[name] = cls.from_dict(value, depth + 1)
            elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
                checked[name] = value
            else:
                raise ValueError("not a message")
        message = cls(template, checked, context)
        try:
            message.render()  # every placeholder has its value
        except (KeyError, IndexError, ValueError, AttributeError):
            raise ValueError("not a message") from None
        return message


NONE = Message("")


def msg(template: str, /, **values: Value) -> Message:
    """A message from its English template and values (see the module's
    docstring). The template must be a literal or an ``N_`` table entry."""
    return Message(template, values)


def msg_own(template: str, /, **values: Value) -> Message:
    """Like ``msg``, looked up in our own translation context: for words
    Blender's catalogue translates another way (see ``translations.SHADOWED``)."""
    return Message(template, values, OWN_CONTEXT)


def verbatim(text: str) -> Message:
    """Text that is already a finished message (from an old journal, or the
    server's own words): text from outside, so made one clean, redacted line
    here (``logs.clean_text``), then shown as it is, translated only when the
    whole text is a catalogue entry. Our own templates (``msg``) are never
    masked: a secret can only be in a value."""
    return Message(clean_text(text, MAX_OUTSIDE_CHARS))


# NOTE: a list is one template per length, so a translation can put its own
# separators and its own word for "or" between the items.
_ALTERNATIVES = ("{a}", N_("{a} or {b}"), N_("{a}, {b} or {c}"), N_("{a}, {b}, {c} or {d}"))
_LISTS = ("{a}", N_("{a}, {b}"), N_("{a}, {b}, {c}"), N_("{a}, {b}, {c}, {d}"))


def _join(templates: tuple[str, ...], items: list[Value]) -> Value:
    if len(items) == 1:
        return items[0]
    if not 1 < len(items) <= len(templates):
        raise ValueError(f"{len(items)} items: lists hold 1 to {len(templates)}")
    return msg(templates[len(items) - 1], **dict(zip("abcd", items)))


def one_of(items: list[Value]) -> Value:
    """``a``, ``a or b``, ``a, b or c``: choices, for a message."""
    return _join(_ALTERNATIVES, items)


def listing(items: list[Value]) -> Value:
    """``a``, ``a, b``, ``a, b, c``: several things, for a message."""
    return _join(_LISTS, items)
