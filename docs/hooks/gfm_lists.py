"""GitHub's list rules for the site (an mkdocs hook): the pages are written to read on GitHub.

Python-Markdown, which mkdocs uses, starts a list only after a blank line and nests only at four
spaces; GitHub starts one right under a paragraph and nests at the parent's text column (two spaces
under ``- ``, three under ``1. ``). ``gfm_lists`` rewrites a page's Markdown to Python-Markdown's
rules before it is rendered, so both show the same lists; the files themselves are left as written.
"""

from __future__ import annotations

import re
from typing import Any

_ITEM = re.compile(r"^( *)([-*+]|\d{1,9}[.)])( +)\S")
_FENCE = re.compile(r"^ *(```|~~~)")


def gfm_lists(markdown: str) -> str:
    """A blank line before a list that follows a paragraph (nested ones too) and before the item
    that follows a nested list; nested items and their text moved to multiples of four spaces.
    Code fences are left alone."""
    out: list[str] = []
    stack: list[int] = []  # the text column of each open list item, outermost first
    fence = False
    after_blank = True
    owner = -1  # the depth of the list item the last line belongs to (-1: none)
    for line in markdown.split("\n"):
        indent = len(line) - len(line.lstrip(" "))
        if _FENCE.match(line) and (fence or indent == 0):
            fence, stack, after_blank = not fence, [], False
            out.append(line)
            continue
        if fence:
            out.append(line)
            continue
        if not line.strip():
            out.append(line)
            after_blank = True
            continue
        item = _ITEM.match(line)
        opens = not stack and not after_blank and not _in_list(out)  # a list right under a paragraph
        if item and opens and item.group(2)[0].isdigit() and item.group(2)[:-1] != "1":
            item = None  # as on GitHub: only "1." starts a numbered list inside a paragraph
        if item:
            depth = len(stack)
            while stack and indent < stack[-1]:
                stack.pop()
            nested_under_text = stack and not after_blank and not _ITEM.match(out[-1]) and owner < len(stack)
            back_out = len(stack) < depth - 1 and not after_blank  # the next item after a nested list
            if opens or nested_under_text or back_out:
                out.append("")
            owner = len(stack)
            out.append(" " * (4 * owner) + line.lstrip(" "))
            stack.append(indent + len(item.group(2)) + len(item.group(3)))
        elif stack and (indent or not after_blank):
            while stack and indent < stack[-1] and (after_blank or indent):
                stack.pop()
            owner = len(stack) - 1
            out.append(" " * (4 * len(stack)) + line.lstrip(" ") if indent else line)
        else:
            stack, owner = [], -1
            out.append(line)
        after_blank = False
    return "\n".join(out)


def _in_list(out: list[str]) -> bool:
    """Whether the lines written so far end inside a list (an item, then its lazy text lines)."""
    for line in reversed(out):
        if not line.strip():
            return False
        if _ITEM.match(line):
            return True
    return False


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """mkdocs hook: every page's lists as GitHub shows them."""
    return gfm_lists(markdown)
