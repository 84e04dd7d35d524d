"""HTML bodies become text; nothing in them is rendered, fetched or run."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.channels.email.html_text import html_to_text


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>Hello <b>there</b></p><p>Second</p>", "Hello there\n\nSecond"),
        ("<div>Line<br>two</div><div><br></div><div>three</div>", "Line\ntwo\n\nthree"),
        ("<ul><li>bins</li><li>parking</li></ul>", "- bins\n- parking"),
        ("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc"),
        ("<p>&nbsp;fish &amp; chips &#169; &lt;b&gt;</p>", "fish & chips © <b>"),
        ("<pre>  a\n  b</pre>", "  a\n  b"),
        ('<img src="cid:x" alt="photo of the pothole">', "photo of the pothole"),
        ("<blockquote>old<blockquote>older</blockquote></blockquote>new", "> old\n> > older\nnew"),
        ('<div class="yahoo_quoted">On Monday, City Hall wrote: old</div>', "> On Monday, City Hall wrote: old"),
    ],
)
def test_text_layout(html, text):
    assert html_to_text(html) == text


@pytest.mark.parametrize(
    "html",
    [
        "<script>alert('x')</script><p>kept</p>",
        "<SCRIPT type='text/javascript'>steal()</SCRIPT><p>kept</p>",
        "<style>p { background: url(https://evil.example/t.png) }</style><p>kept</p>",
        "<p onclick=\"steal()\" onmouseover='steal()'>kept</p>",
        '<a href="javascript:steal()">kept</a>',
        '<iframe src="https://evil.example/"><p>inside iframe</p></iframe><p>kept</p>',
        "<noscript><img src=https://evil.example/t.png>tracking</noscript><p>kept</p>",
        "<svg><script>steal()</script><text>svg text</text></svg><p>kept</p>",
        "<template><p>template</p></template><p>kept</p>",
        "<!-- steal() --><!--[if mso]><p>mso only</p><![endif]--><p>kept</p>",
    ],
)
def test_active_and_hidden_content_is_dropped(html):
    assert html_to_text(html) == "kept"


def test_unclosed_script_swallows_the_rest_not_more():
    assert html_to_text("<p>before</p><script>never closed <p>x</p>") == "before"


def test_head_without_body_tag_ends_at_the_first_body_element():
    assert html_to_text("<head><title>t</title><style>x</style><p>body text") == "body text"
    assert html_to_text("<head><meta charset=utf-8>text straight in head") == "text straight in head"
    assert html_to_text("<html><head><title>Title</title></head><body><p>ok</p></body></html>") == "ok"


@settings(max_examples=1000, deadline=None, derandomize=True, database=None)
@given(st.text(st.sampled_from("<>/=\"' !-[]&;#abcdefpscriptstyleheadbodyblockquote\n"), max_size=300))
def test_random_markup_never_raises(markup):
    html_to_text(markup)
