"""A he2024 training killed after an epoch resumes to the same final weights as an
uninterrupted one; a finished training is not retrained and predicts identically."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from brainlib import engine
from brainlib.papers import he2024

NAME = "he2024_full"


class Killed(RuntimeError):
    """Stands for a kill between epochs (after epoch 1's checkpoint was written)."""


def _session(tmp_path, tag):
    exp = he2024.setup(profile="smoke", out_dir=tmp_path / tag, epochs=2)
    return exp, he2024.prepare_data(exp)


@pytest.mark.slow  # three smoke-size trainings of the full model: ~10-30 s here
def test_resumed_training_matches_the_uninterrupted_one(tmp_path, monkeypatch):
    exp_a, data_a = _session(tmp_path, "uninterrupted")
    straight = he2024.train_variant(exp_a, data_a, NAME)

    exp_b, data_b = _session(tmp_path, "killed")
    calls = {"n": 0}
    one_epoch = engine._train_one_epoch

    def dying_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # epoch 2 starts: epoch 1 is checkpointed, epoch 2 never will be
            raise Killed("killed during epoch 2")
        return one_epoch(*args, **kwargs)

    monkeypatch.setattr(engine, "_train_one_epoch", dying_epoch)
    with pytest.raises(Killed):
        he2024.train_variant(exp_b, data_b, NAME)
    monkeypatch.setattr(engine, "_train_one_epoch", one_epoch)
    ckpt = exp_b.checkpoint_dir(NAME)
    assert torch.load(ckpt / "last.pt", weights_only=False)["epoch"] == 1

    resumed = he2024.train_variant(exp_b, data_b, NAME)  # the same command again
    assert list(resumed.history["epoch"]) == [1, 2]
    assert resumed.best_epoch == straight.best_epoch
    sa, sb = straight.model.state_dict(), resumed.model.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=0, msg=k)
    np.testing.assert_array_equal(straight.y_score, resumed.y_score)

    # finished: fit returns at once (no epoch trained) and the predictions are recomputed
    def no_training(*args, **kwargs):
        raise AssertionError("a finished variant was retrained")

    monkeypatch.setattr(engine, "_train_one_epoch", no_training)
    again = he2024.train_variant(exp_b, data_b, NAME)
    assert list(again.history["epoch"]) == [1, 2] and again.best_epoch == resumed.best_epoch
    np.testing.assert_array_equal(again.y_score, resumed.y_score)
    assert again.train_seconds == pytest.approx(resumed.train_seconds)
