# The friendly REPL's line rules of the virtual board's firmware: when a typed line needs a
# continuation ("... "), and how much readline indents it. Ports of py/repl.c and
# shared/readline/readline.c of MicroPython, run on the unix port inside the board (hilfw.py
# imports them), so plain MicroPython only.
#
# Why a file of its own: they are pure text rules, apart from the board's life in hilfw.py.

COMPOUND = ("if", "while", "for", "try", "with", "def", "class", "async")


def starts_with_word(text, word):
    if not text.startswith(word):
        return False
    if len(text) == len(word):
        return True
    c = text[len(word)]
    return not (c.isalpha() or c.isdigit() or c == "_")


def continue_with_input(text):
    if not text:
        return False
    compound = text[0] == "@" or any(starts_with_word(text, w) for w in COMPOUND)
    paren = brack = brace = 0
    quote = None
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c in "'\"":
            if quote in (None, c * 3) and text[i + 1 : i + 3] == c * 2:
                quote = None if quote == c * 3 else c * 3
                i += 2
            elif quote in (None, c):
                quote = None if quote == c else c
        elif c == "\\" and i + 1 < n and text[i + 1] in "'\"\\":
            if quote is not None:
                i += 1
        elif quote is None:
            if c == "(":
                paren += 1
            elif c == ")":
                paren -= 1
            elif c == "[":
                brack += 1
            elif c == "]":
                brack -= 1
            elif c == "{":
                brace += 1
            elif c == "}":
                brace -= 1
        i += 1
    if quote is not None and len(quote) == 3:
        return True
    if (paren > 0 or brack > 0 or brace > 0) and quote is None:
        return True
    if text[-1] == "\\":
        return True
    return compound and text[-1] != "\n"


def auto_indent(text):
    """Spaces that readline inserts after the '... ' prompt for the text typed so far."""
    if len(text) < 2 or text[-1] != "\n":
        return ""
    start = text.rfind("\n", 0, len(text) - 1) + 1
    first = start
    while first < len(text) and text[first] == " ":
        first += 1
    if start > 0 and first + 1 == len(text):
        prev_end = start - 1
        prev_start = text.rfind("\n", 0, prev_end) + 1
        if not text[prev_start:prev_end].strip(" "):
            return ""
    levels = (first - start) // 4
    if text[-2] == ":":
        levels += 1
    return "    " * levels
