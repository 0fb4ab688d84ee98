"""Template filters of the annotator workspace: guideline Markdown rendered safely."""

from __future__ import annotations

from django import template
from django.utils.safestring import mark_safe
from markdown_it import MarkdownIt

register = template.Library()

# CommonMark plus tables and strikethrough with raw HTML disabled: any HTML in the source
# is shown as text, and markdown-it refuses javascript:, vbscript:, file: and data: links.
_MARKDOWN = MarkdownIt("js-default", {"html": False, "linkify": False, "typographer": False})


@register.filter(name="guideline_markdown")
def guideline_markdown(text: str | None) -> str:
    """Render guideline Markdown to HTML; embedded HTML is escaped, never passed through."""
    return mark_safe(_MARKDOWN.render(text or ""))  # noqa: S308 - raw HTML is disabled above
