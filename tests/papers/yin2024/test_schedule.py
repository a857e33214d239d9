"""yin2024 detector schedule: warm-up + cosine inside Adam, resumable from its own state."""
import math

import pytest
import torch

from brainlib.papers.yin2024.schedule import WarmupCosineAdam, optimizer_factory, warmup_cosine


def test_warmup_then_cosine_to_zero():
    assert [warmup_cosine(s, 10, 4) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert warmup_cosine(4, 10, 4) == 1.0
    assert warmup_cosine(7, 10, 4) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert warmup_cosine(10, 10, 4) == pytest.approx(0.0)
    assert warmup_cosine(0, 10, 0) == 1.0
    with pytest.raises(ValueError):
        warmup_cosine(0, 0, 0)


def _run(opt, p, steps):
    seen = []
    for _ in range(steps):
        seen.append(opt.param_groups[0]["lr"])
        p.grad = torch.ones_like(p)
        opt.step()
    return seen


def test_adam_follows_the_schedule_and_resumes_exactly():
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(5))
    groups = [{"params": [p], "lr": 1e-3, "name": "default"}]
    full = WarmupCosineAdam(groups, lr=1e-3, total_steps=8, warmup_steps=2)
    lrs = _run(full, p, 8)
    assert lrs == pytest.approx([1e-3 * warmup_cosine(s, 8, 2) for s in range(8)])
    final = p.detach().clone()

    torch.manual_seed(0)
    q = torch.nn.Parameter(torch.randn(5))
    first = WarmupCosineAdam([{"params": [q], "lr": 1e-3, "name": "default"}], lr=1e-3, total_steps=8,
                             warmup_steps=2)
    _run(first, q, 3)
    state = first.state_dict()
    resumed = WarmupCosineAdam([{"params": [q], "lr": 1e-3, "name": "default"}], lr=1e-3, total_steps=8,
                               warmup_steps=2)
    resumed.load_state_dict(state)
    assert resumed.steps_taken() == 3
    assert _run(resumed, q, 5) == pytest.approx(lrs[3:])
    assert torch.equal(q.detach(), final)


def test_factory():
    assert optimizer_factory("constant", 10, 0) == "adam"
    build = optimizer_factory("cosine", 10, 2)
    opt = build([{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.01}], lr=0.01, weight_decay=0.0)
    assert isinstance(opt, WarmupCosineAdam) and opt.param_groups[0]["lr"] == pytest.approx(0.005)
    with pytest.raises(ValueError):
        optimizer_factory("linear", 10, 0)


def test_anchor_ratios_and_roi_ious_reach_the_detector(tmp_path):
    from brainlib.models import create_model
    from brainlib.papers import yin2024
    from brainlib.papers.yin2024.train import detector_kwargs

    exp = yin2024.setup(profile="smoke", out_dir=tmp_path, device="cpu")
    exp.settings = exp.settings.__class__.for_profile("smoke", anchor_ratios=(0.25, 1.0, 4.0), box_iou=(0.5, 0.3))
    model = create_model("yin2024_maskrcnn", num_classes=4, **detector_kwargs(exp)).detector
    gen = model.rpn.anchor_generator
    assert all(tuple(float(r) for r in a) == (0.25, 1.0, 4.0) for a in gen.aspect_ratios)
    assert gen.num_anchors_per_location() == [3] * len(exp.settings.anchor_sizes)
    matcher = model.roi_heads.proposal_matcher
    assert (matcher.high_threshold, matcher.low_threshold) == (0.5, 0.3)
