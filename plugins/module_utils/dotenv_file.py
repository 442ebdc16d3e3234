"""A .env file read the way Prisma's CLI reads it (dotenv, then dotenv-expand), shared by our modules and the
controller's filters. Ours, not python-dotenv: it runs on the app hosts, where nothing is installed for us."""

from __future__ import annotations

import re

NAME = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=[ \t]*")
# ${NAME}, ${NAME:-default} and $NAME, as dotenv-expand reads them (\$ is a literal dollar).
EXPAND = re.compile(r"(\\?)\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")
ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


def _quoted(text, start, quote):
    """The value quoted from text[start] (the quote) to its closing quote, and where it ends; None if unclosed."""
    out, i = [], start + 1
    while i < len(text):
        char = text[i]
        if char == quote:
            return "".join(out), i + 1
        if char == "\\" and quote == '"' and i + 1 < len(text) and text[i + 1] in ESCAPES:
            out.append(ESCAPES[text[i + 1]])
            i += 2
            continue
        out.append(char)
        i += 1
    return None


def _expand(value, values):
    """${NAME} and $NAME from the names before it in the file (Prisma's CLI: dotenv-expand)."""

    def one(match):
        if match.group(1):
            return match.group(0)[1:]
        name = match.group(2) or match.group(4)
        found = values.get(name, "")
        return found if found or match.group(3) is None else match.group(3)

    return EXPAND.sub(one, value).replace("\\$", "$")


def dotenv(text):
    """NAME=value lines: optional `export`, # comments, values in single quotes (literal), double quotes
    (escapes, and lines until the closing quote) or none (a ` #` ends it); ${NAME} expanded except in single
    quotes. A line that is none of these is skipped, as dotenv skips it."""
    values = {}
    pos = 0
    while pos < len(text):
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        match = NAME.match(text, pos, end)
        if not match or text[pos:end].lstrip().startswith("#"):
            pos = end + 1
            continue
        start = match.end()
        quote = text[start] if start < len(text) and text[start] in "'\"`" else None
        found = _quoted(text, start, quote) if quote else None
        if found is not None:
            value, after = found
            # The rest of its last line (a comment) is not the value.
            end = text.find("\n", after)
            end = len(text) if end < 0 else end
            if quote != "'":
                value = _expand(value, values)
        else:
            value = re.sub(r"(^|\s+)#.*$", "", text[start:end]).strip()
            value = _expand(value, values)
        values[match.group(1)] = value
        pos = end + 1
    return values
