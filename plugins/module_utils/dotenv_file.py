"""A .env file read the way Prisma's CLI reads it: dotenv 16's parser, then Prisma's own fork of
dotenv-expand (only `${NAME}`, looked up in the whole file; `\\${` is a literal `${`). Shared by our modules
and the controller's filters. Ours, not python-dotenv: it runs on the app hosts, where nothing is installed
for us, and python-dotenv reads quotes, comments and `$NAME` otherwise than Prisma does."""

from __future__ import annotations

import re

# dotenv 16's LINE, as it is (lib/main.js): NAME=value or NAME: value, `export`, a value in single, double
# or back quotes (over several lines), or up to a `#`; a `#` comment after it.
LINE = re.compile(
    r"^\s*(?:export\s+)?([\w.-]+)(?:\s*=\s*?|:\s+?)(\s*'(?:\\'|[^'])*'|\s*\"(?:\\\"|[^\"])*\"|\s*`(?:\\`|[^`])*`"
    r"|[^#\r\n]+)?\s*(?:#.*)?$",
    re.M,
)
QUOTED = re.compile(r"^(['\"`])([\s\S]*)\1$")
# Prisma's dotenvExpand: `${NAME}`, and `\${NAME}` for the literal text.
EXPAND = re.compile(r"(.?)\$\{([a-zA-Z0-9_]+)?\}")


def _expand(value, parsed, depth=0):
    """Prisma's expansion of ${NAME} from the file (the process's environment is the app's, unknown here)."""

    def one(match):
        if match.group(1) == "\\":
            return match.group(0)[1:]
        found = parsed.get(match.group(2) or "", "")
        return match.group(1) + (_expand(found, parsed, depth + 1) if depth < 10 else found)

    return EXPAND.sub(one, value)


def dotenv(text):
    """NAME=value as Prisma's CLI reads a .env: quotes taken off (in double quotes, \\n and \\r become line
    breaks), a value over several lines in quotes, a `#` ending an unquoted value, ${NAME} expanded."""
    parsed = {}
    for match in LINE.finditer(re.sub(r"\r\n?", "\n", text)):
        value = (match.group(2) or "").strip()
        quote = value[:1]
        value = QUOTED.sub(r"\2", value)
        if quote == '"':
            value = value.replace("\\n", "\n").replace("\\r", "\r")
        parsed[match.group(1)] = value
    return {name: _expand(value, parsed) for name, value in parsed.items()}
