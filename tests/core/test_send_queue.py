"""The queue of requests that spend credits: the first balance before the first
spend, the requests on their way set aside from the balance, at most N tasks on
the account, and a refusal read as "too many tasks" waited out, never failed."""

from __future__ import annotations

from typing import Any

import pytest

from hitem3d_blender.core import send_queue
from hitem3d_blender.core.errors import ApiError, GenerationFailed, ServerError
from hitem3d_blender.core.kind_requests import KindRequest
from hitem3d_blender.core.messages import msg
from hitem3d_blender.core.prices import Estimate
from hitem3d_blender.core.send_queue import FetchBalance, Go, Refuse, Refused, Send, SendQueue, Stage
from hitem3d_blender.core.submission import Submission


def queue_of(*costs: int, button: str = "") -> SendQueue:
    queue = SendQueue()
    for number, cost in enumerate(costs, 1):
        queue.add(Send(f"submit-{number}", Estimate(cost), button or f"button-{number}"))
    return queue


def advance(queue: SendQueue, **given: Any) -> list[send_queue.Step]:
    values: dict[str, Any] = {"balance": 1000.0, "balance_answered": True, "balance_checking": False,
                              "running": 0, "limit": 10, "now": 0.0}
    return queue.advance(**{**values, **given})


def stages(queue: SendQueue) -> list[str]:
    return [send.stage.value for send in queue]


# -- the first balance ---------------------------------------------------------------------------


def test_the_first_spend_of_a_session_asks_for_the_balance_once_and_waits() -> None:
    queue = queue_of(45, 20)
    assert advance(queue, balance=None, balance_answered=False) == [FetchBalance()]
    assert advance(queue, balance=None, balance_answered=False, balance_checking=True) == []
    assert stages(queue) == ["balance", "balance"]


def test_once_the_balance_answers_what_it_covers_goes() -> None:
    queue = queue_of(45, 20)
    assert advance(queue, balance=100.0) == [Go("submit-1"), Go("submit-2")]
    assert stages(queue) == ["sending", "sending"]


def test_a_balance_that_could_not_be_asked_for_lets_hitem3d_decide() -> None:
    queue = queue_of(45)
    assert advance(queue, balance=None, balance_answered=True) == [Go("submit-1")]


def test_what_the_balance_cannot_cover_is_refused_and_leaves_the_queue() -> None:
    queue = queue_of(45)
    [refused] = advance(queue, balance=10.0)
    assert isinstance(refused, Refuse) and refused.key == "submit-1"
    assert str(refused.message).startswith("Not enough credits: at least 45 needed, 10 left (35 missing)")
    assert len(queue) == 0


# -- the requests on their way count ------------------------------------------------------------------


def test_the_requests_on_their_way_are_set_aside_from_the_balance() -> None:
    queue = queue_of(45, 45)
    steps = advance(queue, balance=60.0)
    [refused] = [step for step in steps if isinstance(step, Refuse)]
    assert Go("submit-1") in steps and refused.key == "submit-2"
    assert str(refused.message) == ("Not enough credits: at least 45 needed, 15 left once the 1 request(s) being "
                                     "sent are paid (30 missing): top up on the Hitem3D platform, then refresh the "
                                     "balance")
    assert queue.reserved() == 45.0


def test_an_answered_request_stays_set_aside_until_a_later_balance_shows_its_charge() -> None:
    queue = queue_of(45)
    advance(queue)
    queue.remove("submit-1")
    queue.charge(45.0, balance_check=3)
    assert queue.reserved() == 45.0 and queue.reserved_count() == 1
    queue.balance_seen(2)  # asked before the answer: does not show it yet
    assert queue.reserved() == 45.0
    queue.balance_seen(3)
    assert queue.reserved() == 0.0


def test_an_unknown_price_sets_nothing_aside_and_is_never_refused() -> None:
    queue = SendQueue()
    queue.add(Send("submit-1", Estimate(None)))
    assert advance(queue, balance=0.0) == [Go("submit-1")]
    assert queue.reserved() == 0.0


