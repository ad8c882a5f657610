"""The original web app's alpha, added up in floating point: values a rounding error outside [0, 1] are
clamped by the request schema; values further out are still a JSON 422 naming ``alpha``."""

import httpx
import pytest

from riffusion.server.schemas import ALPHA_TOLERANCE, GenerateBody, InferenceBody, clamp_alpha

from .conftest import clip_body


def original_app_alphas(velocity: float, requests: int, start: float = 0.25) -> list[float]:
    """The alphas the original page sends with ``?alphaVelocity=velocity``, in Python floats (the same
    IEEE doubles as JavaScript's numbers).

    The page enters its first state at alpha 0.25, and after each response adds the velocity; a sum
    past 1 + 1e-3 wraps by subtracting 1, so a sum of 1.0000000000000002 is sent as it is.
    """
    alphas, alpha = [], start
    for _ in range(requests):
        alphas.append(alpha)
        alpha = alpha + velocity
        if alpha > 1 + 1e-3:
            alpha = alpha - 1
    return alphas


VELOCITIES = (0.05, 0.15, 0.33)


def all_alphas() -> list[float]:
    """100 requests at each velocity, from the page's 0.25 and from 0 (a page whose first request goes
    out before its state is set)."""
    return [alpha for velocity in VELOCITIES for start in (0.25, 0.0)
            for alpha in original_app_alphas(velocity, 100, start=start)]


def test_the_accumulation_reproduces_the_reported_requests():
    """0.05 at request 15, 0.15 at 25, 0.33 at 75 (counting from 0) send alpha just above 1."""
    for velocity, first_outside in ((0.05, 15), (0.15, 25), (0.33, 75)):
        alphas = original_app_alphas(velocity, 100)
        outside = [i for i, alpha in enumerate(alphas) if not 0.0 <= alpha <= 1.0]
        assert outside and outside[0] == first_outside, (velocity, outside)
        assert all(1.0 < alphas[i] <= 1.0 + ALPHA_TOLERANCE for i in outside)


@pytest.mark.parametrize("model", [InferenceBody, GenerateBody])
def test_every_accumulated_alpha_is_accepted_and_lands_in_range(model):
    alphas = all_alphas()
    assert any(alpha > 1 for alpha in alphas)  # the test covers the failing case
    for alpha in alphas:
        body = model.model_validate(clip_body(alpha=alpha))
        assert 0.0 <= body.alpha <= 1.0 and body.to_input().alpha == body.alpha
        assert body.alpha == min(max(alpha, 0.0), 1.0)


@pytest.mark.parametrize("value, expected", [(1.0000000000000002, 1.0), (1 + 1e-6, 1.0), (-1e-6, 0.0),
                                             (-0.0, 0.0), (0.0, 0.0), (0.5, 0.5), (1.0, 1.0)])
def test_clamp_alpha_clamps_rounding_errors(value, expected):
    assert clamp_alpha(value) == expected


@pytest.mark.parametrize("value", [1 + 2e-6, -2e-6, 1.5, -0.1])
def test_clamp_alpha_refuses_values_further_out(value):
    with pytest.raises(ValueError, match="Input should be"):
        InferenceBody.model_validate(clip_body(alpha=value))


def test_the_original_apps_alphas_are_answered_by_a_real_server(server_url):
    """Each distinct alpha outside [0, 1] the page sends, and a few inside, as real requests."""
    alphas = all_alphas()
    outside = sorted({alpha for alpha in alphas if not 0.0 <= alpha <= 1.0})
    inside = [0.0, 0.25, 0.55, 1.0]
    assert outside
    with httpx.Client(timeout=120) as http:
        for i, alpha in enumerate(outside + inside):
            response = http.post(f"{server_url}/run_inference/", json=clip_body(alpha=alpha, steps=4, seed=900 + i),
                                 headers={"Content-Type": "text/plain"})
            assert response.status_code == 200, (alpha, response.text[:300])
            assert set(response.json()) == {"image", "audio", "duration_s"}


@pytest.mark.parametrize("endpoint", ["/run_inference/", "/api/v1/generate"])
@pytest.mark.parametrize("alpha", [1 + 2e-6, -2e-6])
def test_alphas_beyond_the_tolerance_get_a_422_naming_alpha(server_url, endpoint, alpha):
    response = httpx.post(server_url + endpoint, json=clip_body(alpha=alpha), timeout=30)
    assert response.status_code == 422 and response.headers["content-type"] == "application/json"
    assert response.json()["detail"][0]["loc"] == ["body", "alpha"]
