"""The README tells the truth: its troubleshooting table quotes the messages
the code produces, the main failures are all in it, it points nowhere outside
the repository, and Copy Diagnostics lists the failed tasks it promises."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from hitem3d_blender.ui import cli
from hitem3d_blender.core import errors, network
from tests.blender.test_translations import source_templates

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text("utf-8")


def troubleshooting_messages() -> list[str]:
    """Every message in the README's troubleshooting table (a row may list
    several, separated by " / ")."""
    section = README.split("\n## Troubleshooting\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| ---")]
    cells = [row.split(" | ")[0].removeprefix("| ") for row in rows[1:]]  # without the header
    return [message.strip() for cell in cells for message in cell.split(" / ")]


def pattern(template: str) -> re.Pattern[str]:
    """A template's messages: each placeholder stands for any text."""
    parts = re.split(r"\{\w+\}", template)
    return re.compile("(.+?)".join(re.escape(part) for part in parts), re.DOTALL)


TEMPLATES = sorted({template for _, template, _ in source_templates()[0]})
# The command line's messages stay English (pipelines parse them): literal text.
PATTERNS = [pattern(template) for template in TEMPLATES] + [re.compile(re.escape(cli.ONLINE_ACCESS_HELP))]


def as_message(text: str) -> str:
    """A README cell as the code would show it: "…" is some value."""
    return text.replace("…", "X")


def test_the_table_is_there_and_has_every_row() -> None:
    assert README.count("| message |") == 1  # one table of messages, not one per section
    assert len(troubleshooting_messages()) > 60


@pytest.mark.parametrize("message", troubleshooting_messages())
def test_every_message_in_the_table_is_one_the_code_produces(message: str) -> None:
    text = as_message(message)
    assert any(compiled.fullmatch(text) for compiled in PATTERNS), message


REQUIRED = sorted({*errors.CODE_MESSAGES.values(), *network.MESSAGES.values(),
                   str(errors.OnlineAccessDisabled().message), str(errors.CredentialsMissing().message),
                   str(errors.InvalidCredentials().message)})


@pytest.mark.parametrize("template", REQUIRED)
def test_every_failure_of_the_service_and_the_network_is_in_the_table(template: str) -> None:
    compiled = pattern(template)
    assert any(compiled.match(as_message(message)) for message in troubleshooting_messages()), template


def test_the_readme_says_where_to_get_an_access_key_and_a_task_id() -> None:
    start = README.split("## Before you start", 1)[1].split("\n## ", 1)[0]
    assert "API Key Management" in start and "Client ID" in start and "Client Secret" in start
    assert "task ID" in start and "jjewelry-aigc-api" in start


def anchor(heading: str) -> str:
    """GitHub's link target for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def headings() -> list[tuple[int, str]]:
    """(level, title) of every heading outside code blocks, in order."""
    found, in_code = [], False
    for line in README.splitlines():
        in_code ^= line.startswith("```")
        match = None if in_code else re.match(r"(#{2,4}) (.+)$", line)
        if match:
            found.append((len(match.group(1)), match.group(2)))
    return found


def test_the_first_screen_says_how_to_get_it_try_it_and_work_on_it() -> None:
    first_screen = README.split("![", 1)[0]  # before the first picture
    for words in ("hitem3d_blender-<version>.zip", "python build.py repo", "Install from Disk",
                  "python build.py sandbox", "without an account", "python build.py demo", "python build.py test"):
        assert words in first_screen, words


def test_the_contents_list_every_section_and_every_link_finds_its_heading() -> None:
    contents = README.split("**Contents**", 1)[1].split("\n## ", 1)[0]
    links = re.findall(r"^ *- \[(.+)\]\(#(.+)\)$", contents, re.MULTILINE)
    targets = {anchor(title) for _, title in headings()}
    assert [target for _, target in links if target not in targets] == []
    listed = {title for title, _ in links}
    missing = [f"- [{title}](#{anchor(title)})" for level, title in headings() if level == 2 and title not in listed]
    assert not missing, f"add these lines to the README's Contents: {missing}"


def test_no_file_points_outside_the_repository() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    # NOTE: written in pieces, so that this file does not match itself.
    outside = re.compile(r"\.\./" + "shared|/work/" + "shared|/tmp/" + r"issue\d")
    found = [name for name in tracked if (ROOT / name).is_file() and (ROOT / name).suffix in (".py", ".md", ".toml", "")
             and outside.search((ROOT / name).read_text("utf-8", errors="replace"))]
    assert not found
    assert (ROOT / "docs" / "hitem3d-api.md").is_file() and "docs/hitem3d-api.md" in README


def test_copy_diagnostics_lists_the_recent_failed_tasks(addon: ModuleType, prefs: object) -> None:
    import bpy

    from tests.support.blender_helpers import TASK_ID

    error = addon.core.errors.ServerError(addon.core.errors.message_for_code(addon.core.errors.CODE_SYSTEM_ERROR, ""))
    addon.engine.control.fail_without_start(TASK_ID, error)
    report = addon.ui.diagnostics.report(bpy.context)
    failed = report.split("Recent failed tasks:\n", 1)[1].splitlines()[0]
    assert re.fullmatch(rf"  {TASK_ID[:8]}  \d{{4}}-\d\d-\d\d \d\d:\d\d  "
                        r"Hitem3D server error: retry in a few minutes \(code 10000000\)", failed), failed
