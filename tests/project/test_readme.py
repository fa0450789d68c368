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


def pattern(template: str, suffix: str = "") -> re.Pattern[str]:
    """A template's messages: each placeholder stands for any text."""
    parts = re.split(r"\{\w+\}", template + suffix)
    return re.compile("(.+?)".join(re.escape(part) for part in parts), re.DOTALL)


def literal(template: str) -> str:
    """A template's own words, without its placeholders."""
    return re.sub(r"\{\w+\}", "", template).strip()


FOUND = source_templates()[0]
TEMPLATES = sorted({template for _, template, _ in FOUND})
# Templates that add to another message ("{message} (code {code})"): a row may
# quote any message with one of their endings.
SUFFIXES = ["", *(template.removeprefix("{message}") for template in TEMPLATES if template.startswith("{message}"))]
# NOTE: a template of a few letters around its placeholders ("{seconds}s")
# matches nearly any text, so only templates with words of their own vouch for a row.
VOUCHING = [template for template in TEMPLATES if len(literal(template)) >= 10]


def quotes(message: str, template: str) -> bool:
    """Whether a README cell's ``message`` is ``template`` (with the ending of a
    template that adds to it, such as " (code …)")."""
    text = as_message(message)
    return any(pattern(template, suffix).fullmatch(text) for suffix in SUFFIXES)


def as_message(text: str) -> str:
    """A README cell as the code would show it: "…" is some value."""
    return text.replace("…", "X")


def as_cell(template: str) -> str:
    """A template as the table writes it: each value as "…"."""
    return re.sub(r"\{\w+\}", "…", template)


def test_the_table_is_there_and_has_every_row() -> None:
    assert README.count("| message |") == 1  # one table of messages, not one per section
    assert len(troubleshooting_messages()) > 60


@pytest.mark.parametrize("message", troubleshooting_messages())
def test_every_message_in_the_table_is_one_the_code_produces(message: str) -> None:
    # The command line's messages stay English (pipelines parse them): literal text.
    assert message == cli.ONLINE_ACCESS_HELP or any(quotes(message, template) for template in VOUCHING), (
        f"README's Troubleshooting table quotes a message no template in the code produces: {message!r}. "
        "Quote the template as it is now (each value as …), or remove the row if the message is gone.")


def test_every_row_says_what_it_means_and_what_to_do() -> None:
    section = README.split("\n## Troubleshooting\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| ---")][1:]
    short = [row for row in rows if len(row.rstrip(" |").split(" | ")[-1]) < 20 or row.count(" | ") != 1]
    assert not short


