"""Fixed-length sequence sampling (brainlib.data.sequences)."""
import numpy as np
import pytest

from brainlib.data.sequences import fixed_length_sequences


def test_fixed_length_sampling_uses_left_out_slices_as_extra_sequences():
    seqs = fixed_length_sequences(20, 6)
    assert len(seqs) == 3 and all(len(q) == 6 for q in seqs)
    assert seqs[0].tolist() == [0, 4, 8, 11, 15, 19]
    flat = np.concatenate(seqs)
    assert len(set(flat.tolist())) == len(flat)            # no slice used twice
    assert all((np.diff(q) > 0).all() for q in seqs)        # each in slice order
    assert len(fixed_length_sequences(20, 6, extra=False)) == 1
    short = fixed_length_sequences(3, 5)                    # short scans repeat slices
    assert len(short) == 1 and short[0].tolist() == [0, 0, 1, 2, 2]
    with pytest.raises(ValueError):
        fixed_length_sequences(0, 5)