def test_a_button_is_in_flight_while_its_request_is_in_the_queue() -> None:
    queue = queue_of(45, button="hitem3d.submit_generation")
    assert queue.in_flight("hitem3d.submit_generation") and not queue.in_flight("hitem3d.split_parts")
    queue.remove("submit-1")
    assert not queue.in_flight("hitem3d.submit_generation")


# -- at most N running on the account --------------------------------------------------------------------


def test_at_most_the_limit_runs_and_the_rest_wait_in_order() -> None:
    queue = queue_of(20, 20, 20)
    assert advance(queue, running=8, limit=10) == [Go("submit-1"), Go("submit-2")]
    assert stages(queue) == ["sending", "sending", "slot"]
    assert queue.waiting()
    assert advance(queue, running=8, limit=10) == []  # the two on their way hold their slots
    queue.remove("submit-1")
    assert advance(queue, running=9, limit=10) == []  # it became a running task
    assert advance(queue, running=8, limit=10) == [Go("submit-3")]  # one ended


def test_the_default_limit_is_the_documented_ten() -> None:
    assert send_queue.DEFAULT_MAX_RUNNING == 10
    queue = queue_of(*[20] * 12)
    assert len(advance(queue, running=0, limit=send_queue.DEFAULT_MAX_RUNNING)) == 10


def test_a_pipeline_sets_the_limit_with_a_variable_unless_the_preference_was_changed() -> None:
    env = {send_queue.ENV_MAX_RUNNING: " 3 "}
    assert send_queue.limit_from(send_queue.DEFAULT_MAX_RUNNING, env) == 3
    assert send_queue.limit_from(5, env) == 5  # a value set in the preferences wins, as for every HITEM3D_* variable
    assert send_queue.limit_from(send_queue.DEFAULT_MAX_RUNNING, {}) == 10
    assert send_queue.limit_from(send_queue.DEFAULT_MAX_RUNNING, {send_queue.ENV_MAX_RUNNING: ""}) == 10


@pytest.mark.parametrize("value", ["0", "101", "ten", "2.5", "-1"])
def test_an_unusable_limit_variable_is_named_not_guessed(value: str) -> None:
    with pytest.raises(send_queue.InvalidLimit) as caught:
        send_queue.limit_from(send_queue.DEFAULT_MAX_RUNNING, {send_queue.ENV_MAX_RUNNING: value})
    assert str(caught.value) == f"HITEM3D_MAX_TASKS must be a whole number from 1 to 100, not {value!r}"


# -- a refusal read as "too many tasks" -------------------------------------------------------------------


def test_a_refusal_while_tasks_run_waits_for_one_to_end_then_goes_again() -> None:
    queue = queue_of(20)
    advance(queue, running=3)
    queue.refused_too_many("submit-1", running=3, now=100.0)
    assert stages(queue) == ["slot"]
    assert advance(queue, running=3, now=110.0) == []
    assert advance(queue, running=2, now=111.0) == [Go("submit-1")]


def test_a_refusal_counts_the_tasks_that_ran_when_the_request_left() -> None:
    queue = queue_of(20, 20)
    advance(queue, running=2, limit=10)
    [first, second] = list(queue)
    assert (first.running_at_send, second.running_at_send) == (2, 3)
    queue.remove(second.key)
    # The first is still out: it may be on the account already.
    assert queue.running_when_refused(second, running=0) == 3
    queue.remove(first.key)
    # Its answer came after they had all ended: it was still turned down while they ran.
    assert queue.running_when_refused(second, running=0) == 3
    queue.add(second)
    queue.refused_too_many(second.key, running=3, now=0.0)
    assert advance(queue, running=0, limit=10, now=1.0) == [Go(second.key)]  # fewer run now: it goes again