# What the artist sees that reports no problem, so has no row: names and labels,
# states, progress and confirmations, estimates, notices of what leaves the
# computer; and the parts other messages are made of ("part": a reason, a name,
# a limit, shown inside a message whose row has "…" in its place; ``is_part``
# knows most of them by their shape).
LABEL, STATE, PROGRESS, DONE, PART, NOTICE = "label", "state", "progress", "done", "part", "notice"
NOT_PROBLEMS: dict[str, str] = {
    # names, labels and descriptions of settings
    "Image": LABEL, "Picture": LABEL, "Front": LABEL, "Back": LABEL, "Left": LABEL, "Right": LABEL,
    "Front view": LABEL, "Back view": LABEL, "Left view": LABEL, "Right view": LABEL, "{view} view": LABEL,
    "{view} (required)": LABEL, "Lighting": LABEL, "Strength": LABEL, "Model": LABEL, "Colours": LABEL,
    "Template": LABEL, "Joint": LABEL, "Level": LABEL, "Quality": LABEL, "Remove background": LABEL,
    "Image to 3D": LABEL, "Split into parts": LABEL, "Split": LABEL, "Segmentation": LABEL,
    "Depth map / relief": LABEL, "Multicolour": LABEL,
    "Character: body parts from a template; General: parts by level of detail": LABEL,
    "How a character is cut into parts": LABEL, "The joint between printed parts": LABEL,
    "How many parts a general split makes": LABEL, "How finely the model is segmented": LABEL,
    "Hitem3D removes the picture's background first": LABEL,
    "How many colours to print with (0: as many as needed)": LABEL,
    "Split the mesh into printable parts on Hitem3D; they arrive as separate objects": LABEL,
    "Segment the mesh into its parts on Hitem3D; they arrive as separate objects": LABEL,
    "Make a depth map of the picture on Hitem3D; it arrives as a relief (a displaced plane)": LABEL,
    "Colour the mesh for multicolour printing on Hitem3D; it arrives with its colours visible": LABEL,
    "{model}: {low} to {high} faces": LABEL, "{count} mesh object(s) selected": LABEL, "Task: {task}": LABEL,
    "Kind: {kind}": LABEL, "Model: {model}": LABEL, "File: {size}": LABEL, "Finished {when}": LABEL,
    "Imported {count} object(s)": LABEL, "Downloaded models: {size} MB": LABEL,
    "Each converter may use up to {share} of memory ({budget} in all)": LABEL,
    "Balance: {credits} credits": LABEL, "Balance: checking…": LABEL, "Balance: not checked yet": LABEL,
    "Client ID in use: from HITEM3D_CLIENT_ID": LABEL, "Client Secret in use: from HITEM3D_CLIENT_SECRET": LABEL,
    "API base URL in use: {url}, from HITEM3D_API_BASE": LABEL,
    "Generate from {source} ({model})": LABEL, "Texture from {source} ({model})": LABEL,
    "Texture {mesh} from {source} ({model})": LABEL,
    "{seconds}s": LABEL, "{minutes}m": LABEL, "{hours}h": LABEL, "{hours}h {minutes}m": LABEL,
    "{a} or {b}": PART, "{a}, {b} or {c}": PART, "{a}, {b}, {c} or {d}": PART, "{a}, {b}": PART,
    "{a}, {b}, {c}": PART, "{a}, {b}, {c}, {d}": PART,
    # the states of a task
    "Starting": STATE, "Created": STATE, "Queueing": STATE, "Processing": STATE, "Downloading": STATE,
    "Ready to import": STATE, "Importing": STATE, "Done": STATE, "Failed": STATE, "Cancelled": STATE,
    "Not followed": STATE, "Waiting": STATE,
    # work going on
    "Connecting…": PROGRESS, "Converting in a separate Blender: keep working": PROGRESS,
    "Converting task {short}: it appears when ready": PROGRESS, "Waiting for {count} Hitem3D tasks": PROGRESS,
    "Waiting for Hitem3D task {names}": PROGRESS, "Submitting… {what}": PROGRESS, "Stopping… {what}": PROGRESS,
    "Sending to Hitem3D: {what}": PROGRESS, "Checking the balance, then sending: {what}": PROGRESS,
    "Checking the balance before sending: {what}": PROGRESS, "Waiting for a free slot on Hitem3D: {what}": PROGRESS,
    "Kept from your last session, not sent: {what}": STATE,
    "Task {short}: {reason}": PART, "{message} (code {code})": PART,
    # what was done
    "Connected: credentials accepted": DONE, "Connected to {host}: credentials accepted": DONE,
    "Hitem3D connection OK": DONE, "Hitem3D balance: {credits} credits": DONE,
    "Imported {count} object(s) from task {short}": DONE, "Imported {count} object(s) from {tasks} task(s)": DONE,
    "Imported {count} object(s) from Hitem3D task {short}": DONE,
    "Imported {count} object(s) from new task {short}": DONE, "Sent to Hitem3D: task {short}": DONE,
    "Removed task {short}": DONE, "Removed task {short} and its model in the Hitem3D asset library": DONE,
    "Task ID copied": DONE, "Diagnostics copied: paste them into your support request": DONE,
    "Deleted downloaded GLB files ({size} MB); the Hitem3D asset library keeps {count} model(s)": DONE,
    "The viewport is the picture to generate from: press Generate": DONE,
    "The camera view is the picture to generate from: press Generate": DONE,
    # prices before a button, and what leaves the computer (see "The price before you pay")
    "Estimated cost: unknown (not in the price list)": NOTICE,
    "Estimated cost: unknown (not in the price list); balance {balance} credits": NOTICE,
    "Estimated cost: {low} to {high} credits": NOTICE,
    "Estimated cost: {low} to {high} credits; balance after: {after} credits or more": NOTICE,
    "Estimated cost: {credits} credits": NOTICE, "Estimated cost: {credits} credits; balance after: {after} credits": NOTICE,
    "Uploads the selected meshes as one GLB, without their names, to Hitem3D's storage ({host}); Hitem3D reads "
    "it from {public}": NOTICE,
    "Uploading {name} ({size}, without its object names) to Hitem3D's storage ({host}); Hitem3D reads it from "
    "{public}": NOTICE,
}


