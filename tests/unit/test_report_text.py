"""How REPL bytes read in a report: attachment text and step titles."""

from __future__ import annotations

from hil.report.steps import readable, step_title, summarize


def test_readable_keeps_lines_and_names_the_protocol() -> None:
    text = readable(b"\x05A\x01print(1)\r\nprint(2)\x04\x03 done\r")
    assert text == "<CTRL-E>A<CTRL-A>print(1)\nprint(2)<CTRL-D><CTRL-C> done\\r"


def test_readable_escapes_what_is_not_text() -> None:
    assert readable(b"\x00\x1b[0m\tok \xff\xfe caf\xc3\xa9") == "\\x00\\x1b[0m\tok \\xff\\xfe café"


def test_readable_cuts_the_middle_of_long_output_and_says_so() -> None:
    text = readable(b"a" * 1000 + b"b" * 1000, limit=100)
    head, cut, tail = text.split("\n")
    assert head == "a" * 50
    assert tail == "b" * 50
    assert cut == "(... 1900 characters cut ...)"


def test_summary_is_the_first_line_and_counts_the_rest() -> None:
    assert summarize(b"\n  import sys\r\nprint(sys.platform)\n\n") == "import sys (+1 line)"
    assert summarize(b"\x03x = 1\x04") == "x = 1"  # control bytes stay out of titles


def test_summary_of_a_long_line_is_cut_to_the_width() -> None:
    summary = summarize(b"print('" + b"x" * 200 + b"')", width=20)
    assert summary == "print('xxxxxxxxxxxx…"
    assert len(summary) == 20


def test_summary_of_control_bytes_alone_names_them() -> None:
    assert summarize(b"\x04") == "<CTRL-D>"
    assert summarize(b"") == ""


def test_step_title_names_the_action_and_the_code_without_protocol_bytes() -> None:
    assert step_title("exec: print(1)", b"\x05A\x01print(1)\n\x04") == "exec: print(1)"
    assert step_title("exec: import test_simple", b"import test_simple\x04") == (
        "exec: import test_simple"
    )  # plain raw REPL: no raw-paste request
    assert step_title("exec: print(repr(2 ** 10))", b"\x05A\x01print(repr(2 ** 10))\x04") == (
        "eval: 2 ** 10"
    )
    assert step_title("soft reset", b"\x04") == "soft reset"
    assert step_title("friendly: 2 ** 10", b"2 ** 10\r") == "type at >>>: 2 ** 10"
    assert step_title("", b"") == "exchange"
