"""The price before you pay: a dated table, an estimate per request, the
balance after it, and the refusal when the known balance is too low."""

from __future__ import annotations

import re

import pytest

from hitem3d_blender.core import models, prices
from hitem3d_blender.core.prices import Estimate, NotEnoughCredits, check_balance, cost_line
from hitem3d_blender.core.submission import RequestType, Submission


def test_the_table_is_dated() -> None:
    assert re.fullmatch(r"\d{4}-\d{2}", prices.PRICES_DATE)


@pytest.mark.parametrize(("model", "resolution", "credits"), [
    ("hi3dv3.0", "2048quality", 105), ("hi3dv3.0", "2048master", 455),
    ("hitem3dv2.1", "1536fast", 25), ("hitem3dv2.1", "1536pro", 45),
    ("hitem3dv2.0", "1536", 35), ("hitem3dv1.5", "512", 15), ("hitem3dv1.5", "1024", 20),
    ("scene-portraitv2.1", "1536profast", 25),
])
def test_a_generation_costs_what_the_price_list_says(model: str, resolution: str, credits: int) -> None:
    assert prices.for_generation(model, resolution).credits == credits


def test_several_tasks_cost_the_sum() -> None:
    assert prices.for_generation("hitem3dv2.1", "1536pro", count=3).credits == 135
    parts = [prices.for_generation("hi3dv3.0", "2048quality"), prices.for_kind("split")]
    assert prices.total(parts).credits == 125


def test_an_unlisted_price_is_unknown_not_zero() -> None:
    assert prices.for_generation("hitem3dv1.5", "1536pro").credits is None
    assert prices.for_kind("segmentation").credits is None
    assert prices.total([prices.for_kind("split"), prices.for_kind("segmentation")]).credits is None


def test_the_per_task_kinds_have_their_prices() -> None:
    assert (prices.for_kind("split").credits, prices.for_kind("multicolor").credits,
            prices.for_kind("depth").credits) == (20, 20, 10)


def test_every_model_resolution_is_priced_or_knowingly_unknown() -> None:
    unknown = {(spec.id, res) for spec in models.MODELS for res in spec.resolutions
               if (spec.id, res) not in prices.GENERATION}
    assert unknown == {("hitem3dv1.5", "1536pro"), ("hitem3dv2.0", "1536pro"),
                       ("hitem3dv1", "512"), ("hitem3dv1", "1024"), ("hitem3dv1", "1536")}


def test_the_line_shows_the_estimate_and_the_balance_after_it() -> None:
    assert str(cost_line(Estimate(105), 1000.0)) == "Estimated cost: 105 credits; balance after: 895 credits"
    assert str(cost_line(Estimate(105), None)) == "Estimated cost: 105 credits"
    assert str(cost_line(Estimate(None), None)).startswith("Estimated cost: unknown")


def test_a_known_balance_below_the_estimate_says_how_many_credits_are_missing() -> None:
    with pytest.raises(NotEnoughCredits) as info:
        check_balance(Estimate(105), 80.5)
    assert str(info.value) == ("Not enough credits: at least 105 needed, 80.5 left (25 missing): "
                               "top up on the Hitem3D platform, then refresh the balance")
    assert info.value.code == "30010000"


@pytest.mark.parametrize(("estimate", "balance"), [(Estimate(105), 105.0), (Estimate(105), None),
                                                   (Estimate(None), 3.0)])
def test_enough_or_unknown_lets_the_request_go(estimate: Estimate, balance: float | None) -> None:
    check_balance(estimate, balance)


def test_geometry_only_is_priced_below_textured() -> None:
    # The one figure a source gives: v1.5 at 512, 5 credits (15 textured).
    assert prices.for_generation("hitem3dv1.5", "512", request_type=RequestType.GEOMETRY) == Estimate(
        5, "hitem3dv1.5 512")
    # Elsewhere no figure: from the least any source quotes to the textured price.
    unsure = prices.for_generation("hitem3dv2.1", "1536pro", request_type=RequestType.GEOMETRY)
    assert (unsure.lowest, unsure.credits) == (prices.LOWEST_QUOTED, 45) and unsure.is_range
    textured = prices.for_generation("hitem3dv2.1", "1536pro")
    assert (textured.lowest, textured.credits) == (45, 45) and not textured.is_range


def test_texturing_an_existing_mesh_is_priced_from_the_least_quoted_to_the_model_price() -> None:
    texturing = prices.for_generation("hi3dv3.0", "2048quality", request_type=RequestType.TEXTURE_MESH)
    assert (texturing.lowest, texturing.credits) == (5, 105)
    assert prices.for_generation("hi3dv3.0", "2048quality", count=2, request_type=RequestType.TEXTURE_MESH).lowest == 10


@pytest.mark.parametrize("balance", [5.0, 20.0, 44.0])
def test_a_geometry_only_request_the_artist_can_afford_is_not_refused(balance: float) -> None:
    check_balance(prices.for_request(Submission("hitem3dv2.1", "1536pro", RequestType.GEOMETRY)), balance)


def test_a_balance_below_the_least_it_could_cost_is_refused_and_says_at_least() -> None:
    with pytest.raises(NotEnoughCredits) as info:
        check_balance(prices.for_request(Submission("hitem3dv2.1", "1536pro", RequestType.GEOMETRY)), 3.0)
    assert str(info.value) == ("Not enough credits: at least 5 needed, 3 left (2 missing): "
                               "top up on the Hitem3D platform, then refresh the balance")


def test_a_range_is_shown_as_a_range() -> None:
    estimate = prices.for_generation("hitem3dv2.1", "1536pro", request_type=RequestType.GEOMETRY)
    assert str(cost_line(estimate, None)) == "Estimated cost: 5 to 45 credits"
    assert str(cost_line(estimate, 100.0)) == "Estimated cost: 5 to 45 credits; balance after: 55 credits or more"
    assert prices.total([estimate, Estimate(20)]) == Estimate(65, low=25)


def test_the_requests_being_sent_are_set_aside() -> None:
    assert str(cost_line(Estimate(45), 100.0, reserved=45.0)) == ("Estimated cost: 45 credits; "
                                                                 "balance after: 10 credits")
    check_balance(Estimate(45), 100.0, reserved=55.0, sending=1)
    with pytest.raises(NotEnoughCredits) as info:
        check_balance(Estimate(45), 100.0, reserved=70.0, sending=2)
    assert str(info.value) == ("Not enough credits: at least 45 needed, 30 left once the 2 request(s) being sent "
                               "are paid (15 missing): top up on the Hitem3D platform, then refresh the balance")


def test_any_request_is_priced_by_what_it_is() -> None:
    from hitem3d_blender.core.kind_requests import KindRequest
    from hitem3d_blender.core.submission import Submission

    assert prices.for_request(Submission("hi3dv3.0", "2048master")).credits == 455
    assert prices.for_request(KindRequest("depth")).credits == 10
    assert prices.for_request(KindRequest("segmentation")).credits is None
