"""The audit's HTML page reads as text: its settings in words, not a raw JSON dict (issue 12)."""

from edgecnn.audit import audit_dataset
from edgecnn.audit.report import render_html


def test_the_settings_read_as_words(demo_data):
    page = render_html(audit_dataset(demo_data, max_distance=6))
    settings = next(line for line in page.splitlines() if "Settings:" in line)
    assert "max distance 6, hash method phash, thumb tolerance 0.2" in settings
    assert "{" not in settings and "&quot;" not in settings
