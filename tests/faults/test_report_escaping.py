"""Untrusted strings are data in a report: a crafted ``--data`` path cannot make ``report.html`` embed a local file,
and only the images the report wrote are inlined."""

from __future__ import annotations

import base64
from pathlib import Path

from musefusion.pipelines.report import md_code, to_html


def test_a_crafted_path_is_shown_as_code_and_no_foreign_file_is_embedded(tmp_path: Path) -> None:
    out = tmp_path / "rep"
    (out / "plots").mkdir(parents=True)
    own = b"\x89PNG own plot"
    (out / "plots" / "unimodal.png").write_bytes(own)
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"private key material")
    crafted = f"/data/x`![leak]({secret})`y"  # backticks close a naive code span and open an image
    md = "\n\n".join(["# report", f"Data: {md_code(crafted)}; profile demo.", "![own](plots/unimodal.png)",
                      f"![other]({secret})", "![up](plots/../../secret.png)"])
    page = to_html(md, out, "report")
    assert base64.b64encode(own).decode() in page
    assert base64.b64encode(secret.read_bytes()).decode() not in page and "private key" not in page
    assert "![leak]" in page  # the crafted path is printed as text, inside <code>
    assert page.count("<img") == 3 and page.count('src=""') == 2


def test_md_code_survives_any_backtick_run() -> None:
    from markdown_it import MarkdownIt

    for text in ("plain", "a`b", "``x``", "`lead", "trail`", "multi\nline"):
        html = MarkdownIt("commonmark").renderInline(md_code(text))
        assert html.startswith("<code>") and html.endswith("</code>"), (text, html)