def is_part(template: str) -> bool:
    """A piece of a sentence by its shape: it starts with a small letter or a
    quote, or it is a measure past a limit ("{found} faces, over the limit of
    {limit}", inside "The result is too large to import safely: …")."""
    return template[:1].islower() or template[:1] in "'\"" or template.startswith("{found} ")


def can_report_a_problem(template: str) -> bool:
    return template not in NOT_PROBLEMS and not is_part(template) and not template.startswith("What leaves")


SHOWN = sorted({(template, where) for _, template, where in FOUND if can_report_a_problem(template)})


@pytest.mark.parametrize(("template", "where"), SHOWN, ids=[template[:60] for template, _ in SHOWN])
def test_every_message_the_code_can_show_has_a_row(template: str, where: str) -> None:
    """Checked from the code's side: a new message fails here until its row is written."""
    rows = [message for message in troubleshooting_messages() if quotes(message, template)]
    assert rows, (
        f"README's Troubleshooting table has no row for the message of hitem3d_blender/{where}. Add this row "
        f"(several messages that mean the same may share one, separated by \" / \"):\n\n"
        f"| {as_cell(template)} | <what it means, and what to do> |\n\n"
        "or, if the message reports no problem (a label, a state, progress, a confirmation), add it to "
        "NOT_PROBLEMS in tests/project/test_readme.py.")


def test_what_reports_no_problem_is_still_in_the_code() -> None:
    assert sorted(set(NOT_PROBLEMS) - set(TEMPLATES)) == []


REQUIRED = sorted({*errors.CODE_MESSAGES.values(), *network.MESSAGES.values(),
                   str(errors.OnlineAccessDisabled().message), str(errors.CredentialsMissing().message),
                   str(errors.InvalidCredentials().message)})


@pytest.mark.parametrize("template", REQUIRED)
def test_every_failure_of_the_service_and_the_network_is_in_the_table(template: str) -> None:
    assert any(quotes(message, template) for message in troubleshooting_messages()), template


@pytest.mark.parametrize("code", sorted(errors.LIKELY_CAUSES))
def test_every_code_only_third_parties_describe_is_in_the_table_as_a_likely_cause(code: str) -> None:
    expected = f"Hitem3D answered: … (code {code}); likely cause: {errors.LIKELY_CAUSES[code]}"
    assert expected in troubleshooting_messages()


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


FIGURES = README.split("\n### Where the figures come from\n", 1)[1].split("\n## ", 1)[0]


def figure_rows() -> list[tuple[list[str], str, list[str]]]:
    """(the figures quoted, the command, the commits) of each row of *Where the figures come from*."""
    rows = [line for line in FIGURES.splitlines() if line.startswith("| ") and not line.startswith("| ---")][1:]
    cells = [row.strip("| ").split(" | ") for row in rows]
    return [(re.findall(r"“(.+?)”", cell[0]), cell[1], re.findall(r"\b[0-9a-f]{7,40}\b", cell[2])) for cell in cells]


def test_every_figure_named_is_in_the_readme_with_its_command_and_commit() -> None:
    """A figure changed in the text without being measured again, or a row
    naming a commit that does not exist, fails here."""
    rest = " ".join(README.replace(FIGURES, "").split())  # the prose wraps anywhere
    shallow = subprocess.run(["git", "rev-parse", "--is-shallow-repository"], cwd=ROOT, capture_output=True,
                             text=True).stdout.strip() != "false"
    assert len(figure_rows()) >= 10
    for quoted, command, commits in figure_rows():
        assert quoted and all(" ".join(figure.split()) in rest for figure in quoted), quoted
        assert command.startswith("`") and commits, (quoted, command, commits)
        for commit in commits if not shallow else []:
            found = subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=ROOT, capture_output=True)
            assert found.returncode == 0, f"{quoted}: no commit {commit}"


def test_every_link_to_a_section_finds_its_heading() -> None:
    targets = {anchor(title) for _, title in headings()}
    assert sorted(set(re.findall(r"\]\(#([^)]+)\)", README)) - targets) == []


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