def test_a_refusal_of_the_first_sent_counts_the_others_still_out() -> None:
    queue = queue_of(20, 20, 20)
    advance(queue, running=0, limit=10)
    first = queue.remove("submit-1")
    assert first is not None and first.running_at_send == 0
    # Its answer came first, the others' not yet: they may be what filled the account.
    assert queue.running_when_refused(first, running=0) == 2


def test_a_refusal_waits_at_most_a_minute_for_tasks_made_elsewhere() -> None:
    queue = queue_of(20, 20)
    advance(queue, running=3, limit=4)
    queue.refused_too_many("submit-1", running=3, now=100.0)
    assert advance(queue, running=3, limit=4, now=100.0 + send_queue.RESEND_AFTER_S - 1) == []
    assert advance(queue, running=3, limit=4, now=100.0 + send_queue.RESEND_AFTER_S) == [Go("submit-1")]


def test_only_a_refusal_while_tasks_of_ours_run_reads_as_too_many() -> None:
    assert send_queue.means_too_many(1) and send_queue.means_too_many(10)
    assert not send_queue.means_too_many(0)


# -- what the workers run ----------------------------------------------------------------------------------


class FakeClient:
    def __init__(self, error: Exception | None = None, state: str = "processing") -> None:
        self.error = error
        self.state = state
        self.sent: list[object] = []

    def submit_task(self, submission: Submission) -> str:
        self.sent.append(submission)
        if self.error is not None:
            raise self.error
        return "new-task"

    submit_kind = submit_task

    def query_task(self, task_id: str) -> Any:
        if self.error is not None:
            raise self.error
        return type("Status", (), {"state": self.state})()


@pytest.mark.parametrize("error", [
    ApiError(msg("Hitem3D answered: {text} (code {code})", text="limit reached", code="30020000"), code="30020000"),
    ServerError(msg("Hitem3D is unavailable (HTTP {status}): retry in a few minutes", status=429)),
], ids=["unknown-code", "http-429"])
def test_a_refusal_this_version_cannot_place_comes_back_as_a_value(error: Exception) -> None:
    client = FakeClient(error)
    result = send_queue.create_task(client, Submission("hitem3dv2.1", "1536pro"))  # type: ignore[arg-type]
    assert isinstance(result, Refused) and result.message == error.message  # type: ignore[attr-defined]


@pytest.mark.parametrize("error", [
    ApiError(msg("{message} (code {code})", message=msg("Add an image to generate from"), code="10031008"),
             code="10031008"),
    ApiError(msg("Hitem3D answered: {text} (code {code}); likely cause: {cause}", text="x", code="30010000",
                 cause="y"), code="30010000"),
    ServerError(msg("Hitem3D is unavailable (HTTP {status}): retry in a few minutes", status=503)),
    ApiError(msg("Hitem3D sent no task ID: check your tasks on the Hitem3D platform before sending again")),
], ids=["documented", "balance", "http-503", "no-code"])
def test_a_refusal_we_can_place_is_raised_as_it_is(error: Exception) -> None:
    with pytest.raises(type(error)):
        send_queue.create_task(FakeClient(error), KindRequest("depth"))  # type: ignore[arg-type]


def test_a_task_is_created_with_its_kind_s_call() -> None:
    client = FakeClient()
    assert send_queue.create_task(client, KindRequest("split")) == "new-task"  # type: ignore[arg-type]


def test_the_state_of_a_task_sent_without_being_followed() -> None:
    assert send_queue.remote_state(FakeClient(state="queueing"), "t") == "queueing"  # type: ignore[arg-type]
    failed = FakeClient(GenerationFailed(msg("Generation failed on Hitem3D (credits are refunded): retry, or try "
                                             "another image")))
    assert send_queue.remote_state(failed, "t") == "failed"  # type: ignore[arg-type]


def test_stages_that_have_not_left_spend_nothing_when_cancelled() -> None:
    assert send_queue.WAITING == {Stage.BALANCE, Stage.SLOT, Stage.KEPT}
    assert Stage.SENDING not in send_queue.WAITING
