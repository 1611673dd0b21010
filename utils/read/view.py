"""What a notebook puts in view besides runs: the course's own code, exactly as the engine runs it (``show_source``
prints the very function, so the text cannot drift from the code), and a Keras model's summary as plain text."""

from __future__ import annotations

import inspect
import re
import textwrap


def source(*objects) -> str:
    """The source of functions, methods or classes as one Python code block (Markdown),
    exactly as the engine runs it."""
    parts = []
    for obj in objects:
        text = textwrap.dedent(inspect.getsource(obj))
        parts.append(text.rstrip())
    body = "\n\n".join(parts)
    return f"```python\n{body}\n```"


def show_source(*objects):
    """Display ``source(*objects)`` highlighted in a notebook (plain text elsewhere)."""
    from IPython.display import Markdown, display

    display(Markdown(source(*objects)))


def plain_summary(model, line_length: int = 90) -> None:
    """model.summary() as plain text: Keras 3 prints it through rich, whose colour codes show as garbage in a plain
    text output (GitHub, a terminal log)."""
    ansi = re.compile(r"\x1b\[[0-9;]*m")
    model.summary(line_length=line_length, print_fn=lambda text, **_: print(ansi.sub("", text), end=""))
